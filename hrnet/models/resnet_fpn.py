"""ResNet-FPN feature extractors for detection (``resnet18``, ``resnet50``): the backbone the HRNet
paper compares HRNetV2p against, with the interface every framework reads (an ordered dict of maps
named "0".."4", finest first, ``out_channels`` and ``strides``).

torchvision's parts: the ResNet (``torchvision.models.resnet*``, ``weights=None``: nothing is
downloaded), the FPN with its max-pooled extra level (``BackboneWithFPN`` + ``LastLevelMaxPool``) and
``FrozenBatchNorm2d``. Ours: the level names and strides (P2-P6, strides 4..64, the same five levels as
the V2p pyramid), the FPN width (``pyramid_channels``), the BatchNorm choice and reading ImageNet
weights from a file (:func:`load_resnet_weights`).

BatchNorm: trained from scratch the ResNet keeps trainable ``BatchNorm2d`` in every layer (frozen
random statistics would normalise nothing), as the HRNet backbones here do; with ImageNet weights it
follows torchvision's detection practice: ``FrozenBatchNorm2d`` (detection batches of a few images
estimate statistics worse than ImageNet's) and only layer2-layer4 trainable (``trainable_layers=3``).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torchvision
from torch import Tensor, nn
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from .configs import HRNetConfig
from .registries import RESNET_FPN_MODELS
from .weights import CheckpointError, read_state_dict

# the head the detection task defaults to; a ResNet-FPN has its own pyramid instead
ACCEPTED_HEADS = (None, "v2p")
TRAINABLE_LAYERS_PRETRAINED = 3  # torchvision's default for detection fine-tuning
_RESNET_ROOTS = frozenset({"conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"})
_WRAPPERS = frozenset({"module", "model", "_orig_mod", "backbone", "features"})
_IMAGENET_ONLY = ("fc.",)  # the classifier: in an ImageNet file, not in a detector


def is_resnet_fpn(name: str) -> bool:
    """Whether ``name`` is a ResNet-FPN backbone (detection only) rather than an HRNet variant."""
    return name in RESNET_FPN_MODELS


def hrnet_only_defaults() -> dict[str, Any]:
    """The HRNet architecture options (every :class:`HRNetConfig` field with a default) and their
    official values: a ResNet-FPN accepts only these."""
    return {
        f.name: f.default for f in dataclasses.fields(HRNetConfig) if f.default is not dataclasses.MISSING
    }


def check_resnet_options(name: str, head: str | None, options: Mapping[str, Any]) -> None:
    """Refuses, in one line, a head other than the detection default and any HRNet-only option set
    away from its official value (they have no meaning on a ResNet)."""
    if head not in ACCEPTED_HEADS:
        raise ValueError(
            f"head {head!r} does not apply to {name}: it has its own FPN pyramid (P2-P6); "
            "expected null or 'v2p' (the detection default)"
        )
    defaults = hrnet_only_defaults()
    for key, value in options.items():
        if key not in defaults:
            raise TypeError(f"unknown model option {key!r} for {name}; valid options: {', '.join(defaults)}")
        if value != defaults[key]:
            raise ValueError(
                f"model option {key}={value!r} applies to HRNet only; {name} expects {defaults[key]!r}"
            )


class ResNetFPN(BackboneWithFPN):
    """torchvision's ``BackboneWithFPN`` over a ResNet, its levels renamed "0".."4" (finest first:
    strides 4, 8, 16, 32 and the max-pooled 64) as the frameworks read them."""

    def __init__(self, name: str, resnet: nn.Module, out_channels: int) -> None:
        in_channels = [resnet.inplanes // 8 * 2**i for i in range(4)]  # layer1-4 widths
        super().__init__(
            resnet,
            return_layers={f"layer{i + 1}": str(i) for i in range(4)},
            in_channels_list=in_channels,
            out_channels=out_channels,
            extra_blocks=LastLevelMaxPool(),
        )
        self.name = name
        self.strides: tuple[int, ...] = (4, 8, 16, 32, 64)

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        levels = super().forward(x)
        return OrderedDict((str(i), level) for i, level in enumerate(levels.values()))


def create_resnet_fpn(
    name: str,
    head: str | None = "v2p",
    pretrained: str | Path | None = None,
    pyramid_channels: int = 256,
    **overrides: Any,
) -> ResNetFPN:
    """``name`` ("resnet18", "resnet50") with a ``pyramid_channels``-wide FPN; ``pretrained``: a file
    holding torchvision's ImageNet state dict of that ResNet (or a checkpoint of this project's
    ResNet-FPN detector). ``overrides``: HRNet options, accepted only at their official values."""
    if not is_resnet_fpn(name):
        raise ValueError(f"unknown ResNet-FPN {name!r}; valid: {', '.join(RESNET_FPN_MODELS)}")
    check_resnet_options(name, head, overrides)
    norm_layer = nn.BatchNorm2d if pretrained is None else FrozenBatchNorm2d
    resnet = getattr(torchvision.models, name)(weights=None, norm_layer=norm_layer)
    model = ResNetFPN(name, resnet, pyramid_channels)
    if pretrained is not None:
        load_resnet_weights(model, pretrained)
        freeze_early_layers(model, TRAINABLE_LAYERS_PRETRAINED)
    return model


def freeze_early_layers(model: ResNetFPN, trainable_layers: int) -> None:
    """Only the last ``trainable_layers`` of layer4, layer3, layer2, layer1, conv1 (bn1 included)
    learn, as torchvision's ``resnet_fpn_backbone``; the FPN always learns."""
    trainable = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        trainable.append("bn1")
    for key, parameter in model.body.named_parameters():
        parameter.requires_grad_(key.split(".", 1)[0] in trainable)


def _resnet_key(key: str) -> str | None:
    """A checkpoint key as the ResNet-FPN names it (``body.<resnet key>``, ``fpn.*``, ``fc.*``), or
    None when it is not one: wrappers (``module.``, ``model.``, ``backbone.``, ...) are stripped."""
    parts = key.split(".")
    while len(parts) > 1 and parts[0] in _WRAPPERS:
        parts = parts[1:]
    if parts[0] in ("body", "fpn") and len(parts) > 1:
        return ".".join(parts)
    if parts[0] in _RESNET_ROOTS:
        return ".".join(["body", *parts]) if parts[0] != "fc" else ".".join(parts)
    return None


def load_resnet_weights(model: ResNetFPN, path: str | Path) -> list[str]:
    """Loads ``path`` into ``model``: every ResNet tensor strictly (a missing, unknown or differently
    shaped one raises one :class:`CheckpointError` line); the FPN's tensors when the file has them
    (this project's checkpoints), else the FPN keeps its initialisation. Returns the loaded keys."""
    tensors = read_state_dict(path)
    wanted = model.state_dict()
    found: dict[str, Tensor] = {}
    for key, tensor in tensors.items():
        mapped = _resnet_key(key)
        if mapped is not None and not mapped.startswith(_IMAGENET_ONLY):
            found.setdefault(mapped, tensor)
    body = {k for k in wanted if k.startswith("body.") and not k.endswith("num_batches_tracked")}
    missing = sorted(body - set(found))
    unexpected = sorted(k for k in found if k not in wanted and not k.endswith("num_batches_tracked"))
    mismatched = sorted(k for k in found if k in wanted and found[k].shape != wanted[k].shape)
    if missing or unexpected or mismatched:
        problems = [
            f"{len(keys)} {what} (first: {keys[0]})"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched))
            if keys
        ]
        raise CheckpointError(
            f"checkpoint {path} is not a torchvision {model.name} state dict: ResNet keys "
            f"{', '.join(problems)}; expected e.g. {name_of_file(model.name)} as torchvision saves it"
        )
    load = {k: v for k, v in found.items() if k in wanted}
    result = model.load_state_dict(load, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    return sorted(load)


def name_of_file(name: str) -> str:
    """torchvision's file name of the ImageNet weights (IMAGENET1K_V1) of ``name``."""
    weights = getattr(torchvision.models, f"ResNet{name.removeprefix('resnet')}_Weights").IMAGENET1K_V1
    return Path(weights.url).name
