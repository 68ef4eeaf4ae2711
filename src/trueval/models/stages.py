"""Stage names shared by every classifier: ``stem, stage1, ..., stageN, head``.

Freezing (``model.freeze=[stem, stage1]``) and layer-wise learning-rate decay
(``optimizer.layer_decay``) speak of stages, not of parameter names, so one config works for our
ResNet/CNN/MLP and for torchvision/timm backbones alike. A stage is a list of parameter-name
prefixes; ``stage_of`` maps every parameter of a network to its stage. ResNets (ours, torchvision's,
timm's) have ``stem, stage1..stage4, head``; other timm models take their stages from timm's own
``group_matcher``, torchvision's ``features`` models from their ``features`` blocks.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from trueval.core.errors import UserError

HEAD = "head"
STEM = "stem"


def _resnet_like(model: nn.Module, prefix: str, head_name: str) -> list[tuple[str, tuple[str, ...]]] | None:
    """torchvision's and timm's ResNet family: conv1/bn1 (stem), layer1..layer4, the head."""
    layers = [n for n in ("layer1", "layer2", "layer3", "layer4") if hasattr(model, n)]
    if len(layers) != 4:
        return None
    stem = tuple(f"{prefix}{name}." for name, _ in model.named_children()
                 if name not in layers and name != head_name.split(".")[0])
    return ([(STEM, stem)] + [(f"stage{i + 1}", (f"{prefix}{n}.",)) for i, n in enumerate(layers)]
            + [(HEAD, (f"{prefix}{head_name}.",))])


def _features_sequential(model: nn.Module, prefix: str, head_name: str) -> list[tuple[str, tuple[str, ...]]] | None:
    """torchvision's ``features`` + ``classifier`` models (EfficientNet, MobileNet, ConvNeXt, VGG)."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential) or len(features) < 2:
        return None
    stages = [(STEM, (f"{prefix}features.0.",))]
    stages += [(f"stage{i}", (f"{prefix}features.{i}.",)) for i in range(1, len(features))]
    return stages + [(HEAD, (f"{prefix}{head_name.split('.')[0]}.",))]


def _timm_groups(model: nn.Module, prefix: str, head_name: str) -> list[tuple[str, tuple[str, ...]]] | None:
    """Any other timm model: its own coarse ``group_matcher`` (stem, then block groups), the head last."""
    matcher = getattr(model, "group_matcher", None)
    if not callable(matcher):
        return None
    from timm.models import group_parameters

    head = head_name + "."
    groups = [[n for n in names if not n.startswith(head)]
              for _, names in sorted(group_parameters(model, matcher(coarse=True)).items())]
    groups = [g for g in groups if g]
    if len(groups) < 2:
        return None
    stages = [(STEM if i == 0 else f"stage{i}", tuple(prefix + n for n in g)) for i, g in enumerate(groups)]
    return stages + [(HEAD, (f"{prefix}{head}",))]


def stage_prefixes(net: nn.Module, key: str = "model.freeze") -> list[tuple[str, tuple[str, ...]]]:
    """Ordered (stage name, parameter-name prefixes) of ``net``, from the input to the head."""
    from trueval.models.nets.external import ExternalNet

    if isinstance(net, ExternalNet):
        for layout in (_resnet_like, _timm_groups, _features_sequential):
            found = layout(net.model, "model.", net.head_name)
            if found is not None:
                return found
        # any other library model: everything before the head is one stage
        return [("stage1", ("model.",)), (HEAD, (f"model.{net.head_name}.",))]
    if hasattr(net, "stem") and hasattr(net, "stages") and hasattr(net, "head"):  # ResNet, CNN
        return ([(STEM, ("stem.",))] + [(f"stage{i + 1}", (f"stages.{i}.",)) for i in range(len(net.stages))]
                + [(HEAD, ("head.",))])
    if hasattr(net, "body") and hasattr(net, "head"):  # MLP: first hidden layer is the stem
        body = list(net.body)
        return ([(STEM, ("body.0.",))] + [(f"stage{i}", (f"body.{i}.",)) for i in range(1, len(body))]
                + [(HEAD, ("head.",))])
    raise UserError(f"{type(net).__name__} does not name its stages (stem, stage1.., head), so it cannot be "
                    "frozen by stage or given layer-wise learning rates", key=key)


def stage_names(net: nn.Module, key: str = "model.freeze") -> list[str]:
    return [name for name, _ in stage_prefixes(net, key)]


def stage_of(net: nn.Module, key: str = "model.freeze") -> dict[str, str]:
    """Parameter name -> stage name; the longest matching prefix wins (the head inside ``model.``)."""
    prefixes = [(p, stage) for stage, group in stage_prefixes(net, key) for p in group]
    prefixes.sort(key=lambda item: len(item[0]), reverse=True)
    out = {}
    for name, _ in net.named_parameters():
        stage = next((s for p, s in prefixes if name.startswith(p)), None)
        if stage is None:
            raise UserError(f"parameter {name} of {type(net).__name__} belongs to no stage", key=key)
        out[name] = stage
    return out


def resolve_stages(spec: str | Iterable[str] | None, net: nn.Module) -> list[str]:
    """``model.freeze`` as stage names: none, all_but_head, or a list of stages."""
    names = stage_names(net) if spec not in (None, "none") else []
    if spec in (None, "none", False):
        return []
    if spec == "all_but_head":
        return [n for n in names if n != HEAD]
    if isinstance(spec, str):
        spec = [spec]
    wanted = [str(s) for s in spec]
    unknown = [s for s in wanted if s not in names]
    if unknown:
        raise UserError(f"unknown stage(s) {unknown}; {type(net).__name__} has {names} "
                        "(or use none / all_but_head)", key="model.freeze")
    return [n for n in names if n in wanted]
