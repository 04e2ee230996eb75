"""The whole ``params.yaml``: :class:`Params`, its checks across sections, and loading it with
one-line errors (the closest valid key for an unknown one, the new place of a moved one)."""

from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError, field_validator, model_validator

from hrnet.tasks import TASKS
from pipeline.params.base import ConfigError, per_task
from pipeline.params.data import REAL_SOURCES, DataConfig
from pipeline.params.evaluate import EvaluateConfig, PackageConfig
from pipeline.params.search import OnDemandConfig, TuneConfig
from pipeline.params.training import ModelConfig, TrainConfig

PERSON_DETECTOR_BOXES = "data/person_detector/detections.json"  # what detector/dvc.yaml writes
PAPER_HEADS: dict[str, str] = {name: task.default_head for name, task in TASKS.items()}


class Params(per_task("TaskConfigs", "config")):  # type: ignore[misc]
    """``params.yaml``. Besides these sections, ``<task>`` holds each registered task's own."""

    seed: int = 42
    task: str = "pose"  # a registered task (hrnet.tasks.TASKS)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    package: PackageConfig = PackageConfig()
    tune: TuneConfig = TuneConfig()
    on_demand: OnDemandConfig = OnDemandConfig()

    @field_validator("task")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in TASKS:
            raise ValueError(f"expected one of {list(TASKS.names())} (the registered tasks), got {value!r}")
        return value

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
        branch = getattr(self.task_config, "read_branch", 0)
        if branch and self.model.head != "v1":
            raise ValueError(
                f"{self.task}.read_branch: {branch} reads one branch, which needs model.head v1; "
                f"got {self.model.head!r}"
            )
        return self

    @model_validator(mode="after")
    def _resnet_fpn_for_detection(self) -> Params:
        problem = self.model.resnet_fpn_problem(self.task)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _source_fits_task(self) -> Params:
        allowed = ("synthetic", *REAL_SOURCES[self.task])
        if self.data.source not in allowed:
            raise ValueError(
                f"data.source: {self.data.source!r} does not serve task {self.task!r}; "
                f"expected one of {list(allowed)}"
            )
        return self

    @model_validator(mode="after")
    def _synthetic_layout_fits_task(self) -> Params:
        layout, written = self.data.synthetic.layout, TASKS[self.task].synthetic_layouts
        if layout is not None and layout not in written:
            expected = f"one of {list(written)} or null" if written else "null (one layout only)"
            raise ValueError(
                f"data.synthetic.layout: task {self.task!r} cannot write its synthetic data as {layout!r}; "
                f"expected {expected}"
            )
        return self

    @model_validator(mode="after")
    def _detector_boxes_need_the_detector(self) -> Params:
        boxes = getattr(getattr(self.evaluate, "pose", None), "boxes", "")
        if Path(boxes).as_posix() == PERSON_DETECTOR_BOXES and not self.on_demand.person_detector:
            raise ValueError(
                f"on_demand.person_detector: evaluate.pose.boxes names {PERSON_DETECTOR_BOXES}, which "
                "detector/dvc.yaml writes; expected [run] to add that stage (got [])"
            )
        return self

    @property
    def task_config(self) -> Any:
        """The current task's own section, ``params.<task>``."""
        return getattr(self, self.task)

    @property
    def test_config(self) -> Any:
        """The current task's test-time section, ``params.evaluate.<task>``."""
        return getattr(self.evaluate, self.task)

    @property
    def model_name(self) -> str:
        if self.package.name:
            return self.package.name
        size = TASKS.get(self.task).run_name(self)
        return f"{self.task}_{self.model.name}_{self.model.head}{size}"


def _fields(schema: type) -> dict[str, Any]:
    """A section's field names and types: a pydantic model's or a task's config dataclass's."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return {name: field.annotation for name, field in schema.model_fields.items()}
    if dataclasses.is_dataclass(schema):
        return {field.name: hints for field, hints in zip(dataclasses.fields(schema), _hints(schema))}
    return {}


def _hints(schema: type) -> list[Any]:
    resolved = typing.get_type_hints(schema)
    return [resolved[field.name] for field in dataclasses.fields(schema)]


def _schema_at(path: tuple[Any, ...]) -> type | None:
    schema: type = Params
    for key in path:
        if isinstance(key, int):  # an item of a list of sections (tune.search.<task>.space)
            continue
        annotation = _fields(schema).get(str(key))
        if annotation is None:
            return None
        if get_args(annotation) and isinstance(get_args(annotation)[0], type):
            annotation = get_args(annotation)[0]  # tuple[Section, ...]: its item
        if not _fields(annotation):
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


# keys that moved: (old location) -> (new dotted key, why); each task lists its own (Task.moved_keys)
MOVED_KEYS = {(name, old): moved for name, task in TASKS.items() for old, moved in task.moved_keys.items()}
UNKNOWN_KEY = ("extra_forbidden", "unexpected_keyword_argument")  # of a model, of a dataclass


def _describe(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc)
    if error["type"] in UNKNOWN_KEY and loc in MOVED_KEYS:
        new, why = MOVED_KEYS[loc]
        return f"{key} is now {new!r} ({why})"
    if error["type"] in UNKNOWN_KEY:
        parent = _schema_at(loc[:-1])
        valid = sorted(_fields(parent)) if parent else []
        close = _suggest(str(loc[-1]), valid)
        hint = f"; did you mean {'.'.join([*map(str, loc[:-1]), close])!r}?" if close else ""
        return f"unknown key {key!r}{hint} (valid: {', '.join(valid)})"
    message = error["msg"].removeprefix("Value error, ")
    if not key:  # a check across sections names its keys itself
        return message
    field, _, rest = message.partition(": ")
    section = _schema_at(loc)
    if rest and section is not None and field in _fields(section):  # a config's own check names its field
        key, message = f"{key}.{field}", rest
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
