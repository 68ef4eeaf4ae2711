"""The allow-list of constructors holds every `_target_` the project's own configs use, and refuses the rest."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from helpers import CONFIGS
from trueval.core.errors import UserError
from trueval.tasks.allowed_targets import check_target, iter_targets
from trueval.tasks.builders import build_datamodule


def _config_targets() -> list[tuple[str, str]]:
    found = []
    for file in sorted(CONFIGS.rglob("*.yaml")):
        for key, target in iter_targets(OmegaConf.to_container(OmegaConf.load(file), resolve=False)):
            found.append((f"{file.relative_to(CONFIGS)}:{key}", target))
    return found


def test_every_target_in_configs_is_allowed() -> None:
    targets = _config_targets()
    assert len({t for _, t in targets}) >= 20  # the walk really found the configs' targets
    for where, target in targets:
        check_target(target, where)


@pytest.mark.parametrize("target", ["os.system", "builtins.eval", "sympy.sympify", "subprocess.Popen",
                                    "trueval.tasks.train.train", "trueval.data.splitting.groups_from_regex",
                                    "trueval.data.detection.datamodule.shutil.rmtree", "trueval.datax.Evil",
                                    "trueval.models.nets.mlp.MLP.__init__"])
def test_anything_else_is_refused_naming_the_key(target: str) -> None:
    with pytest.raises(UserError, match=r"model\._target_"):
        check_target(target, "model._target_")


def test_the_instantiate_seam_checks_before_calling(tmp_path) -> None:
    marker = tmp_path / "ran"
    node = OmegaConf.create({"_target_": "os.makedirs", "_args_": [str(marker)]})
    with pytest.raises(UserError, match=r"data\._target_"):
        build_datamodule(node)
    assert not marker.exists()


def test_the_environment_extends_the_list_a_config_cannot(monkeypatch) -> None:
    from trueval.core.errors import UserError
    from trueval.tasks.allowed_targets import check_target

    monkeypatch.setenv("TRUEVAL_ALLOWED_TARGETS", "collections.,json.JSONDecoder")
    check_target("collections.OrderedDict", "callbacks.x._target_")
    check_target("json.JSONDecoder", "callbacks.x._target_")
    with pytest.raises(UserError, match="TRUEVAL_ALLOWED_TARGETS"):
        check_target("json.loads", "callbacks.x._target_")
    monkeypatch.delenv("TRUEVAL_ALLOWED_TARGETS")
    with pytest.raises(UserError):
        check_target("collections.OrderedDict", "callbacks.x._target_")
