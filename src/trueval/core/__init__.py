"""trueval.core: the bottom room. Types and errors that data, integrity, models and callbacks all
pass around (``SampleSet``, ``BatchGroup``, ``UserError``); it imports nothing else of trueval."""
