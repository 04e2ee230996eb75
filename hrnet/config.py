"""Typed schema of ``params.yaml``.

Every knob that changes a result lives here, with its default written out in ``params.yaml``
as well; the pipeline never reads a value that is not declared below. Unknown keys are refused
with the closest valid name, and invalid values with their dotted key path.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hrnet.models.configs import MODEL_CONFIGS


class ConfigError(ValueError):
    """A params file that does not match the schema; the message is one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticConfig(_Section):
    num_train_images: int = Field(600, ge=1)
    num_val_images: int = Field(120, ge=1)
    image_size: tuple[int, int] = (320, 240)
    persons_per_image: tuple[int, int] = (1, 4)

    @field_validator("persons_per_image")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1]:
            raise ValueError("expected [min, max] with 1 <= min <= max")
        return value


class DataConfig(_Section):
    source: Literal["synthetic", "coco"] = "synthetic"
    root: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    input_size: tuple[int, int] = Field((96, 128), description="network input (width, height)")
    sigma: float = Field(2.0, gt=0)
    on_bad_sample: Literal["fail", "skip"] = "fail"
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _root_for_real_data(self) -> DataConfig:
        if self.source != "synthetic" and not self.root:
            raise ValueError(f"data.root: required when data.source is {self.source!r}")
        return self

    @field_validator("input_size")
    @classmethod
    def _divisible_by_32(cls, value: tuple[int, int]) -> tuple[int, int]:
        if any(v <= 0 or v % 32 for v in value):
            raise ValueError(f"expected [width, height] both positive multiples of 32, got {list(value)}")
        return value


class ModelConfig(_Section):
    name: str = "hrnet_w18_small"
    head: Literal["v1", "v2", "v2p"] = "v1"
    pretrained: str | None = None

    @field_validator("name")
    @classmethod
    def _known_variant(cls, value: str) -> str:
        if value not in MODEL_CONFIGS:
            raise ValueError(f"expected one of {sorted(MODEL_CONFIGS)}, got {value!r}")
        return value


class AugmentConfig(_Section):
    flip: bool = True
    rot_factor: float = Field(40.0, ge=0)
    scale_factor: float = Field(0.35, ge=0, lt=1)
    rot_prob: float = Field(0.6, ge=0, le=1)
    half_body_prob: float = Field(0.3, ge=0, le=1)
    num_joints_half_body: int = Field(8, ge=1, le=17)


class TrainConfig(_Section):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    num_workers: int = Field(1, ge=0)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    lr_milestones: tuple[int, ...] = (15, 18)
    lr_factor: float = Field(0.1, gt=0, le=1)
    augment: AugmentConfig = AugmentConfig()
    accelerator: str = "cpu"
    devices: int | str = 1
    precision: str = "32-true"
    limit_train_batches: float | int | None = None

    @model_validator(mode="after")
    def _milestones_within_epochs(self) -> TrainConfig:
        if list(self.lr_milestones) != sorted(self.lr_milestones) or any(m < 1 for m in self.lr_milestones):
            raise ValueError(
                f"train.lr_milestones: expected increasing positive epochs, got {list(self.lr_milestones)}"
            )
        return self


class EvaluateConfig(_Section):
    batch_size: int = Field(64, ge=1)
    flip_test: bool = True
    shift_heatmap: bool = True
    num_figures: int = Field(4, ge=0)
    keypoint_score_threshold: float = Field(0.2, ge=0, le=1)


class PackageConfig(_Section):
    name: str | None = None
    format: Literal["torch_export"] = "torch_export"


class Params(_Section):
    seed: int = 42
    task: Literal["pose"] = "pose"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    package: PackageConfig = PackageConfig()

    @property
    def heatmap_size(self) -> tuple[int, int]:
        width, height = self.data.input_size
        return width // 4, height // 4

    @property
    def model_name(self) -> str:
        if self.package.name:
            return self.package.name
        width, height = self.data.input_size
        return f"{self.task}_{self.model.name}_{self.model.head}_{height}x{width}"


def _schema_at(path: tuple[Any, ...]) -> type[BaseModel] | None:
    schema: type[BaseModel] = Params
    for key in path:
        field = schema.model_fields.get(str(key))
        if field is None:
            return None
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        schema = annotation
    return schema


def _suggest(name: str, valid: list[str]) -> str | None:
    """Closest valid key: a near spelling, else a key spelled by the name's initials (learning_rate: lr)."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    if close:
        return close[0]
    initials = "".join(part[0] for part in name.split("_") if part)
    return initials if initials in valid else None


def _describe(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden":
        parent = _schema_at(loc[:-1])
        valid = sorted(parent.model_fields) if parent else []
        close = _suggest(str(loc[-1]), valid)
        hint = f"; did you mean {'.'.join([*map(str, loc[:-1]), close])!r}?" if close else ""
        return f"unknown key {key!r}{hint} (valid: {', '.join(valid)})"
    message = error["msg"].removeprefix("Value error, ")
    return f"{key}: {message} (got {error.get('input')!r})" if "got" not in message else f"{key}: {message}"


def parse_params(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """Validates a params mapping; raises :class:`ConfigError` with a one-line message."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        first = _describe(exc.errors()[0])
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{source}: {first}{more}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return parse_params(raw, str(path))
