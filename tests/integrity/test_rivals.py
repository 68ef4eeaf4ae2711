"""One source per copy: a val/test image's matches that score clearly below its best match in the same
earlier split, and are not linked to it, are set aside as look-alikes (``integrity.rivals``): listed,
not counted as pairs, and still dropped by ``policy=drop``."""

from __future__ import annotations

import numpy as np
import pytest

from tests.integrity.synthetic import photos
from trueval.core.samples import SampleSet
from trueval.integrity import IntegritySettings
from trueval.integrity import near_duplicates
from trueval.core.graph import components
from trueval.integrity.gate import run_gate
from trueval.integrity.policy import apply_policy
from trueval.integrity.report import LeakReport
from trueval.integrity.rivals import rivals

TRAIN, TEST = 0, 1


def _keep(pairs, groups, margin=0.03, links=()):
    """``links``: identical images (or one file) named in two places; clustered as the gate's report does."""
    a, b, s = (np.array(x) for x in zip(*pairs))
    groups = np.array(groups)
    la, lb = (np.array(x, np.int64) for x in zip(*links)) if links else (np.zeros(0, np.int64),) * 2
    ea, eb = np.r_[la, a], np.r_[lb, b]
    inside = groups[ea] == groups[eb]
    cluster = components(len(groups), [ea[inside]], [eb[inside]])
    across = groups[la] != groups[lb]
    return (~rivals(a, b, s.astype(np.float32), groups, cluster, margin, (la[across], lb[across]))).tolist()


def test_a_clearly_weaker_unrelated_match_is_dropped() -> None:
    # test image 2 matches train 0 (its source) and train 1, a look-alike the search did not link to 0
    assert _keep([(0, 2, 0.99), (1, 2, 0.93)], [TRAIN, TRAIN, TEST]) == [True, False]


def test_matches_within_the_margin_are_both_kept() -> None:
    assert _keep([(0, 2, 0.95), (1, 2, 0.93)], [TRAIN, TRAIN, TEST]) == [True, True]


def test_a_weaker_match_linked_to_the_best_is_kept() -> None:
    # train 0 and 1 are copies of each other (a pair within train): one photo, both kept
    assert _keep([(0, 1, 0.92), (0, 2, 0.99), (1, 2, 0.91)], [TRAIN, TRAIN, TEST]) == [True, True, True]


def test_linked_through_a_chain_counts_as_one_photo() -> None:
    pairs = [(0, 1, 0.95), (1, 2, 0.95), (0, 3, 0.99), (2, 3, 0.91)]
    assert _keep(pairs, [TRAIN, TRAIN, TRAIN, TEST]) == [True] * 4


def test_several_copies_of_one_training_image_are_all_reported() -> None:
    # the rule looks from the later split's side: two test copies of train 0 are two leaks
    assert _keep([(0, 1, 0.99), (0, 2, 0.91)], [TRAIN, TEST, TEST]) == [True, True]


def test_each_earlier_split_has_its_own_best() -> None:
    # a test image matching train 0 and val 1 (three splits): one best per earlier split
    assert _keep([(0, 2, 0.99), (1, 2, 0.92)], [0, 1, 2]) == [True, True]


def test_identical_images_link_and_an_identical_copy_is_the_best_match() -> None:
    # train 0 and 1 hold identical pixels (a link), so test 2's weaker match with 1 is the same photo
    assert _keep([(0, 2, 0.99), (1, 2, 0.91)], [TRAIN, TRAIN, TEST], links=[(0, 1)]) == [True, True]
    # test 2 is identical to train 0 (a link across splits: score 1); train 1 is then a look-alike
    assert _keep([(1, 2, 0.95)], [TRAIN, TRAIN, TEST], links=[(0, 2)]) == [False]


def test_pairs_within_a_split_are_never_dropped() -> None:
    assert _keep([(0, 1, 0.99), (0, 2, 0.91)], [TRAIN, TRAIN, TRAIN]) == [True, True]


def test_margin_one_keeps_every_match_and_zero_only_the_best() -> None:
    pairs, groups = [(0, 3, 0.99), (1, 3, 0.93), (2, 3, 0.98)], [TRAIN, TRAIN, TRAIN, TEST]
    assert _keep(pairs, groups, margin=1.0) == [True, True, True]
    assert _keep(pairs, groups, margin=0.0) == [True, False, False]
    assert _keep(pairs, groups, margin=0.05) == [True, False, True]


def _sets(n_train: int, n_test: int) -> dict[str, SampleSet]:
    images = photos(n_train + n_test, seed=11)
    return {"train": SampleSet("train", np.zeros(n_train, np.int64), images=images[:n_train], name="gen"),
            "test": SampleSet("test", np.zeros(n_test, np.int64), images=images[n_train:], name="gen")}


@pytest.mark.parametrize("margin, set_aside", [(None, True), (1.0, False)])
def test_the_gate_sets_a_rival_aside_and_drop_still_removes_it(monkeypatch, margin, set_aside, tmp_path) -> None:
    """The rule sits between what was found and the report; ``thresholds.rival_margin`` sets it; the
    report's JSON keeps the look-alikes; ``policy=drop`` removes their train side as well."""
    found = {(0, 7): 0.99, (1, 7): 0.93,  # test 0 (row 7): its source train 0, a rival train 1
             (2, 8): 0.99, (3, 8): 0.975,  # test 1: two matches within the margin
             (4, 5): 0.95, (4, 9): 0.99, (5, 9): 0.91}  # test 2: train 4 and its copy train 5

    def fake_search(prints, active, g, settings, device, thorough, cross_only, owner):
        a, b = (np.array(x) for x in zip(*found))
        return a, b, np.array(list(found.values()), np.float32), settings.thresholds.near, -1.0

    monkeypatch.setattr(near_duplicates, "_search", fake_search)
    thresholds = {} if margin is None else {"rival_margin": margin}
    settings = IntegritySettings.from_config({"cache": False, "thresholds": thresholds})
    sets = _sets(7, 3)
    report = run_gate(sets, settings)
    cross = {(p.a.index, p.b.index) for p in report.pairs if {p.a.split, p.b.split} == {"train", "test"}}
    aside = {(p.a.index, p.b.index) for p in report.look_alikes}
    assert {(0, 0), (2, 1), (3, 1), (4, 2), (5, 2)} <= cross
    assert ((1, 0) in cross) != set_aside
    assert aside == ({(1, 0)} if set_aside else set())
    assert any("look-alikes" in note for note in report.notes()) == set_aside
    again = LeakReport.from_dict(report.to_dict())
    assert [p.to_dict() for p in again.look_alikes] == [p.to_dict() for p in report.look_alikes]
    kept, record = apply_policy(sets, report, "drop")
    assert {d["index"] for d in record["dropped"] if d["split"] == "train"} == {0, 1, 2, 3, 4, 5}
    assert {d["index"] for d in record["dropped"] if d.get("look_alike")} == ({1} if set_aside else set())
    assert len(kept["train"]) == 1
