"""What the task adapters share: the interface each one fills in, and the prepared index."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from hrnet.data.issues import IssueLog
from hrnet.errors import MissingFileError
from hrnet.io import path_reference
from pipeline.params import Params

INDEX_DIR = Path("index")  # inside the prepared-data folder


@dataclass(frozen=True)
class Task:
    """What the stages call for one task; ``pipeline.tasks.TASKS`` holds one per task, by name."""

    name: str
    lightning_module: type[pl.LightningModule]  # what evaluate and package load the checkpoint as
    # the library's generator of the embedded dataset: (out_dir, seed=, **data.synthetic.<name>)
    # -> a summary with per-split entries "train" and "val"
    generate_synthetic: Callable[..., dict[str, Any]]
    # (params, out_dir, issue log): checks data.root, writes index/; bad records go to the log
    prepare: Callable[[Params, Path, IssueLog], None]
    build_datamodule: Callable[[Params, Path], pl.LightningDataModule]  # (params, prepared_dir)
    build_module: Callable[[Params, Path], pl.LightningModule]  # (params, prepared_dir): untrained
    # (trained module, params, prepared_dir, out_dir) -> metrics.json's entries, a trivial baseline's
    # included (None on every DDP rank but 0); writes out_dir/predictions and out_dir/figures
    evaluate: Callable[[Any, Params, Path, Path], dict[str, Any] | None]
    package_meta: Callable[[Params, Path], dict[str, Any]]  # (params, prepared_dir): package.json's entries


def index_reference(path: Path, index_file: Path) -> str:
    """How an index refers to a data file: relative inside the project, absolute outside it.

    Relative references survive the prepared folder's final rename and a copy of the whole
    project (``dvc exp run --temp``); data at an absolute ``data.root`` is referred to absolutely,
    so an index restored from DVC's cache into another checkout still finds it.
    """
    return path_reference(path, index_file, anchor=Path.cwd())


def read_index(prepared_dir: Path, role: str) -> dict:
    """The prepared index of ``role`` ("train" or "val") with its file references resolved."""
    path = Path(prepared_dir) / INDEX_DIR / f"{role}.json"
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


def evaluation_trainer(params: Params, callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    """The Trainer the evaluate stage validates with: ``evaluate.accelerator``, ``.devices`` and
    ``.precision`` (null: the train section's), on one node; more than one device runs DDP, each
    rank scoring its shard (the module's evaluators combine them)."""
    evaluate, train = params.evaluate, params.train
    accelerator = evaluate.accelerator or train.accelerator
    devices = train.devices if evaluate.devices is None else evaluate.devices
    deterministic = train.deterministic
    if deterministic is None:  # as train: some CUDA kernels have no deterministic version
        deterministic = True if accelerator == "cpu" else "warn"
    return pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=1,
        strategy="auto" if devices in (1, "auto") else "ddp",
        precision=evaluate.precision or train.precision,
        deterministic=deterministic,
        use_distributed_sampler=False,  # the loaders shard with hrnet.data.sampling.EpochSampler
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def network_kwargs(params: Params) -> dict[str, Any]:
    """The ``model`` section as every task module's constructor takes it: the backbone's name, the
    head, the pretrained file and the architecture options."""
    model = params.model
    return {
        "model_name": model.name,
        "head": model.head,
        "pretrained": model.pretrained,
        "model_options": model.architecture(),
    }


def data_root(params: Params) -> Path:
    """The dataset's root folder (``data.root``; relative paths are the project's)."""
    return Path(params.data.root)
