"""trueval.quality: is the dataset ready for tuning? Balance, repeats, domain shift and label errors.

``quality.py`` runs every section and writes ``quality_report.md`` (and its JSON twin, figures, a
TensorBoard run and ``label_issues.csv``); training runs carry the cheap part (class balance and
within-split repeats, known once the integrity gate ran) in their log and ``metrics.json``.
Only tasks and apps import this package.
"""
