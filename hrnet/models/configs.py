"""HRNet architecture variants, described as data.

Every variant is a frozen :class:`HRNetConfig`: a stem plus four stages. Stage 1 is a single
Bottleneck branch (``layer1`` in the official code); stages 2-4 are stacks of multi-resolution
modules made of BasicBlocks. The numbers follow the official HRNet configs (pose,
segmentation and ImageNet repositories); ``hrnet_w18_small`` is the "small v1" model and
``hrnet_w18_small_v2`` the "small v2" model of the segmentation repository.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

BlockType = Literal["basic", "bottleneck"]
UpsampleMode = Literal["nearest", "bilinear"]


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
    segmentation code (``align_corners`` only matters for "bilinear").
    """

    name: str
    stages: tuple[StageConfig, StageConfig, StageConfig, StageConfig]
    stem_width: int = 64
    upsample_mode: UpsampleMode = "nearest"
    align_corners: bool = False

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

    @property
    def width(self) -> int:
        """The "W" of HRNet-W<n>: channels of the highest-resolution branch."""
        return self.stages[1].num_channels[0]

    @property
    def branch_channels(self) -> tuple[int, ...]:
        """Output channels of the final stage, highest resolution first."""
        return self.stages[3].num_channels

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


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
