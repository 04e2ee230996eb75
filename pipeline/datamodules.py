"""Builds the task's DataModule and reads the prepared index from params."""

from __future__ import annotations

import os
from pathlib import Path

from hrnet.config import Params
from hrnet.data.pose_dataset import PoseDataModule, PoseIndex, index_path, load_index
from pipeline.common import PREPARED_DIR

INDEX_DIR = PREPARED_DIR / "index"


def relative_to_index(path: Path, index_file: Path) -> str:
    """How an index refers to a file: relative to the index's folder (works after a rename)."""
    return os.path.relpath(Path(path).resolve(), Path(index_file).parent.resolve())


def read_split(params: Params, role: str) -> PoseIndex:
    """The prepared index of ``role`` ("train" or "val"), with ``meta["ann_file"]`` resolved."""
    path = index_path(INDEX_DIR, role)
    index = load_index(path)
    index.meta["ann_file"] = path.parent / index.meta["ann_file"]
    return index


def build_pose_datamodule(params: Params, eval_batch_size: int | None = None) -> PoseDataModule:
    train = params.train
    return PoseDataModule(
        INDEX_DIR,
        input_size=params.data.input_size,
        heatmap_size=params.heatmap_size,
        sigma=params.data.sigma,
        batch_size=train.batch_size,
        val_batch_size=eval_batch_size or train.batch_size,
        num_workers=train.num_workers,
        aug=train.augment.model_dump(),
        seed=params.seed,
    )
