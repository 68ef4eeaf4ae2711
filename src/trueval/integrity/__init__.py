"""trueval.integrity: the split-integrity gate.

Before any training step, every pair of splits is checked for shared files (same source), identical
pixels (exact) and the same picture after re-encoding, resizing, crops, shifts, brightness/contrast
changes, flips or grayscale conversion (near). ``data.integrity.policy`` decides what a leak does.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> its module: imported on first use, so that a warm audit (a cached verdict) imports no
# torch; ``from trueval.integrity import gate_step`` works as before
_HOME = {
    "content_hashes": "checkpoint", "find_overlap": "checkpoint", "match_fingerprint": "checkpoint",
    "train_fingerprint": "checkpoint", "print_report": "console", "run_gate": "gate",
    "duplicate_groups": "grouping", "apply_policy": "policy", "LeakPair": "report", "LeakReport": "report",
    "SampleRef": "report", "IntegritySettings": "settings", "Thresholds": "settings", "GateOutcome": "step",
    "gate_step": "step", "split_manifest": "step",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


__all__ = [
    "IntegritySettings", "Thresholds", "run_gate", "LeakReport", "LeakPair", "SampleRef", "apply_policy",
    "content_hashes", "train_fingerprint", "match_fingerprint", "find_overlap", "duplicate_groups",
    "print_report", "gate_step", "GateOutcome", "split_manifest",
]
