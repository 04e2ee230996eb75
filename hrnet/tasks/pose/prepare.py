"""Pose's prepare stage: the COCO keypoint data at ``data.root`` checked, and its index (no torch)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hrnet.data.issues import IssueLog
from hrnet.data.pose_index import PoseIndex, index_path, load_index, write_index
from hrnet.data.validation import check_coco_split, locate_split
from hrnet.tasks.base import INDEX_DIR, data_root, index_reference

log = logging.getLogger("hrnet.tasks.pose")


def prepare(params: Any, out_dir: Path, issues: IssueLog) -> None:
    """Locates and checks the data at ``data.root`` (bad records go to ``issues``); writes
    ``index/{train,val}.json``."""
    data = params.data
    root = data_root(params)
    index_dir = out_dir / INDEX_DIR
    splits = {"train": data.train_split, "val": data.val_split}
    located = {role: locate_split(data.source, root, split) for role, split in splits.items()}
    for role, (ann_file, image_dir) in located.items():
        checked = check_coco_split(
            ann_file, image_dir, "keypoints", split=role, out_dir=out_dir, issues=issues
        )
        path = index_path(index_dir, role)
        meta = {"source": data.source, "split": splits[role]}
        meta["ann_file"] = index_reference(checked.ann_file, path)
        if checked.skipped:
            meta["skipped_records"] = checked.skipped
        write_index(checked.records, image_dir, path, meta=meta, anchor=Path.cwd())
        log.info("%s: %d person instances from %s", role, len(checked.records), ann_file)


def read_split(prepared_dir: Path, role: str) -> PoseIndex:
    """The prepared index of ``role`` ("train" or "val"), with ``meta["ann_file"]`` resolved."""
    path = index_path(prepared_dir / INDEX_DIR, role)
    index = load_index(path)
    index.meta["ann_file"] = path.parent / index.meta["ann_file"]
    return index
