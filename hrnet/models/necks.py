"""Representation heads ("necks") turning the backbone's branch maps into feature maps.

* ``v1``  (HRNetV1): the highest-resolution branch only.
* ``v2``  (HRNetV2): every branch bilinearly upsampled to the highest resolution and concatenated.
* ``v2p`` (HRNetV2p): V2, a 1x1 conv to 256 channels, average pooling into a 5-level pyramid
  (strides 4..64) and a 3x3 conv per level, as the HRFPN neck of the official detection code.

Each neck returns an ``OrderedDict[str, Tensor]`` (keys "0", "1", ...) and exposes
``out_channels`` (int) and ``strides`` so that torchvision detectors can consume it; ``from_options``
builds it (:func:`build_neck` looks it up in :data:`~hrnet.models.registries.NECKS`) and
``map_head`` is what a one-map task head (pose) puts between it and its predictor.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hrnet.models.registries import NECKS
from hrnet.registry import RegistryError


class V1Neck(nn.Module):
    """Keep one branch: the highest-resolution one (HRNetV1), or ``branch`` for the resolution study."""

    def __init__(self, in_channels: Sequence[int], base_stride: int = 4, branch: int = 0) -> None:
        super().__init__()
        if not 0 <= branch < len(in_channels):
            raise ValueError(f"read_branch must be in 0..{len(in_channels) - 1}, got {branch}")
        self.branch = branch
        self.out_channels = int(in_channels[branch])
        self.strides: tuple[int, ...] = (base_stride * 2**branch,)

    @classmethod
    def from_options(cls, in_channels: Sequence[int], options: NeckOptions) -> V1Neck:
        return cls(in_channels, branch=options.branch)

    def map_head(self) -> nn.Module:
        """What a one-map task head puts before its predictor: V1 reads a BN + ReLU output already."""
        return nn.Identity()

    def forward(self, features: list[Tensor]) -> OrderedDict[str, Tensor]:
        return OrderedDict([("0", features[self.branch])])


def concat_upsampled(features: Sequence[Tensor], align_corners: bool = False) -> Tensor:
    """Upsample every map bilinearly to the first one's size and concatenate."""
    size = features[0].shape[-2:]
    maps = [features[0]]
    maps += [F.interpolate(f, size=size, mode="bilinear", align_corners=align_corners) for f in features[1:]]
    return torch.cat(maps, dim=1)


class V2Neck(nn.Module):
    """Concatenate all branches at the highest resolution (15C channels for widths C, 2C, 4C, 8C)."""

    def __init__(self, in_channels: Sequence[int], base_stride: int = 4, align_corners: bool = False) -> None:
        super().__init__()
        self.out_channels = int(sum(in_channels))
        self.strides: tuple[int, ...] = (base_stride,)
        self.align_corners = align_corners

    @classmethod
    def from_options(cls, in_channels: Sequence[int], options: NeckOptions) -> V2Neck:
        return cls(in_channels, align_corners=options.align_corners)

    def map_head(self) -> nn.Module:
        """The official V2 head of the heatmap tasks (HRNet facial landmarks; segmentation's
        ``last_layer`` too): 1x1 conv + BatchNorm + ReLU over the concatenated channels."""
        channels = self.out_channels
        return nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
        )

    def forward(self, features: list[Tensor]) -> OrderedDict[str, Tensor]:
        return OrderedDict([("0", concat_upsampled(features, self.align_corners))])


class V2pNeck(nn.Module):
    """HRNetV2p feature pyramid (HRFPN): concat, 1x1 reduction, average pooling, 3x3 conv per level.

    Convolutions carry a bias and no normalisation, as in the official HRFPN without a norm config.
    Level ``i`` has size ``ceil(size_0 / 2**i)`` (identical to floor pooling for divisible sizes).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int = 256,
        num_levels: int = 5,
        base_stride: int = 4,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.align_corners = align_corners
        self.strides = tuple(base_stride * 2**i for i in range(num_levels))
        self.reduction_conv = nn.Conv2d(int(sum(in_channels)), out_channels, kernel_size=1)
        self.fpn_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1) for _ in range(num_levels)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    @classmethod
    def from_options(cls, in_channels: Sequence[int], options: NeckOptions) -> V2pNeck:
        return cls(
            in_channels, options.pyramid_channels, options.num_levels, align_corners=options.align_corners
        )

    def map_head(self) -> nn.Module:
        """BatchNorm + ReLU: the HRFPN level is linear (no norm or activation, kept so for detection)."""
        return nn.Sequential(nn.BatchNorm2d(self.out_channels), nn.ReLU(inplace=True))

    def forward(self, features: list[Tensor]) -> OrderedDict[str, Tensor]:
        x = self.reduction_conv(concat_upsampled(features, self.align_corners))
        out: OrderedDict[str, Tensor] = OrderedDict()
        for i, conv in enumerate(self.fpn_convs):
            # ceil_mode: a map not divisible by 2**i still yields a (partial-window) level, never an empty one
            level = x if i == 0 else F.avg_pool2d(x, kernel_size=2**i, stride=2**i, ceil_mode=True)
            out[str(i)] = conv(level)
        return out


@dataclass(frozen=True)
class NeckOptions:
    """What a neck may be built with: ``pyramid_channels``, the width of every V2p level (256 in the
    paper; v1 and v2 keep the backbone's channels); ``num_levels``, how many V2p levels are computed
    (1 for a model that reads the finest only); ``branch``, the branch V1 keeps; ``align_corners``,
    of the bilinear upsampling in the V2 / V2p concatenation."""

    pyramid_channels: int = 256
    align_corners: bool = False
    num_levels: int = 5
    branch: int = 0


def build_neck(
    head: str,
    in_channels: Sequence[int],
    pyramid_channels: int = 256,
    align_corners: bool = False,
    num_levels: int = 5,
    branch: int = 0,
) -> nn.Module:
    """The representation head registered as ``head`` (:data:`hrnet.models.registries.NECKS`:
    "v1", "v2", "v2p" or a plugin's), built by its ``from_options``."""
    try:
        neck = NECKS.get(head)
    except RegistryError as exc:
        raise ValueError(str(exc)) from None
    return neck.from_options(in_channels, NeckOptions(pyramid_channels, align_corners, num_levels, branch))
