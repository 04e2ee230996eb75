"""Pose's prepare stage: the COCO keypoint data at ``data.root`` checked, and its index (no torch)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hrnet.data.formats.coco import read_annotation_file
from hrnet.data.issues import IssueLog
from hrnet.data.keypoint_meta import KeypointMeta, keypoint_category, meta_from_category
from hrnet.data.pose_index import PoseIndex, index_path, load_index, write_index
from hrnet.data.validation import check_coco_split, locate_split
from hrnet.errors import DataError
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
    keypoints = _keypoint_meta(params, located["train"][0])
    _same_category(keypoints, located["val"][0])
    log.info(
        "%d keypoints (%s, ...), %d flip pairs, half body %s",
        keypoints.num_keypoints, ", ".join(keypoints.names[:3]), len(keypoints.flip_pairs),
        "on" if keypoints.half_body else "off (no lower-body keypoint names)",
    )  # fmt: skip
    for role, (ann_file, image_dir) in located.items():
        checked = check_coco_split(
            ann_file, image_dir, "keypoints", split=role, out_dir=out_dir, issues=issues
        )
        path = index_path(index_dir, role)
        meta = {"source": data.source, "split": splits[role], "keypoints": keypoints.to_dict()}
        meta["ann_file"] = index_reference(checked.ann_file, path)
        if checked.skipped:
            meta["skipped_records"] = checked.skipped
        write_index(checked.records, image_dir, path, meta=meta, anchor=Path.cwd())
        log.info("%s: %d person instances from %s", role, len(checked.records), ann_file)


def _keypoint_meta(params: Any, train_file: Path) -> KeypointMeta:
    """The keypoint set of the train file's category with ``pose.flip_pairs``/``pose.oks_sigmas``;
    the embedded synthetic sets bring their skeleton's suggested sigmas when none are set."""
    category = keypoint_category(read_annotation_file(train_file, "keypoints"))
    sigmas = params.pose.oks_sigmas
    if sigmas is None and params.data.source == "synthetic":
        from hrnet.data.synthetic.skeletons import suggested_sigmas

        sigmas = suggested_sigmas(category["keypoints"])
    try:
        return meta_from_category(category, params.pose.flip_pairs, sigmas)
    except DataError as exc:
        raise DataError(f"{train_file}: {exc}") from None


def _same_category(keypoints: KeypointMeta, val_file: Path) -> None:
    """The val file's keypoint category must name the train file's keypoints, in order."""
    found = keypoint_category(read_annotation_file(val_file, "keypoints"))
    names = tuple(found.get("keypoints") or ())
    if names != keypoints.names or found.get("id") != keypoints.category_id:
        raise DataError(
            f"{val_file}: keypoint category {found.get('id')} with {len(names)} keypoints "
            f"({', '.join(names[:3])}, ...) (expected the train file's: category {keypoints.category_id} "
            f"with {keypoints.num_keypoints} keypoints {', '.join(keypoints.names[:3])}, ... in that order)"
        )


def read_split(prepared_dir: Path, role: str) -> PoseIndex:
    """The prepared index of ``role`` ("train" or "val"), with ``meta["ann_file"]`` resolved."""
    path = index_path(prepared_dir / INDEX_DIR, role)
    index = load_index(path)
    index.meta["ann_file"] = path.parent / index.meta["ann_file"]
    return index
