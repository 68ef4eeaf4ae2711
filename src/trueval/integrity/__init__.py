"""trueval.integrity: the split-integrity gate.

Before any training step, every pair of splits is checked for shared files (same source), identical
pixels (exact) and the same picture after re-encoding, resizing, crops, shifts, brightness/contrast
changes, flips or grayscale conversion (near). ``data.integrity.policy`` decides what a leak does.
"""

from trueval.integrity.checkpoint import content_hashes, find_overlap, match_fingerprint, train_fingerprint
from trueval.integrity.console import print_report
from trueval.integrity.gate import run_gate
from trueval.integrity.grouping import duplicate_groups
from trueval.integrity.policy import apply_policy
from trueval.integrity.report import LeakPair, LeakReport, SampleRef
from trueval.integrity.settings import IntegritySettings, Thresholds
from trueval.integrity.step import GateOutcome, gate_step, split_manifest

__all__ = [
    "IntegritySettings", "Thresholds", "run_gate", "LeakReport", "LeakPair", "SampleRef", "apply_policy",
    "content_hashes", "train_fingerprint", "match_fingerprint", "find_overlap", "duplicate_groups",
    "print_report", "gate_step", "GateOutcome", "split_manifest",
]
