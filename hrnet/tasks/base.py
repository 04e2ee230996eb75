"""The task contract: what one task gives the library and every pipeline stage.

A task is a :class:`Task` registered in :data:`hrnet.tasks.TASKS` under its name, by the library
for its own tasks and through the ``hrnet.tasks`` entry-point group for a task in another installed
package. Nothing else in the project names a task: the params schema takes each task's config
sections from here, the stages call these methods, packages and ``hrnet predict`` look the task up
by the name a package records.

A task module must import cheaply (no torch, no Lightning): the params schema and the data stages
read every registered task. Its methods import what they run.

``params`` below is the validated ``params.yaml`` (the pipeline's ``Params``): ``seed``, ``data``,
``model``, ``train``, the task's own section ``params.<name>`` (an instance of :attr:`Task.config`)
and ``params.evaluate.<name>`` (of :attr:`Task.test_config`).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any, ClassVar

from hrnet.errors import MissingFileError
from hrnet.io import path_reference
from hrnet.registry import resolve

INDEX_DIR = Path("index")  # inside the prepared-data folder


@dataclasses.dataclass(frozen=True)
class SearchDimension:
    """One searched params key of a task's default sweep (``tune.search.<task>.space``)."""

    param: str
    distribution: str
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] | None = None


@dataclasses.dataclass(frozen=True)
class SearchDefaults:
    """A task's default sweep: the metric its module logs after each validation, and the space."""

    metric: str
    mode: str
    space: tuple[SearchDimension, ...]


class Task:
    """One task. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    default_head: ClassVar[str]  # the paper's representation head for the task (model.head: null)
    sources: ClassVar[tuple[str, ...]]  # the real data layouts data.source takes besides "synthetic"
    # the layouts the synthesize stage can write the embedded data in (data.synthetic.layout), the
    # default first; a task whose generator takes no ``layout`` lists none
    synthetic_layouts: ClassVar[tuple[str, ...]] = ()
    config: ClassVar[type]  # params.<name>: a dataclass; its defaults are the project's
    test_config: ClassVar[type]  # params.evaluate.<name>: test-time settings (evaluate, packages)
    synthetic_config: ClassVar[type]  # params.data.synthetic.<name>: the embedded dataset's size
    search: ClassVar[SearchDefaults]  # tune.search.<name>'s default
    metric: ClassVar[str]  # the metrics.json key that judges a model (a package's precision, the README)
    # keys of params.<name> that moved elsewhere: old key -> (new dotted key, why), for the error
    moved_keys: ClassVar[dict[str, tuple[str, str]]] = {}
    # train.deterministic: null on a GPU: "warn" (deterministic kernels where torch has them) when
    # True, False when the task's ops pay too much for determinism there
    deterministic_on_accelerators: ClassVar[bool] = True

    # -- data ------------------------------------------------------------------------------------
    def generate_synthetic(self, out_dir: Path, seed: int, config: Any, **layout: str) -> dict[str, Any]:
        """Writes the embedded dataset in its real on-disk format (``layout=``, one of
        ``synthetic_layouts``, when ``data.synthetic.layout`` names one); returns per-split summaries
        ("train" and "val", each with an "images" count)."""
        raise NotImplementedError

    def prepare(self, params: Any, out_dir: Path, issues: Any) -> None:
        """Checks the data at ``data.root`` (bad records go to the IssueLog ``issues``) and writes
        ``out_dir/index/{train,val}.json``, what :meth:`build_datamodule` reads."""
        raise NotImplementedError

    # -- training --------------------------------------------------------------------------------
    def module_class(self) -> type:
        """The LightningModule class, what a checkpoint of this task loads as."""
        raise NotImplementedError

    def build_module(self, params: Any, prepared_dir: Path) -> Any:
        """An untrained LightningModule from ``params.model`` and ``params.<name>``."""
        raise NotImplementedError

    def build_datamodule(self, params: Any, prepared_dir: Path) -> Any:
        """The LightningDataModule over the prepared index."""
        raise NotImplementedError

    # -- evaluation and packaging ----------------------------------------------------------------
    def evaluate(self, module: Any, params: Any, prepared_dir: Path, out_dir: Path) -> dict[str, Any] | None:
        """Validates ``module`` with ``params.evaluate.<name>`` (through Lightning, on every DDP rank);
        writes ``out_dir/predictions`` and ``out_dir/figures``; returns metrics.json's entries, a
        trivial baseline's included, on rank 0 (None on the others)."""
        raise NotImplementedError

    def package_meta(self, params: Any, prepared_dir: Path) -> dict[str, Any]:
        """package.json's task entries: the input and the test-time settings the package predicts with."""
        raise NotImplementedError

    def check_inputs(
        self, params: Any, prepared_dir: Path, model: Any, count: int, split: str = "val"
    ) -> Any:
        """The first ``count`` inputs of ``split`` ("val": the packaging check; "train": int8
        calibration) as the exported network sees them (a batch tensor)."""
        raise NotImplementedError

    def configure_test(self, module: Any, params: Any) -> None:
        """Gives ``module`` the test-time settings of ``params.evaluate.<name>``, the one way they
        reach it: validation, the evaluate stage and the package stage all predict with them."""

    def inference(self) -> Any:
        """The task's packaged inference (a :class:`hrnet.predict.inference.TaskInference`): export,
        load, predict, draw and COCO results of its packages."""
        raise NotImplementedError

    def run_name(self, params: Any) -> str:
        """The input-size part of the model's name (``dist/<task>_<model>_<head><size>``)."""
        raise NotImplementedError


class ModularTask(Task):
    """A task whose parts live in modules of its folder, imported when first used (so that the
    contract imports cheaply): ``prepare_module`` has ``prepare(params, out_dir, issues)``,
    ``stages_module`` ``build_module``, ``build_datamodule``, ``evaluate`` and ``package_meta`` (the
    contract's signatures), ``inference_module`` an ``INFERENCE`` object, ``module_path`` names the
    LightningModule (``"package.module:Class"``) and ``synthetic_path`` the embedded data's
    generator (``(out_dir, seed=, **data.synthetic.<name>)``, plus ``layout=`` when the task lists
    ``synthetic_layouts``)."""

    prepare_module: ClassVar[str]
    stages_module: ClassVar[str]
    inference_module: ClassVar[str]
    module_path: ClassVar[str]
    synthetic_path: ClassVar[str]

    def generate_synthetic(self, out_dir: Path, seed: int, config: Any, **layout: str) -> dict[str, Any]:
        return resolve(self.synthetic_path)(out_dir, seed=seed, **vars(config), **layout)

    def prepare(self, params: Any, out_dir: Path, issues: Any) -> None:
        import_module(self.prepare_module).prepare(params, out_dir, issues)

    def module_class(self) -> type:
        return resolve(self.module_path)

    def build_module(self, params: Any, prepared_dir: Path) -> Any:
        return import_module(self.stages_module).build_module(params, prepared_dir)

    def build_datamodule(self, params: Any, prepared_dir: Path) -> Any:
        return import_module(self.stages_module).build_datamodule(params, prepared_dir)

    def evaluate(self, module: Any, params: Any, prepared_dir: Path, out_dir: Path) -> dict[str, Any] | None:
        return import_module(self.stages_module).evaluate(module, params, prepared_dir, out_dir)

    def package_meta(self, params: Any, prepared_dir: Path) -> dict[str, Any]:
        return import_module(self.stages_module).package_meta(params, prepared_dir)

    def inference(self) -> Any:
        return import_module(self.inference_module).INFERENCE


def kwargs_for(target: Callable[..., Any], *sections: Any, **extra: Any) -> dict[str, Any]:
    """The keyword arguments ``target`` takes, by name, from config sections (dataclasses; a later
    section wins) and ``extra``: no field is copied by hand between a section and a constructor."""
    accepted = inspect.signature(target).parameters
    found: dict[str, Any] = {}
    for section in sections:
        for field in dataclasses.fields(section):
            if field.name in accepted:
                found[field.name] = getattr(section, field.name)
    found.update({k: v for k, v in extra.items() if k in accepted})
    return found


def index_reference(path: Path, index_file: Path) -> str:
    """How an index refers to a data file: relative inside the project, absolute outside it.

    Relative references survive the prepared folder's final rename and a copy of the whole
    project (``dvc exp run --temp``); data at an absolute ``data.root`` is referred to absolutely,
    so an index restored from DVC's cache into another checkout still finds it.
    """
    return path_reference(path, index_file, anchor=Path.cwd())


def prepared_index_path(prepared_dir: Path, role: str) -> Path:
    """Where the prepared index of ``role`` ("train" or "val") is written and read."""
    return Path(prepared_dir) / INDEX_DIR / f"{role}.json"


def read_index(prepared_dir: Path, role: str) -> dict:
    """The prepared index of ``role`` ("train" or "val") with its file references resolved."""
    path = prepared_index_path(prepared_dir, role)
    if not path.is_file():
        raise MissingFileError(f"{path}: prepared index not found (run the prepare stage)")
    index = json.loads(path.read_text())
    resolve = path.parent.__truediv__  # an absolute reference stays absolute
    if "pairs" in index:
        index["pairs"] = [(resolve(image), resolve(label)) for image, label in index["pairs"]]
    for key in ("ann_file", "image_dir"):
        if key in index:
            index[key] = resolve(index[key])
    return index


def data_root(params: Any) -> Path:
    """The dataset's root folder (``data.root``; relative paths are the project's)."""
    return Path(params.data.root)


def config_section(cls: type) -> type:
    """A params section as a frozen dataclass that refuses unknown keys when pydantic validates it
    (the pipeline's schema does; the library itself needs no pydantic)."""
    cls.__pydantic_config__ = {"extra": "forbid"}  # read by pydantic, a plain dict needs no import
    return dataclasses.dataclass(frozen=True)(cls)


def multiple_of_32(name: str, value: tuple[int, int]) -> None:
    if any(v <= 0 or v % 32 for v in value):
        raise ValueError(f"{name}: expected [width, height] both positive multiples of 32, got {list(value)}")
