"""IntegritySettings: defaults, config validation naming the key, a digest that tracks detection settings."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from trueval.integrity import IntegritySettings
from trueval.core.errors import UserError


def test_defaults_and_omegaconf() -> None:
    cfg = OmegaConf.load("configs/data/integrity/default.yaml")
    s = IntegritySettings.from_config(cfg)
    assert s == IntegritySettings()  # the YAML and the dataclass defaults agree
    assert (s.policy, s.exact, s.near, s.cache) == ("fail", True, True, True)
    assert s.thresholds.near == pytest.approx(0.90)


@pytest.mark.parametrize("cfg, key", [
    ({"polcy": "warn"}, "data.integrity.polcy"),
    ({"thresholds": {"nearr": 0.9}}, "data.integrity.thresholds.nearr"),
    ({"policy": "ignore"}, "data.integrity.policy"),
    ({"thresholds": {"near": 1.5}}, "data.integrity.thresholds.near"),
    ({"thresholds": {"candidates": 2.5}}, "data.integrity.thresholds.candidates"),
    ({"exact": "yes"}, "data.integrity.exact"),
])
def test_bad_settings_name_the_key(cfg, key) -> None:
    with pytest.raises(UserError) as err:
        IntegritySettings.from_config(cfg)
    assert key in str(err.value)


def test_digest_tracks_detection_not_policy() -> None:
    base = IntegritySettings.from_config({})
    assert base.digest() == IntegritySettings.from_config({}).digest()
    assert base.digest() == IntegritySettings.from_config({"policy": "warn"}).digest()
    assert base.digest() != IntegritySettings.from_config({"thresholds": {"near": 0.95}}).digest()
    assert base.digest() != IntegritySettings.from_config({"near": False}).digest()
