"""The HRNet backbone (HighResolutionNet), assembled from an :class:`HRNetConfig`.

Attribute names follow the official implementations (pose, segmentation, ImageNet and timm), so
their checkpoints map onto this module key for key: ``conv1, bn1, conv2, bn2, layer1,
transition1, stage2, transition2, stage3, transition3, stage4``; inside a stage module
``branches.{i}.{j}.*`` and ``fuse_layers.{i}.{j}.*``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import BLOCKS, make_blocks
from .configs import HRNetConfig, StageConfig

STEM_OUT_CHANNELS = 64


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches followed by multi-resolution fusion.

    Output ``i`` is ``ReLU(sum_j path_ij(x_j))`` where ``path_ii`` is the identity, a higher
    resolution input (``j < i``) goes through ``i - j`` strided 3x3 conv+BN (ReLU between them,
    not after the last) and a lower resolution input (``j > i``) through a 1x1 conv+BN and an
    upsampling to the exact size of ``x_i``. With ``multi_scale_output=False`` only output 0 is
    computed (and only its fusion paths exist), as in the last module of the official pose model.

    The ablation options (see :class:`HRNetConfig`): ``fuse=False`` returns the branch outputs
    unfused (no ``fuse_layers``); ``downsample="bilinear"`` makes a ``j < i`` path a bilinear
    resize followed by a 1x1 conv+BN; ``op="multiply"`` multiplies the terms instead of summing.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        stage: StageConfig,
        multi_scale_output: bool = True,
        upsample_mode: str = "nearest",
        align_corners: bool = False,
        fuse: bool = True,
        downsample: str = "strided_conv",
        op: str = "sum",
    ) -> None:
        super().__init__()
        if len(in_channels) != stage.num_branches:
            raise ValueError(f"{len(in_channels)} inputs for a module with {stage.num_branches} branches")
        block = BLOCKS[stage.block]
        self.branches = nn.ModuleList(
            make_blocks(block, c_in, planes, n)
            for c_in, planes, n in zip(in_channels, stage.num_channels, stage.num_blocks, strict=True)
        )
        self.out_channels = [planes * block.expansion for planes in stage.num_channels]
        self.upsample_mode = upsample_mode
        self.align_corners: bool | None = align_corners if upsample_mode == "bilinear" else None
        self.bilinear_align_corners = align_corners
        self.downsample = downsample
        self.op = op
        num_branches = stage.num_branches
        num_outputs = num_branches if multi_scale_output else 1
        self.fuse_layers: nn.ModuleList | None = None
        if num_branches > 1 and fuse:
            self.fuse_layers = nn.ModuleList(
                nn.ModuleList(self._fuse_path(j, i) for j in range(num_branches)) for i in range(num_outputs)
            )
        elif not multi_scale_output:
            raise ValueError("a module that computes only output 0 must fuse")
        self.relu = nn.ReLU(inplace=True)

    def _fuse_path(self, src: int, dst: int) -> nn.Module:
        chs = self.out_channels
        if src == dst:
            return nn.Identity()
        if src > dst or self.downsample == "bilinear":  # 1x1 conv + BN here, the resize in forward
            return _conv_bn(chs[src], chs[dst], kernel=1, stride=1, relu=False)
        steps = dst - src
        return nn.Sequential(
            *(
                _conv_bn(chs[src], chs[dst] if k == steps - 1 else chs[src], 3, 2, relu=k < steps - 1)
                for k in range(steps)
            )
        )

    def _term(self, path: nn.Module, x: Tensor, src: int, dst: int, size: torch.Size) -> Tensor:
        if src > dst:
            return F.interpolate(
                path(x), size=size, mode=self.upsample_mode, align_corners=self.align_corners
            )
        if self.downsample == "bilinear":  # resize first: the 1x1 conv then runs at the lower resolution
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=self.bilinear_align_corners)
        return path(x)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        if self.fuse_layers is None:
            return xs
        multiply = self.op == "multiply"
        outputs: list[Tensor] = []
        for i, paths in enumerate(self.fuse_layers):
            target = xs[i]
            total: Tensor | None = None
            owned = False  # whether `total` is a fresh tensor we may update in place
            for j, path in enumerate(paths):
                term = target if j == i else self._term(path, xs[j], j, i, target.shape[-2:])
                if total is None:
                    total, owned = term, j != i
                elif multiply:
                    total = total * term  # out of place: autograd keeps both factors
                    owned = True
                elif owned:
                    total += term
                else:
                    total, owned = total + term, True
            assert total is not None
            outputs.append(self.relu(total))
        return outputs


def _transition(
    in_channels: Sequence[int], out_channels: Sequence[int], chain: bool = False
) -> nn.ModuleList:
    """Adapt the previous stage's outputs to the next stage; new branches come from the lowest one.

    With ``chain`` (the parallel-streams layout, where stage 2 adds three branches at once) new
    branch ``i`` is one strided conv of new branch ``i - 1`` instead of ``i`` convs of the lowest input.
    """
    layers: list[nn.Module] = []
    for i, c_out in enumerate(out_channels):
        if i < len(in_channels):
            same = in_channels[i] == c_out
            layers.append(nn.Identity() if same else _conv_bn(in_channels[i], c_out, 3, 1, relu=True))
        else:
            c_in = out_channels[i - 1] if chain else in_channels[-1]
            steps = 1 if chain else i + 1 - len(in_channels)
            layers.append(
                nn.Sequential(
                    *(
                        _conv_bn(c_in, c_out if k == steps - 1 else c_in, 3, 2, relu=True)
                        for k in range(steps)
                    )
                )
            )
    return nn.ModuleList(layers)


class HighResolutionNet(nn.Module):
    """HRNet backbone; ``forward`` returns the final branch maps, highest resolution first.

    The maps have strides 4, 8, 16, 32. With ``multi_scale_output=False`` (pose V1 as in the
    official pose code) the last stage-4 module fuses into branch 0 only and the output list
    holds that single map.
    """

    __jit_unused_properties__ = ["num_fusion_units"]  # a Python-side count: not scripted

    def __init__(self, config: HRNetConfig, multi_scale_output: bool = True, in_channels: int = 3) -> None:
        super().__init__()
        self.config = config
        self.multi_scale_output = multi_scale_output
        self.chained = config.streams == "parallel"
        self.conv1 = nn.Conv2d(in_channels, config.stem_width, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(config.stem_width)
        self.conv2 = nn.Conv2d(config.stem_width, STEM_OUT_CHANNELS, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(STEM_OUT_CHANNELS)
        self.relu = nn.ReLU(inplace=True)

        stage1 = config.stages[0]
        block1 = BLOCKS[stage1.block]
        self.layer1 = make_blocks(block1, STEM_OUT_CHANNELS, stage1.num_channels[0], stage1.num_blocks[0])
        channels = [stage1.num_channels[0] * block1.expansion]
        for index, stage in enumerate(config.module_stages, start=1):
            expansion = BLOCKS[stage.block].expansion
            self.add_module(
                f"transition{index}",
                _transition(channels, [c * expansion for c in stage.num_channels], chain=self.chained),
            )
            channels = [c * expansion for c in stage.num_channels]
            modules: list[HighResolutionModule] = []
            for m in range(stage.num_modules):
                last_of_stage = m == stage.num_modules - 1
                last = index == 3 and last_of_stage
                fuse = config.fusion == "full" or (
                    last_of_stage and (config.fusion == "across_stage" or last)
                )
                module = HighResolutionModule(
                    channels,
                    stage,
                    multi_scale_output=multi_scale_output or not last,
                    upsample_mode=config.upsample_mode,
                    align_corners=config.align_corners,
                    fuse=fuse,
                    downsample=config.fusion_downsample,
                    op=config.fusion_op,
                )
                channels = module.out_channels
                modules.append(module)
            self.add_module(f"stage{index + 1}", nn.Sequential(*modules))

        num_out = len(channels) if multi_scale_output else 1
        self.out_channels: list[int] = list(channels[:num_out])
        self.strides: list[int] = [4 * 2**i for i in range(num_out)]
        self.feature_info: list[dict[str, Any]] = [
            {"num_chs": c, "reduction": s, "module": "stage4", "index": i}
            for i, (c, s) in enumerate(zip(self.out_channels, self.strides, strict=True))
        ]
        self.reset_parameters()

    @property
    def num_fusion_units(self) -> int:
        """Multi-resolution modules that fuse their branches (official W32: 8)."""
        return sum(m.fuse_layers is not None for m in self.modules() if isinstance(m, HighResolutionModule))

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        for transition, stage in (
            (self.transition1, self.stage2),
            (self.transition2, self.stage3),
            (self.transition3, self.stage4),
        ):
            xs: list[Tensor] = []
            for i, t in enumerate(transition):
                xs.append(t(ys[i] if i < len(ys) else xs[-1] if self.chained else ys[-1]))
            ys = stage(xs)
        return ys
