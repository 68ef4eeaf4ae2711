"""torchvision / timm models by name; weights only from local files; never a download."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from trueval.models.nets.external import ExternalNet, TimmNet, TorchvisionNet
from trueval.models.pretrained import load_pretrained
from trueval.core.errors import UserError


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to fetch weights fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("builder,name,in_shape", [
    (TorchvisionNet, "resnet18", (3, 32, 32)), (TorchvisionNet, "mobilenet_v3_small", (1, 28, 28)),
    (TimmNet, "resnet18", (1, 28, 28)), (TimmNet, "efficientnet_b0", (3, 32, 32))])
def test_any_model_by_name(builder, name: str, in_shape: tuple[int, int, int]) -> None:
    net = builder(in_shape, 7, name=name)
    x = torch.randn(2, *in_shape)
    out = net(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    features = net.forward_features(x)
    assert features.shape[0] == 2
    head = net.model.get_submodule(net.head_name)
    assert head.out_features == 7 and features.shape[1] == head.in_features


def test_local_weights_load_backbone_and_resize_head(tmp_path: Path) -> None:
    source = torchvision.models.resnet18(weights=None, num_classes=1000)
    path = tmp_path / "resnet18_imagenet.pth"
    torch.save(source.state_dict(), path)
    net = _loaded(TorchvisionNet((3, 32, 32), 10, name="resnet18"), path)
    assert torch.equal(net.model.conv1.weight, source.conv1.weight)
    assert torch.equal(net.model.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var)
    assert net.model.fc.weight.shape == (10, 512)


def test_lightning_style_checkpoint_with_prefixes(tmp_path: Path) -> None:
    source = TorchvisionNet((3, 32, 32), 10, name="resnet18")
    path = tmp_path / "last.ckpt"
    torch.save({"epoch": 3, "state_dict": {f"net.{k}": v for k, v in source.state_dict().items()}}, path)
    net = _loaded(TorchvisionNet((3, 32, 32), 10, name="resnet18"), path)
    assert torch.equal(net.model.fc.weight, source.model.fc.weight)  # same classes: the head loads too


def test_timm_local_weights(tmp_path: Path) -> None:
    import timm

    source = timm.create_model("resnet18", num_classes=1000)
    path = tmp_path / "timm_resnet18.pth"
    torch.save(source.state_dict(), path)
    net = _loaded(TimmNet((3, 32, 32), 5, name="resnet18"), path)
    assert torch.equal(net.model.conv1.weight, source.conv1.weight)
    assert net.model.get_classifier().out_features == 5


def test_missing_file_names_model_pretrained(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="model.pretrained") as info:
        _loaded(TorchvisionNet((3, 32, 32), 10, name="resnet18"), tmp_path / "nope.pth")
    assert "nope.pth" in str(info.value)


def test_mismatched_keys_name_model_pretrained(tmp_path: Path) -> None:
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(UserError, match=r"model\.pretrained.*unexpected keys"):
        _loaded(TorchvisionNet((3, 32, 32), 10, name="resnet18"), path)


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(torchvision.models.resnet18(weights=None), path)  # a whole pickled module
    with pytest.raises(UserError, match="model.pretrained"):
        _loaded(TorchvisionNet((3, 32, 32), 10, name="resnet18"), path)


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(UserError, match="resnet18"):
        TorchvisionNet((3, 32, 32), 10, name="resnet81")
    with pytest.raises(UserError, match="model.name"):
        TimmNet((3, 32, 32), 10, name="not_a_model_at_all")


def test_dropout_before_the_head_keeps_the_head_name() -> None:
    torch.manual_seed(0)
    net = TorchvisionNet((3, 32, 32), 4, name="resnet18", dropout=0.5)
    assert "model.fc.weight" in net.state_dict()
    x = torch.randn(2, 3, 32, 32)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.allclose(net(x), net(x))
    assert TimmNet((3, 32, 32), 4, name="resnet18", dropout=0.3).model.drop_rate == 0.3


def _loaded(net: ExternalNet, path: Path) -> ExternalNet:
    load_pretrained(net, path)
    return net


def test_wrapper_type() -> None:
    assert isinstance(TorchvisionNet((3, 32, 32), 3, name="resnet18"), ExternalNet)
