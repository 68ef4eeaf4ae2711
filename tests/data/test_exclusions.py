"""data.exclude: listed samples leave every split; a file that is not a manifest is a user error naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trueval.core.errors import UserError
from trueval.core.samples import SampleSet
from trueval.data.exclusions import FORMAT, apply_exclusions


def test_listed_samples_are_left_out(tmp_path: Path) -> None:
    sets = {s: SampleSet(s, np.arange(5) % 2, images=np.zeros((5, 2, 2, 1), np.uint8), name="d") for s in ("train", "test")}
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"format": FORMAT, "excluded": [{"id": "d:train:1", "reason": "label"},
                                                                   {"id": "d:train:4", "reason": "repeat"}]}))
    out = apply_exclusions(sets, manifest)
    assert out["train"].origin == ["d:train:0", "d:train:2", "d:train:3"] and len(out["test"]) == 5
    manifest.write_text(json.dumps({"excluded": []}))
    with pytest.raises(UserError, match="data.exclude"):
        apply_exclusions(sets, manifest)
    with pytest.raises(UserError, match="data.exclude"):
        apply_exclusions(sets, tmp_path / "missing.json")
