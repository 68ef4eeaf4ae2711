"""Detectors by name: built offline, input size from data.image_size, background handling, local weights."""

import pytest
import torch

from trueval.models.detection.architectures import ARCHITECTURES
from trueval.models.detection.losses import STABLE_NAMES, eval_losses, rename_losses
from trueval.models.detection.network import build_detector
from trueval.core.errors import UserError


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a detector tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_builds_offline_at_the_data_size(name):
    net = build_detector(name, num_classes=3, image_size=96)
    assert net.transform.min_size == (96,) and net.transform.max_size == 96
    expected_offset = 1 if name.startswith(("fasterrcnn", "ssd")) else 0
    assert net.label_offset == expected_offset


def _batch():
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 64)]
    targets = [{"boxes": torch.tensor([[5.0, 5.0, 30.0, 40.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]  # a background image
    return images, targets


@pytest.mark.parametrize("name,extra", [
    ("fasterrcnn_mobilenet_v3_large_fpn", {"rpn_obj_loss", "rpn_box_loss"}),
    # the other families take a few seconds each on a small CPU
    pytest.param("fcos_resnet18_fpn", {"ctr_loss"}, marks=pytest.mark.slow),
    pytest.param("retinanet_resnet18_fpn", set(), marks=pytest.mark.slow),
    pytest.param("ssdlite320_mobilenet_v3_large", set(), marks=pytest.mark.slow),
])
def test_losses_have_stable_names_and_eval_losses_leave_no_trace(name, extra):
    torch.manual_seed(0)
    net = build_detector(name, num_classes=2, image_size=64)
    images, targets = _batch()
    targets = [{"boxes": t["boxes"], "labels": t["labels"] + net.label_offset} for t in targets]
    net.train()
    losses = rename_losses(net(images, targets))
    assert {"box_loss", "cls_loss"} | extra == set(losses)
    assert all(torch.isfinite(v) for v in losses.values())

    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    val = eval_losses(net, images, targets)
    assert set(val) == set(losses) and not net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # BN statistics untouched
    assert torch.equal(rng, torch.get_rng_state())
    out = net(images)
    assert len(out) == 2 and set(out[0]) >= {"boxes", "scores", "labels"}


def test_unknown_names_are_user_errors():
    with pytest.raises(UserError, match="model.name"):
        build_detector("yolov8n", num_classes=3, image_size=64)
    with pytest.raises(UserError, match="model.norm"):
        build_detector("fasterrcnn_resnet50_fpn", num_classes=3, image_size=64, norm="group")
    with pytest.raises(UserError, match="model.options"):
        build_detector("fcos_resnet18_fpn", num_classes=3, image_size=64, options={"bogus": 1})
    assert set(STABLE_NAMES.values()) >= {"box_loss", "cls_loss"}


def test_local_weights(tmp_path):
    src = build_detector("fcos_resnet18_fpn", num_classes=3, image_size=64)
    path = tmp_path / "fcos.pth"
    torch.save(src.state_dict(), path)
    dst = build_detector("fcos_resnet18_fpn", num_classes=3, image_size=64, weights=str(path))
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))

    # a Lightning checkpoint of another class count: heads skipped, the rest loaded
    torch.save({"state_dict": {f"net.{k}": v for k, v in src.state_dict().items()}}, tmp_path / "l.ckpt")
    other = build_detector("fcos_resnet18_fpn", num_classes=5, image_size=64, weights=str(tmp_path / "l.ckpt"))
    assert torch.equal(other.backbone.body.conv1.weight, src.backbone.body.conv1.weight)

    # an ImageNet-style classification file (bare resnet keys) fits the backbone
    import torchvision

    resnet = torchvision.models.resnet18(weights=None)
    torch.save(resnet.state_dict(), tmp_path / "resnet18.pth")
    det = build_detector("fasterrcnn_resnet18_fpn", num_classes=3, image_size=64,
                         weights_backbone=str(tmp_path / "resnet18.pth"))
    assert torch.equal(det.backbone.body.layer4[1].conv2.weight, resnet.layer4[1].conv2.weight)

    with pytest.raises(UserError, match=r"config key `model.weights`.*not found"):
        build_detector("fcos_resnet18_fpn", num_classes=3, image_size=64, weights=str(tmp_path / "nope.pth"))
    with pytest.raises(UserError, match="nothing is downloaded"):
        build_detector("fcos_resnet18_fpn", num_classes=3, image_size=64, weights="DEFAULT")
    torch.save({"x": torch.zeros(3)}, tmp_path / "junk.pth")
    with pytest.raises(UserError, match=r"model.weights_backbone.*match"):
        build_detector("fcos_resnet18_fpn", num_classes=3, image_size=64, weights_backbone=str(tmp_path / "junk.pth"))
