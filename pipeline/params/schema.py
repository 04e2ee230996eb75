"""The whole ``params.yaml``: :class:`Params`, its checks across sections, and loading it with
one-line errors (the closest valid key for an unknown one, the new place of a moved one)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ValidationError, model_validator

from hrnet.models import TASKS
from pipeline.params.base import ConfigError, Section
from pipeline.params.data import REAL_SOURCES, DataConfig
from pipeline.params.evaluate import EvaluateConfig, PackageConfig
from pipeline.params.search import TuneConfig
from pipeline.params.training import (
    PAPER_HEADS,
    DetectionConfig,
    ModelConfig,
    PoseConfig,
    SegmentationConfig,
    TrainConfig,
)


class Params(Section):
    seed: int = 42
    task: Literal[TASKS] = "pose"  # the library's tasks (hrnet.models.TASKS)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    pose: PoseConfig = PoseConfig()
    segmentation: SegmentationConfig = SegmentationConfig()
    detection: DetectionConfig = DetectionConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    package: PackageConfig = PackageConfig()
    tune: TuneConfig = TuneConfig()

    @model_validator(mode="before")
    @classmethod
    def _paper_head(cls, data: Any) -> Any:
        """``model.head`` null (or absent) becomes the paper's head for the task: V1 for pose, V2
        for segmentation, V2p for detection."""
        if not isinstance(data, dict):
            return data
        model = data.get("model", {})
        head = PAPER_HEADS.get(data.get("task", "pose"))
        if head is None:  # an unknown task: reported by the field check
            return data
        if isinstance(model, dict) and model.get("head") is None:
            return {**data, "model": {**model, "head": head}}
        if isinstance(model, ModelConfig) and model.head is None:
            return {**data, "model": model.model_copy(update={"head": head})}
        return data

    @model_validator(mode="after")
    def _read_branch_fits_head(self) -> Params:
        if self.task == "pose" and self.pose.read_branch and self.model.head != "v1":
            raise ValueError(
                f"pose.read_branch: {self.pose.read_branch} reads one branch, which needs model.head v1; "
                f"got {self.model.head!r}"
            )
        return self

    @model_validator(mode="after")
    def _source_fits_task(self) -> Params:
        allowed = ("synthetic", REAL_SOURCES[self.task])
        if self.data.source not in allowed:
            raise ValueError(
                f"data.source: {self.data.source!r} does not serve task {self.task!r}; "
                f"expected one of {list(allowed)}"
            )
        return self

    @property
    def model_name(self) -> str:
        if self.package.name:
            return self.package.name
        if self.task == "pose":
            width, height = self.pose.input_size
            size = f"_{height}x{width}"
        elif self.task == "segmentation":
            width, height = self.segmentation.crop_size
            size = f"_{height}x{width}"
        else:
            size = f"_{self.detection.min_size}"
        return f"{self.task}_{self.model.name}_{self.model.head}{size}"


def _schema_at(path: tuple[Any, ...]) -> type[BaseModel] | None:
    schema: type[BaseModel] = Params
    for key in path:
        if isinstance(key, int):  # an item of a list of sections (tune.search.<task>.space)
            continue
        field = schema.model_fields.get(str(key))
        if field is None:
            return None
        annotation = field.annotation
        if get_args(annotation) and isinstance(get_args(annotation)[0], type):
            annotation = get_args(annotation)[0]  # tuple[Section, ...]: its item
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


# keys that moved: (old location) -> (new dotted key, why)
MOVED_KEYS = {
    ("detection", "pyramid_channels"): ("model.pyramid_channels", "it serves every task"),
    ("pose", "flip_test"): ("evaluate.pose.flip_test", "a test-time setting"),
    ("pose", "shift_heatmap"): ("evaluate.pose.shift_heatmap", "a test-time setting"),
    ("pose", "keypoint_score_threshold"): ("evaluate.pose.keypoint_score_threshold", "a test-time setting"),
    ("segmentation", "eval_mode"): ("evaluate.segmentation.mode", "a test-time setting"),
    ("segmentation", "eval_scales"): ("evaluate.segmentation.scales", "a test-time setting"),
    ("segmentation", "eval_flip"): ("evaluate.segmentation.flip", "a test-time setting"),
    ("detection", "score_threshold"): ("evaluate.detection.score_threshold", "a test-time setting"),
}


def _describe(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden" and loc in MOVED_KEYS:
        new, why = MOVED_KEYS[loc]
        return f"{key} is now {new!r} ({why})"
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
