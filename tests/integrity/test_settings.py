"""IntegritySettings: defaults, config validation naming the key, a digest that tracks detection settings."""

from __future__ import annotations

import pytest
import torch
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
    ({"device": "gpu"}, "data.integrity.device"),
    ({"thresholds": {"crop_zoom": 1.1}}, "data.integrity.thresholds.crop_zoom"),  # within max_scale: no deep crop
    ({"thresholds": {"rival_margin": -0.1}}, "data.integrity.thresholds.rival_margin"),
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
    assert base.digest() != IntegritySettings.from_config({"thresholds": {"crop_zoom": 0.0}}).digest()


def test_device_is_not_part_of_the_cache_key() -> None:
    """The GPU and the CPU find the same pairs: a report cached on one machine serves the other."""
    assert IntegritySettings.from_config({"device": "cpu"}).digest() == IntegritySettings.from_config({}).digest()


def test_rival_margin_is_not_part_of_the_cache_key() -> None:
    """It sorts what was found into pairs and look-alikes after the cache: a cached search serves any margin."""
    assert (IntegritySettings.from_config({"thresholds": {"rival_margin": 1}}).digest()
            == IntegritySettings.from_config({}).digest())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_asking_for_a_gpu_that_is_not_there_names_the_key() -> None:
    settings = IntegritySettings.from_config({"device": "cuda"})
    with pytest.raises(UserError, match="data.integrity.device"):
        settings.torch_device()
    assert IntegritySettings.from_config({}).torch_device().type == "cpu"
