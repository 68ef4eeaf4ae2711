"""Fine-tuning: local pretrained weights, frozen stages, per-stage learning rates, gradual unfreezing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from trueval.core.errors import UserError
from trueval.models.classifier import ClassifierModule
from trueval.models.factory import prepare_network, split_model_config
from trueval.models.nets.cnn import CNN
from trueval.models.nets.external import TimmNet, TorchvisionNet
from trueval.models.nets.mlp import MLP
from trueval.models.nets.resnet import ResNet
from trueval.models.optim import build_optimizer, parameter_groups
from trueval.models.pretrained import load_pretrained
from trueval.models.stages import stage_names

STAGES4 = ["stem", "stage1", "stage2", "stage3", "stage4", "head"]


def _resnet(classes: int = 4, depth: int = 8) -> ResNet:
    return ResNet((1, 8, 8), classes, depth=depth)


def test_stage_names_are_shared_by_our_nets_and_library_backbones() -> None:
    assert stage_names(_resnet()) == ["stem", "stage1", "stage2", "stage3", "head"]
    assert stage_names(ResNet((3, 32, 32), 4, depth=18)) == STAGES4
    assert stage_names(TorchvisionNet((3, 32, 32), 4, name="resnet18")) == STAGES4
    assert stage_names(TimmNet((3, 32, 32), 4, name="resnet18")) == STAGES4
    assert stage_names(CNN((1, 8, 8), 4, depth=5))[0] == "stem"
    efficientnet = TimmNet((3, 32, 32), 4, name="efficientnet_b0")
    names = stage_names(efficientnet)
    assert names[0] == "stem" and names[-1] == "head" and len(names) == 9  # timm's stem + 7 block groups
    probe = prepare_network(efficientnet, {"freeze": "all_but_head"})
    assert {n for n, p in probe.named_parameters() if p.requires_grad} == {"model.classifier.weight",
                                                                            "model.classifier.bias"}
    assert stage_names(MLP((1, 8, 8), 4, depth=3))[-1] == "head"


def test_freeze_takes_stage_names_and_refuses_unknown_ones() -> None:
    net = prepare_network(TorchvisionNet((3, 32, 32), 4, name="resnet18"), {"freeze": ["stem", "stage1"]})
    assert not net.model.conv1.weight.requires_grad and not net.model.layer1[0].conv1.weight.requires_grad
    assert net.model.layer2[0].conv1.weight.requires_grad and net.model.fc.weight.requires_grad
    probe = prepare_network(_resnet(), {"freeze": "all_but_head"})
    assert [n for n, p in probe.named_parameters() if p.requires_grad] == ["head.1.weight", "head.1.bias"]
    with pytest.raises(UserError, match=r"model\.freeze.*stage9"):
        prepare_network(_resnet(), {"freeze": ["stage9"]})


def test_frozen_parameters_are_not_in_the_optimizer() -> None:
    net = prepare_network(_resnet(), {"freeze": ["stem", "stage1"]})
    optimizer = build_optimizer({"name": "sgd", "lr": 0.1, "weight_decay": 1e-4}, net)
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    frozen = [p for p in net.parameters() if not p.requires_grad]
    assert frozen and not any(id(p) in in_optimizer for p in frozen)
    assert len(in_optimizer) == sum(1 for p in net.parameters() if p.requires_grad)


def test_layer_decay_and_head_scale_give_each_stage_its_rate() -> None:
    groups = parameter_groups(_resnet(), lr=1.0, weight_decay=0.1, layer_decay=0.5, head_lr_scale=3.0)
    lr = {g["name"].split("/")[0]: g["lr"] for g in groups}
    assert lr == {"stem": 0.5 ** 4, "stage1": 0.5 ** 3, "stage2": 0.5 ** 2, "stage3": 0.5, "head": 3.0}
    decays = {g["name"]: g["weight_decay"] for g in groups}
    assert decays["stage1/decay"] == 0.1 and decays["stage1/no_decay"] == 0.0  # norms and biases
    with pytest.raises(UserError, match="optimizer.layer_decay"):
        parameter_groups(_resnet(), lr=1.0, weight_decay=0.0, layer_decay=1.5)
    with pytest.raises(UserError, match=r"optimizer\.layer_decay.*Sequential does not name its stages"):
        parameter_groups(torch.nn.Sequential(torch.nn.Linear(2, 2)), lr=1.0, weight_decay=0.0, layer_decay=0.5)


def test_adding_an_optimizer_is_one_row() -> None:
    from trueval.models.optim import OPTIMIZERS

    import timm.optim

    assert OPTIMIZERS["lamb"].cls is timm.optim.Lamb
    optimizer = build_optimizer({"name": "lamb", "lr": 1e-3, "weight_decay": 0.01, "layer_decay": 0.8}, _resnet())
    assert isinstance(optimizer, timm.optim.Lamb) and len({g["lr"] for g in optimizer.param_groups}) == 5


def test_other_class_count_reinitialises_the_head(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = _resnet(classes=10)
    path = tmp_path / "plain_state_dict.pt"
    torch.save(source.state_dict(), path)
    net = _resnet(classes=5)
    fresh_head = net.head[1].weight.clone()
    with caplog.at_level(logging.WARNING, logger="trueval"):
        load_pretrained(net, path)
    assert "head re-initialised" in caplog.text and "head.1.weight" in caplog.text
    assert torch.equal(net.stem[0].weight, source.stem[0].weight)
    assert torch.equal(net.stages[2][0].branch[1].running_mean, source.stages[2][0].branch[1].running_mean)
    assert torch.equal(net.head[1].weight, fresh_head) and net.head[1].weight.shape == (5, 16 * 4)


def test_trueval_checkpoint_of_other_classes_resets_the_head(tmp_path: Path) -> None:
    source = _resnet(classes=4)
    path = tmp_path / "epoch_003.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in source.state_dict().items()},
                "hyper_parameters": {"class_names": ["0", "1", "2", "3"]}}, path)
    same = _resnet(classes=4)
    load_pretrained(same, path, class_names=["0", "1", "2", "3"])
    assert torch.equal(same.head[1].weight, source.head[1].weight)  # same classes: the head loads too
    other = _resnet(classes=4)
    load_pretrained(other, path, class_names=["5", "6", "7", "8"])
    assert not torch.equal(other.head[1].weight, source.head[1].weight)
    assert torch.equal(other.stem[0].weight, source.stem[0].weight)


def test_weight_file_of_another_architecture_is_refused_naming_tensors(tmp_path: Path) -> None:
    path = tmp_path / "resnet20.pt"
    torch.save(ResNet((1, 8, 8), 4, depth=20).state_dict(), path)
    with pytest.raises(UserError, match=r"model\.pretrained.*missing keys \(e\.g\. stages\.0\.3\.") as info:
        load_pretrained(ResNet((1, 8, 8), 4, depth=26), path)
    assert "resnet20.pt" in str(info.value)
    timm_file = tmp_path / "timm_resnet18.pt"
    torch.save(TimmNet((3, 32, 32), 4, name="resnet18").model.state_dict(), timm_file)
    with pytest.raises(UserError, match="unexpected keys"):
        load_pretrained(ResNet((3, 32, 32), 4, depth=18), timm_file)


def test_module_options_are_listed_once_per_task() -> None:
    net_args, options = split_model_config({"_target_": "x.Net", "depth": 8, "pretrained": "a.pt",
                                            "freeze": "none", "compile": False})
    assert net_args == {"_target_": "x.Net", "depth": 8} and set(options) == {"pretrained", "freeze", "compile"}
    _, detection = split_model_config({"name": "fasterrcnn", "log_images": 4}, task="detection")
    assert detection == {"log_images": 4}


def _fit(module: pl.LightningModule, epochs: int) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8) * 2 + 1, torch.randint(0, 4, (64,))
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, loader, loader)


def _module(net: torch.nn.Module, **kwargs) -> ClassifierModule:
    return ClassifierModule(net=net, num_classes=4, optimizer={"name": "adamw", "lr": 0.05, "weight_decay": 0.1},
                            scheduler={"name": "none"}, **kwargs)


def test_frozen_stages_and_their_batchnorm_statistics_are_bitwise_unchanged() -> None:
    net = prepare_network(_resnet(), {"freeze": ["stem", "stage1"]})
    before = {k: v.clone() for k, v in net.state_dict().items()}
    _fit(_module(net), epochs=2)
    after = net.state_dict()
    frozen = [k for k in before if k.startswith(("stem.", "stages.0."))]
    assert any("running_mean" in k for k in frozen)
    for key in frozen:
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["stages.1.0.branch.0.weight"], after["stages.1.0.branch.0.weight"])
    assert not torch.equal(before["stages.1.0.branch.1.running_mean"], after["stages.1.0.branch.1.running_mean"])


def test_gradual_unfreezing_thaws_at_the_given_epoch() -> None:
    net = prepare_network(_resnet(), {"freeze": "all_but_head", "unfreeze_at_epoch": 1})
    before = net.stem[0].weight.clone()
    after_epoch0 = []
    module = _module(net, unfreeze_at_epoch=1)
    module.on_train_epoch_end = lambda: after_epoch0.append(net.stem[0].weight.clone())
    _fit(module, epochs=2)
    assert torch.equal(after_epoch0[0], before)  # epoch 0: still frozen
    assert all(p.requires_grad for p in net.parameters())
    assert not torch.equal(net.stem[0].weight, before)
    with pytest.raises(UserError, match="model.unfreeze_at_epoch"):
        prepare_network(_resnet(), {"unfreeze_at_epoch": 2})


def test_mixup_gives_soft_targets_the_loss_takes() -> None:
    from trueval.models.mixing import build_mixup

    assert build_mixup({"mixup_alpha": 0.0}, 4) is None
    mixer = build_mixup({"mixup_alpha": 0.4, "cutmix_alpha": 0.0}, 4)
    x, y = torch.randn(8, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    mixed, soft = mixer(x.clone(), y)  # timm mixes in place
    assert soft.shape == (8, 4) and torch.allclose(soft.sum(1), torch.ones(8))
    assert not torch.equal(mixed, x) and (soft.max(1).values < 1).all()
    _, odd = mixer(x[:7], y[:7])  # timm needs an even batch: an odd one passes through one-hot
    assert torch.equal(odd.argmax(1), y[:7])
    module = _module(_resnet(), mixup={"mixup_alpha": 0.4})
    assert module._loss(module(mixed), soft).ndim == 0
    with pytest.raises(UserError, match="mixup.alpha"):
        build_mixup({"alpha": 1}, 4)


@pytest.mark.slow
def test_train_from_a_weight_file_then_eval_without_it(tmp_path: Path) -> None:
    """model.pretrained + model.freeze through train.py's config; eval needs only the checkpoint."""
    from helpers import load_ckpt, run_inprocess
    from trueval.tasks.evaluate import evaluate
    from trueval.tasks.train import train

    source = ResNet((1, 8, 8), 10, depth=8)
    weights = tmp_path / "source.pt"
    torch.save(source.state_dict(), weights)
    common = ["model=resnet", "model.depth=8", "logger=none", "trainer.max_epochs=1", "+trainer.limit_train_batches=3"]
    _, record = run_inprocess(train, "train", [*common, f"model.pretrained={weights}", "model.freeze=[stem,stage1]",
                                               "optimizer.layer_decay=0.5"], tmp_path / "run")
    assert record["status"] == "ok", record
    state = load_ckpt(record["best_checkpoint"])["state_dict"]
    for key, value in source.state_dict().items():
        if key.startswith(("stem.", "stages.0.")):
            assert torch.equal(state[f"net.{key}"], value), key
    assert not torch.equal(state["net.stages.1.0.branch.0.weight"], source.stages[1][0].branch[0].weight)
    weights.unlink()
    _, evaluated = run_inprocess(evaluate, "eval", [f"ckpt_path={record['best_checkpoint']}", "logger=none"],
                                 tmp_path / "eval")
    assert evaluated["status"] == "ok" and evaluated["metrics"]["test/acc"] == record["metrics"]["test/acc"]
