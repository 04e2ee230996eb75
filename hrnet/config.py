"""Typed schema of ``params.yaml``.

Every knob that changes a result lives here, with its default written out in ``params.yaml``
as well; the pipeline never reads a value that is not declared below. Unknown keys are refused
with the closest valid name, and invalid values with their dotted key path.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hrnet.errors import UserError
from hrnet.models.configs import MODEL_CONFIGS


class ConfigError(UserError, ValueError):
    """A params file that does not match the schema; the message is one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticPoseConfig(_Section):
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


class SyntheticSegmentationConfig(_Section):
    num_train_images: int = Field(300, ge=1)
    num_val_images: int = Field(50, ge=1)
    image_size: tuple[int, int] = (512, 256)


class SyntheticDetectionConfig(_Section):
    num_train_images: int = Field(320, ge=1)
    num_val_images: int = Field(100, ge=1)
    image_size: tuple[int, int] = (128, 128)
    objects_per_image: tuple[int, int] = (1, 4)


class SyntheticConfig(_Section):
    """Size of the embedded dataset that the prepare stage generates for each task."""

    pose: SyntheticPoseConfig = SyntheticPoseConfig()
    segmentation: SyntheticSegmentationConfig = SyntheticSegmentationConfig()
    detection: SyntheticDetectionConfig = SyntheticDetectionConfig()


REAL_SOURCES = {"pose": "coco", "segmentation": "cityscapes", "detection": "coco"}


SYNTHETIC_ROOT = "data/synthetic"  # where the synthesize stage writes the embedded dataset


class DataConfig(_Section):
    source: Literal["synthetic", "coco", "cityscapes"] = "synthetic"
    root: str = Field(SYNTHETIC_ROOT, min_length=1, description="the dataset folder; a DVC dependency")
    train_split: str = "train"
    val_split: str = "val"
    on_bad_sample: Literal["fail", "skip"] = "fail"
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _root_for_real_data(self) -> DataConfig:
        if self.source != "synthetic" and Path(self.root) == Path(SYNTHETIC_ROOT):
            raise ValueError(
                f"data.root: required when data.source is {self.source!r} (the folder holding the "
                f"{self.source} dataset; got {self.root!r}, where the embedded synthetic data lives)"
            )
        return self


def _multiple_of_32(value: tuple[int, int]) -> tuple[int, int]:
    if any(v <= 0 or v % 32 for v in value):
        raise ValueError(f"expected [width, height] both positive multiples of 32, got {list(value)}")
    return value


PAPER_HEADS = {"pose": "v1", "segmentation": "v2", "detection": "v2p"}


class ModelConfig(_Section):
    """The network: variant, representation head, ablation options (hrnet.models.configs.HRNetConfig)."""

    name: str = "hrnet_w18_small"
    head: Literal["v1", "v2", "v2p"] | None = Field(None, description="null: the paper's head for the task")
    pretrained: str | None = None
    pyramid_channels: int = Field(64, ge=1, description="width of the V2p levels (every task); paper: 256")
    align_corners: bool = Field(False, description="of every bilinear resize the model makes")
    fusion: Literal["full", "across_stage", "final"] = "full"
    fusion_downsample: Literal["strided_conv", "bilinear"] = "strided_conv"
    fusion_op: Literal["sum", "multiply"] = "sum"
    streams: Literal["progressive", "parallel"] = "progressive"

    def architecture(self) -> dict[str, Any]:
        """Keyword arguments of ``create_model`` / ``create_backbone`` beyond name, head and weights."""
        return self.model_dump(exclude={"name", "head", "pretrained"})

    @field_validator("name")
    @classmethod
    def _known_variant(cls, value: str) -> str:
        if value not in MODEL_CONFIGS:
            raise ValueError(f"expected one of {sorted(MODEL_CONFIGS)}, got {value!r}")
        return value


class TrainConfig(_Section):
    """Trainer settings shared by every task (Lightning's names; DDP across devices and nodes)."""

    epochs: int = Field(16, ge=1)
    num_workers: int = Field(1, ge=0)
    accelerator: Literal["cpu", "gpu", "cuda", "mps", "auto"] = "cpu"
    devices: int | Literal["auto"] = Field(1, description=">= 1 per node, -1 for all, or auto")
    num_nodes: int = Field(1, ge=1)
    strategy: str = Field("auto", description="auto: ddp when more than one device or node")
    precision: Literal["32-true", "32", "bf16-mixed", "16-mixed", "64-true"] = "32-true"
    sync_batchnorm: bool = False
    accumulate_grad_batches: int = Field(1, ge=1)
    gradient_clip_val: float | None = Field(None, ge=0)
    matmul_precision: Literal["highest", "high", "medium"] = "highest"
    compile: bool = False
    limit_train_batches: float | int | None = None
    deterministic: bool | Literal["warn"] | None = Field(
        None,
        description="null: true on CPU, warn on accelerators (some CUDA backward ops have no "
        "deterministic kernel)",
    )

    @field_validator("devices")
    @classmethod
    def _device_count(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not (value >= 1 or value == -1):
            raise ValueError(f"expected a device count >= 1, -1 for all, or auto; got {value}")
        return value

    @property
    def distributed(self) -> bool:
        return self.num_nodes > 1 or self.devices not in (1, "auto")

    @property
    def deterministic_mode(self) -> bool | str:
        """What Lightning's ``Trainer(deterministic=...)`` gets."""
        if self.deterministic is not None:
            return self.deterministic
        return True if self.accelerator == "cpu" else "warn"


class AugmentConfig(_Section):
    flip: bool = True
    rot_factor: float = Field(40.0, ge=0)
    scale_factor: float = Field(0.35, ge=0, lt=1)
    rot_prob: float = Field(0.6, ge=0, le=1)
    half_body_prob: float = Field(0.3, ge=0, le=1)
    num_joints_half_body: int = Field(8, ge=1, le=17)


class PoseConfig(_Section):
    """Top-down pose: input, targets, optimisation and test-time settings."""

    input_size: tuple[int, int] = Field((96, 128), description="network input (width, height)")
    sigma: float = Field(2.0, gt=0)
    batch_size: int = Field(32, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    lr_milestones: tuple[int, ...] = (12, 15)
    lr_factor: float = Field(0.1, gt=0, le=1)
    augment: AugmentConfig = AugmentConfig()
    eval_batch_size: int = Field(64, ge=1)
    read_branch: int = Field(0, ge=0, le=3, description="branch the heatmaps are read from (head v1)")

    _input_size = field_validator("input_size")(_multiple_of_32)

    @field_validator("lr_milestones")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if list(value) != sorted(value) or any(m < 1 for m in value):
            raise ValueError(f"expected increasing positive epochs, got {list(value)}")
        return value

    @property
    def heatmap_size(self) -> tuple[int, int]:
        width, height = self.input_size
        return width // 4, height // 4


class SegmentationConfig(_Section):
    """Semantic segmentation: crops, loss, SGD with poly decay and inference mode."""

    crop_size: tuple[int, int] = Field((256, 128), description="training crop (width, height)")
    base_size: int | None = Field(256, ge=32, description="long side images are resized to first")
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    batch_size: int = Field(8, ge=1)
    lr: float = Field(0.03, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    poly_power: float = Field(0.9, gt=0)
    loss: Literal["ce", "ohem"] = "ce"
    ohem_thresh: float = Field(0.7, gt=0, le=1)
    ohem_min_kept: int = Field(100_000, ge=1)
    class_weights: Literal["cityscapes"] | None = None
    eval_batch_size: int = Field(4, ge=1)

    _crop_size = field_validator("crop_size")(_multiple_of_32)


class DetectionConfig(_Section):
    """Detection: a torchvision detector assembled on the HRNet pyramid."""

    detector: Literal["faster_rcnn", "fcos"] = "faster_rcnn"
    preset: Literal["small", "torchvision"] = Field(
        "small", description="small: fewer proposals and a narrower box head, for small images"
    )
    min_size: int = Field(128, ge=32)
    max_size: int = Field(128, ge=32)
    anchor_scale: float = Field(4.0, gt=0)
    batch_size: int = Field(8, ge=1)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_steps: int = Field(30, ge=0)
    schedule: Literal["step", "cosine"] = "cosine"
    lr_steps: tuple[float, ...] = (0.67, 0.89)
    lr_factor: float = Field(0.1, gt=0, le=1)
    flip_prob: float = Field(0.5, ge=0, le=1)
    eval_batch_size: int = Field(8, ge=1)


GROUND_TRUTH_BOXES = "data/prepared"  # evaluate.pose.boxes naming the prepared split: its own boxes


class PersonDetectorConfig(_Section):
    """The person_detector stage (detector/dvc.yaml): ``model.name`` with head v2p and the
    ``detection`` section's settings, trained on the person boxes of the prepared pose train split."""

    epochs: int = Field(2, ge=1)
    limit_train_batches: int | None = Field(None, ge=1)


class PoseTestConfig(_Section):
    flip_test: bool = True
    shift_heatmap: bool = True
    keypoint_score_threshold: float = Field(
        0.2, ge=0, le=1, description="in_vis_thre: joints above it make the person score and are drawn"
    )
    boxes: str = Field(
        GROUND_TRUTH_BOXES,
        min_length=1,
        description="data/prepared: the ground-truth boxes | a COCO results json of person detections",
    )
    box_score_threshold: float = Field(0.0, ge=0, description="detected boxes scoring below are left out")
    oks_nms_threshold: float = Field(0.9, gt=0, le=1)
    soft_nms: bool = False
    person_detector: PersonDetectorConfig = PersonDetectorConfig()

    @property
    def ground_truth_boxes(self) -> bool:
        return Path(self.boxes).as_posix().rstrip("/") == GROUND_TRUTH_BOXES


class SegmentationTestConfig(_Section):
    mode: Literal["whole", "sliding"] = "whole"
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    @field_validator("scales")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(v <= 0 for v in value):
            raise ValueError(f"expected a non-empty list of positive scales, got {list(value)}")
        return value


class DetectionTestConfig(_Section):
    score_threshold: float = Field(0.05, ge=0, le=1)


class EvaluateConfig(_Section):
    """Test-time settings: changing them reruns evaluate and package only, never train or tune."""

    num_figures: int = Field(4, ge=0)
    pose: PoseTestConfig = PoseTestConfig()
    segmentation: SegmentationTestConfig = SegmentationTestConfig()
    detection: DetectionTestConfig = DetectionTestConfig()


class PackageConfig(_Section):
    name: str | None = None
    format: Literal["torch_export", "onnx"] = Field(
        "torch_export",
        description="torch_export: model.pt2 | onnx: model.onnx (onnxruntime; detection: + torchvision NMS)",
    )
    tolerance: float = Field(
        1e-3, gt=0, description="largest |export - PyTorch| allowed on val images at packaging time"
    )
    check_images: int = Field(4, ge=1, description="val images the export is checked on")


TASK_SECTIONS = ("pose", "segmentation", "detection")
TUNABLE_SECTIONS = ("model", "train", *TASK_SECTIONS)


class SearchDimension(_Section):
    """One searched value of the tune stage: a dotted params key and its distribution."""

    param: str = Field(description="dotted params.yaml key, e.g. pose.lr")
    distribution: Literal["loguniform", "uniform", "randint", "choice"]
    low: int | float | None = None
    high: int | float | None = Field(None, description="randint: exclusive")
    values: tuple[Any, ...] | None = Field(None, description="choice only")

    @model_validator(mode="after")
    def _bounds(self) -> SearchDimension:
        section = self.param.split(".", 1)[0]
        if section not in TUNABLE_SECTIONS or "." not in self.param or self.param == "train.epochs":
            raise ValueError(
                f"{self.param}: only keys under {', '.join(TUNABLE_SECTIONS)} can be searched "
                "(and not train.epochs: set tune.epochs)"
            )
        if self.distribution == "choice":
            if not self.values or self.low is not None or self.high is not None:
                raise ValueError(f"{self.param}: choice takes a non-empty values list and no low/high")
            return self
        if self.values is not None or self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"{self.param}: {self.distribution} takes low < high and no values")
        if self.distribution == "loguniform" and self.low <= 0:
            raise ValueError(f"{self.param}: loguniform takes low > 0")
        if self.distribution == "randint" and not (isinstance(self.low, int) and isinstance(self.high, int)):
            raise ValueError(f"{self.param}: randint takes integer low and high")
        return self


class TaskSearch(_Section):
    """What a sweep varies for one task, and the metric (logged by its module) that ranks the trials."""

    metric: str
    mode: Literal["min", "max"]
    space: tuple[SearchDimension, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_params(self) -> TaskSearch:
        keys = [dim.param for dim in self.space]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"space: {', '.join(repeated)} searched twice")
        return self


def _dim(param: str, distribution: str, low: float | None = None, high: float | None = None,
         values: tuple[Any, ...] | None = None) -> SearchDimension:  # fmt: skip
    return SearchDimension(param=param, distribution=distribution, low=low, high=high, values=values)


class SearchConfig(_Section):
    """One search per task; the tune stage runs the one of ``params.task``."""

    pose: TaskSearch = TaskSearch(
        metric="val/loss",
        mode="min",
        space=(
            _dim("pose.lr", "loguniform", 3e-4, 3e-3),
            _dim("pose.weight_decay", "loguniform", 1e-6, 1e-3),
            _dim("pose.sigma", "uniform", 1.5, 3.0),
            _dim("pose.batch_size", "choice", values=(16, 32)),
        ),
    )
    segmentation: TaskSearch = TaskSearch(
        metric="val/mIoU",
        mode="max",
        space=(
            _dim("segmentation.lr", "loguniform", 0.01, 0.1),
            _dim("segmentation.weight_decay", "loguniform", 1e-5, 1e-3),
        ),
    )
    detection: TaskSearch = TaskSearch(
        metric="val/AP",
        mode="max",
        space=(
            _dim("detection.lr", "loguniform", 3e-4, 3e-3),
            _dim("detection.anchor_scale", "choice", values=(3.0, 4.0, 6.0)),
        ),
    )

    @model_validator(mode="after")
    def _own_sections(self) -> SearchConfig:
        for task in TASK_SECTIONS:
            for dim in getattr(self, task).space:
                section = dim.param.split(".", 1)[0]
                if section in TASK_SECTIONS and section != task:
                    raise ValueError(
                        f"{task}.space: {dim.param}: a {task} sweep searches model, train and {task} keys"
                    )
        return self


class TuneConfig(_Section):
    """The tune stage: a Ray Tune search over params keys, on the prepared data."""

    search: SearchConfig = SearchConfig()
    num_samples: int = Field(4, ge=1)
    epochs: int = Field(2, ge=1, description="per trial; ASHA's max_t")
    limit_train_batches: float | int | None = Field(
        4, description="per trial; null: train.limit_train_batches"
    )
    scheduler: Literal["asha", "fifo"] = "asha"
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2.0, gt=1)
    searcher: Literal["random", "optuna"] = "random"
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)
    workers_per_trial: int = Field(1, ge=1)
    max_concurrent_trials: int | None = Field(None, ge=1)
    num_cpus: int | None = Field(None, ge=1, description="local Ray only (address null)")
    address: str | None = None
    storage_path: str | None = None
    max_failures: int = Field(1, ge=-1)

    def for_task(self, task: str) -> TaskSearch:
        return getattr(self.search, task)

    @model_validator(mode="after")
    def _budget(self) -> TuneConfig:
        if self.grace_period > self.epochs:
            raise ValueError(f"grace_period {self.grace_period} exceeds epochs {self.epochs}")
        return self


class Params(_Section):
    seed: int = 42
    task: Literal["pose", "segmentation", "detection"] = "pose"
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
