"""Segmentation's prepare stage: the Cityscapes-layout pairs at ``data.root`` checked (no torch)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hrnet.data.issues import IssueLog
from hrnet.data.validation import check_cityscapes_split
from hrnet.io import atomic_write_json
from hrnet.tasks.base import INDEX_DIR, data_root, index_reference

log = logging.getLogger("hrnet.tasks.segmentation")


def prepare(params: Any, out_dir: Path, issues: IssueLog) -> None:
    """Checks the Cityscapes-layout data at ``data.root`` (bad pairs go to ``issues``); writes the
    pair list of each split."""
    root = data_root(params)
    for role, split in (("train", params.data.train_split), ("val", params.data.val_split)):
        pairs = check_cityscapes_split(root, split, role=role, issues=issues)
        path = out_dir / INDEX_DIR / f"{role}.json"
        index: dict[str, Any] = {
            "task": "segmentation",
            "split": split,
            "pairs": [[index_reference(i, path), index_reference(lbl, path)] for i, lbl in pairs],
        }
        if issues.count_for(role):
            index["skipped_records"] = issues.count_for(role)
        atomic_write_json(path, index)
        log.info("%s: %d image/label pairs under %s", role, len(pairs), root)
