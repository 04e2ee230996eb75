"""HRNet architecture variants, described as data.

Every variant is a frozen :class:`HRNetConfig`: a stem plus four stages. Stage 1 is a single
Bottleneck branch (``layer1`` in the official code); stages 2-4 are stacks of multi-resolution
modules made of BasicBlocks. The numbers follow the official HRNet configs (pose,
segmentation and ImageNet repositories); ``hrnet_w18_small`` is the "small v1" model and
``hrnet_w18_small_v2`` the "small v2" model of the segmentation repository.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Literal

BlockType = Literal["basic", "bottleneck"]
UpsampleMode = Literal["nearest", "bilinear"]
Fusion = Literal["full", "across_stage", "final"]
FusionDownsample = Literal["strided_conv", "bilinear"]
FusionOp = Literal["sum", "multiply"]
Streams = Literal["progressive", "parallel"]

#: The choices of the architecture options (the first of each is the official architecture).
VARIANT_CHOICES: dict[str, tuple[str, ...]] = {
    "fusion": ("full", "across_stage", "final"),
    "fusion_downsample": ("strided_conv", "bilinear"),
    "fusion_op": ("sum", "multiply"),
    "streams": ("progressive", "parallel"),
}


@dataclass(frozen=True)
class StageConfig:
    """One stage: ``num_modules`` repeated modules, each with one branch per entry of ``num_channels``."""

    num_modules: int
    block: BlockType
    num_blocks: tuple[int, ...]
    num_channels: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.block not in ("basic", "bottleneck"):
            raise ValueError(f"unknown block type {self.block!r}; expected 'basic' or 'bottleneck'")
        if len(self.num_blocks) != len(self.num_channels):
            raise ValueError(
                f"num_blocks {self.num_blocks} and num_channels {self.num_channels} differ in length"
            )
        if self.num_modules < 1 or not self.num_channels:
            raise ValueError("a stage needs at least one module and one branch")

    @property
    def num_branches(self) -> int:
        return len(self.num_channels)


@dataclass(frozen=True)
class HRNetConfig:
    """A complete HRNet backbone description.

    ``stages[0]`` is stage 1 (one branch), ``stages[k]`` has ``k + 1`` branches.
    ``upsample_mode`` is the interpolation used when a lower-resolution branch is fused into a
    higher one: "nearest" as in the official pose code (and timm), "bilinear" as in the official
    segmentation code. ``align_corners`` governs every bilinear resize the model makes: fusion
    (with "bilinear"), the V2 concatenation and, in the segmentation task, the upsampling of the
    logits. The official segmentation configs differ: the small models (W18-small v1/v2) keep
    ``MODEL.ALIGN_CORNERS: True``, the W48 Cityscapes config sets ``False``.

    The four architecture options are the ablations of the TPAMI paper ("Deep High-Resolution
    Representation Learning for Visual Recognition", section 7); the defaults are the official
    architecture, the only one official checkpoints load into:

    * ``fusion``: which multi-resolution modules fuse their branches. "full": every module (W32:
      1 + 4 + 3 = 8 fusion units); "across_stage": only the last module of stages 2, 3 and 4 (3);
      "final": only the last module of stage 4 (1). A module that does not fuse passes its
      branches on unchanged.
    * ``fusion_downsample``: how a higher-resolution branch reaches a lower one inside a fusion
      unit: "strided_conv" (3x3 stride-2 conv+BN per halving) or "bilinear" (bilinear resize to the
      target size, then a 1x1 conv+BN for the channels). Paper: COCO AP 72.6 and Cityscapes mIoU
      74.2 with bilinear downsampling (W32 pose, W48 segmentation, below the strided default).
    * ``fusion_op``: "sum" or "multiply" the fused terms. Paper: AP 54.7 and mIoU 66.0 with the
      multiplication, "much worse".
    * ``streams``: "progressive" (a stream added per stage) or "parallel": all four streams start
      after stage 1, with the same depth, at matched complexity (see :func:`parallel_stages`).
      Paper: the parallel variant is less accurate (low-level features of the early
      low-resolution streams help less).
    """

    name: str
    stages: tuple[StageConfig, StageConfig, StageConfig, StageConfig]
    stem_width: int = 64
    upsample_mode: UpsampleMode = "nearest"
    align_corners: bool = False
    fusion: Fusion = "full"
    fusion_downsample: FusionDownsample = "strided_conv"
    fusion_op: FusionOp = "sum"
    streams: Streams = "progressive"

    def __post_init__(self) -> None:
        if len(self.stages) != 4:
            raise ValueError(f"{self.name}: HRNet has 4 stages, got {len(self.stages)}")
        for index, stage in enumerate(self.stages):
            if stage.num_branches != index + 1:
                raise ValueError(
                    f"{self.name}: stage {index + 1} must have {index + 1} branches, got {stage.num_branches}"
                )
        if self.upsample_mode not in ("nearest", "bilinear"):
            raise ValueError(f"upsample_mode must be 'nearest' or 'bilinear', got {self.upsample_mode!r}")
        for option, choices in VARIANT_CHOICES.items():
            value = getattr(self, option)
            if value not in choices:
                raise ValueError(f"{option} must be one of {', '.join(choices)}; got {value!r}")

    @property
    def is_official(self) -> bool:
        """Whether this is the official architecture (every option at its default)."""
        return all(getattr(self, option) == choices[0] for option, choices in VARIANT_CHOICES.items())

    @property
    def variant(self) -> str:
        """The non-default architecture options, e.g. "fusion=final, fusion_op=multiply" ("" if official)."""
        return ", ".join(
            f"{option}={getattr(self, option)}"
            for option, choices in VARIANT_CHOICES.items()
            if getattr(self, option) != choices[0]
        )

    @property
    def module_stages(self) -> tuple[StageConfig, StageConfig, StageConfig]:
        """Stages 2-4 as built: the configured ones, or their parallel-streams counterpart."""
        if self.streams == "parallel":
            return parallel_stages(tuple(self.stages))
        return self.stages[1], self.stages[2], self.stages[3]

    @property
    def width(self) -> int:
        """The "W" of HRNet-W<n>: channels of the highest-resolution branch."""
        return self.stages[1].num_channels[0]

    @property
    def branch_channels(self) -> tuple[int, ...]:
        """Output channels of the final stage, highest resolution first."""
        return self.module_stages[2].num_channels

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


Cost = tuple[float, float]  # (parameters, MACs per stride-4 pixel) of convolution weights


def _conv(c_in: int, c_out: int, kernel: int, level: int) -> Cost:
    """A conv at branch ``level`` (1/4**level of the stride-4 pixels)."""
    weights = kernel * kernel * c_in * c_out
    return weights, weights / 4**level


def _total(costs: Iterable[Cost]) -> Cost:
    params = macs = 0.0
    for p, m in costs:
        params, macs = params + p, macs + m
    return params, macs


def _network_costs(stem: StageConfig, stages: Sequence[StageConfig], chain: bool = False) -> Cost:
    """Convolution weights and MACs of a backbone (BasicBlock stages 2-4), as the backbone builds it.

    Counted from the layer shapes alone (BatchNorm and the stride-2 stem conv, the same in both
    layouts, left out), so that the parallel layout can be searched without building models.
    """
    costs: list[Cost] = []
    p = stem.num_channels[0]
    costs += [_conv(64, p, 1, 0), _conv(p, p, 3, 0), _conv(p, 4 * p, 1, 0), _conv(64, 4 * p, 1, 0)]
    costs += [_conv(4 * p, p, 1, 0), _conv(p, p, 3, 0), _conv(p, 4 * p, 1, 0)] * (stem.num_blocks[0] - 1)
    previous = [4 * p]
    for stage in stages:
        chs = stage.num_channels
        for i, c in enumerate(chs):  # transition
            if i < len(previous):
                costs += [] if previous[i] == c else [_conv(previous[i], c, 3, i)]
            elif chain:  # see backbone._transition
                costs.append(_conv(chs[i - 1], c, 3, i))
            else:
                c_in = previous[-1]
                costs += [_conv(c_in, c_in, 3, lvl) for lvl in range(len(previous), i)] + [
                    _conv(c_in, c, 3, i)
                ]
        branch = [_conv(c, c, 3, k) for k, c in enumerate(chs)]
        fusion = [
            _conv(chs[j], chs[i], 1, j)
            if j > i
            else _total(
                [*(_conv(chs[j], chs[j], 3, lvl) for lvl in range(j + 1, i)), _conv(chs[j], chs[i], 3, i)]
            )
            for i in range(len(chs))
            for j in range(len(chs))
            if i != j
        ]
        module = _total(
            [*(c for c, n in zip(branch, stage.num_blocks, strict=True) for _ in range(2 * n)), *fusion]
        )
        costs += [module] * stage.num_modules
        previous = list(chs)
    return _total(costs)


@functools.cache
def parallel_stages(stages: tuple[StageConfig, ...]) -> tuple[StageConfig, StageConfig, StageConfig]:
    """Stages 2-4 of the "parallel streams" variant of ``stages``, at matched complexity.

    All four streams exist from stage 2 on, with the same depth, and every stage keeps its number
    of modules, so the fusion units sit where they do in the progressive model (the paper's
    resolution-maintenance ablation; the paper matched #params and GFLOPs but does not say how).
    With the widths C, 2C, 4C, 8C kept, no depth matches both counts: each stream costs about the
    same MACs per block, but the 8C stream holds most of the parameters. So the matching searches
    two numbers, on the layer shapes (:func:`_network_costs`, stem to last fusion):

    * ``r``: the stream widths become ``C * r**k`` (C, the "W", is kept), r in 1.00 .. 2.00;
    * the blocks per module (the same for every stream and module), 1..8;

    and keeps the pair with the smallest worst relative error of parameters and MACs. Every
    registered model then lands within 10% of its progressive self in both counts, measured on
    the whole built network (tests/test_variants.py).
    """
    progressive = stages[1:]
    target = _network_costs(stages[0], progressive)
    width = progressive[0].num_channels[0]
    branches = len(progressive[-1].num_channels)
    best: tuple[float, tuple[StageConfig, ...]] | None = None
    for step in range(101):
        channels = tuple(max(1, round(width * (1 + step / 100) ** k)) for k in range(branches))
        for blocks in range(1, 9):
            layout = tuple(
                StageConfig(s.num_modules, s.block, (blocks,) * branches, channels) for s in progressive
            )
            cost = _network_costs(stages[0], layout, chain=True)
            error = max(abs(cost[0] / target[0] - 1), abs(cost[1] / target[1] - 1))
            if best is None or error < best[0]:
                best = (error, layout)
    assert best is not None
    return best[1]  # type: ignore[return-value]


def _widths(c: int, branches: int) -> tuple[int, ...]:
    return tuple(c * 2**i for i in range(branches))


def _standard(name: str, width: int) -> HRNetConfig:
    """The regular HRNet-W<width>: 1/1/4/3 modules, 4 blocks per branch."""
    return HRNetConfig(
        name=name,
        stages=(
            StageConfig(1, "bottleneck", (4,), (64,)),
            StageConfig(1, "basic", (4, 4), _widths(width, 2)),
            StageConfig(4, "basic", (4, 4, 4), _widths(width, 3)),
            StageConfig(3, "basic", (4, 4, 4, 4), _widths(width, 4)),
        ),
    )


MODEL_CONFIGS: dict[str, HRNetConfig] = {
    "hrnet_w18_small": HRNetConfig(
        name="hrnet_w18_small",
        stages=(
            StageConfig(1, "bottleneck", (1,), (32,)),
            StageConfig(1, "basic", (2, 2), (16, 32)),
            StageConfig(1, "basic", (2, 2, 2), (16, 32, 64)),
            StageConfig(1, "basic", (2, 2, 2, 2), (16, 32, 64, 128)),
        ),
    ),
    "hrnet_w18_small_v2": HRNetConfig(
        name="hrnet_w18_small_v2",
        stages=(
            StageConfig(1, "bottleneck", (2,), (64,)),
            StageConfig(1, "basic", (2, 2), (18, 36)),
            StageConfig(3, "basic", (2, 2, 2), (18, 36, 72)),
            StageConfig(2, "basic", (2, 2, 2, 2), (18, 36, 72, 144)),
        ),
    ),
    **{f"hrnet_w{w}": _standard(f"hrnet_w{w}", w) for w in (18, 30, 32, 40, 44, 48, 64)},
}


def get_config(name: str) -> HRNetConfig:
    """Return the config registered under ``name`` (ValueError listing the valid names otherwise)."""
    try:
        return MODEL_CONFIGS[name]
    except KeyError:
        valid = ", ".join(sorted(MODEL_CONFIGS))
        raise ValueError(f"unknown HRNet model {name!r}; valid names: {valid}") from None
