"""Representation heads ("necks") turning the backbone's branch maps into feature maps.

* ``v1``  (HRNetV1): the highest-resolution branch only.
* ``v2``  (HRNetV2): every branch bilinearly upsampled to the highest resolution and concatenated.
* ``v2p`` (HRNetV2p): V2, a 1x1 conv to 256 channels, average pooling into a 5-level pyramid
  (strides 4..64) and a 3x3 conv per level, as the HRFPN neck of the official detection code.

Each neck returns an ``OrderedDict[str, Tensor]`` (keys "0", "1", ...) and exposes
``out_channels`` (int) and ``strides`` so that torchvision detectors can consume it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HEADS = ("v1", "v2", "v2p")


class V1Neck(nn.Module):
    """Keep one branch: the highest-resolution one (HRNetV1), or ``branch`` for the resolution study."""

    def __init__(self, in_channels: Sequence[int], base_stride: int = 4, branch: int = 0) -> None:
        super().__init__()
        if not 0 <= branch < len(in_channels):
            raise ValueError(f"read_branch must be in 0..{len(in_channels) - 1}, got {branch}")
        self.branch = branch
        self.out_channels = int(in_channels[branch])
        self.strides: tuple[int, ...] = (base_stride * 2**branch,)

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

    def forward(self, features: list[Tensor]) -> OrderedDict[str, Tensor]:
        x = self.reduction_conv(concat_upsampled(features, self.align_corners))
        out: OrderedDict[str, Tensor] = OrderedDict()
        for i, conv in enumerate(self.fpn_convs):
            # ceil_mode: a map not divisible by 2**i still yields a (partial-window) level, never an empty one
            level = x if i == 0 else F.avg_pool2d(x, kernel_size=2**i, stride=2**i, ceil_mode=True)
            out[str(i)] = conv(level)
        return out


def build_neck(
    head: str,
    in_channels: Sequence[int],
    pyramid_channels: int = 256,
    align_corners: bool = False,
    num_levels: int = 5,
    branch: int = 0,
) -> V1Neck | V2Neck | V2pNeck:
    """Create the representation head named ``head`` ("v1", "v2" or "v2p").

    ``pyramid_channels`` is the width of every V2p level (256 in the paper; v1 and v2 keep the
    backbone's channels); ``num_levels`` how many V2p levels are computed (1 for a model that
    reads the finest only). ``branch``: the branch V1 keeps. ``align_corners``: of the bilinear
    upsampling in the V2 / V2p concatenation.
    """
    if head == "v1":
        return V1Neck(in_channels, branch=branch)
    if head == "v2":
        return V2Neck(in_channels, align_corners=align_corners)
    if head == "v2p":
        return V2pNeck(in_channels, pyramid_channels, num_levels, align_corners=align_corners)
    raise ValueError(f"unknown head {head!r}; valid heads: {', '.join(HEADS)}")
