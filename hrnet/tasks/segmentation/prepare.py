"""Segmentation's prepare stage: the pairs at ``data.root`` checked in their layout (no torch).

The layout is ``data.source`` (``data.synthetic.layout`` for the synthetic data); its
class table (Cityscapes': ``cityscapesscripts``; PASCAL-Context's and LIP's: the built-in tables;
``folder``: the dataset's ``classes.yaml``) is written into each split's index, from which training,
evaluation and packaging take it.
"""

from __future__ import annotations

import logging
from importlib import import_module
from pathlib import Path
from typing import Any

from hrnet.data.class_table import ClassTable, builtin_table, read_classes_yaml
from hrnet.data.issues import IssueLog
from hrnet.data.validation import check_cityscapes_split
from hrnet.io import atomic_write_json
from hrnet.tasks.base import data_root, index_reference, prepared_index_path, read_index

log = logging.getLogger("hrnet.tasks.segmentation")


def layout_of(params: Any) -> str:
    """The on-disk layout of the data at ``data.root``."""
    source = params.data.source
    return (params.data.synthetic.layout or "cityscapes") if source == "synthetic" else source


def class_table_of(layout: str, root: Path) -> ClassTable:
    return read_classes_yaml(root / "classes.yaml") if layout == "folder" else builtin_table(layout)


def prepared_table(prepared_dir: Path) -> ClassTable:
    """The class table prepare wrote (an index without one is Cityscapes')."""
    data = read_index(prepared_dir, "train").get("classes")
    return ClassTable.from_dict(data) if data else builtin_table("cityscapes")


def _check_split(layout: str, table: ClassTable, root: Path, split: str, role: str, issues: IssueLog) -> list:
    if layout == "cityscapes":
        return check_cityscapes_split(root, split, role=role, issues=issues)
    from hrnet.data.formats.seg_pairs import check_listing

    listing = import_module(f"hrnet.data.formats.{layout}").list_split(root, split)
    return check_listing(listing, table, role=role, issues=issues, root=root)


def prepare(params: Any, out_dir: Path, issues: IssueLog) -> None:
    """Checks the data at ``data.root`` in its layout (bad pairs go to ``issues``); writes the pair
    list and the class table of each split."""
    root, layout = data_root(params), layout_of(params)
    table = class_table_of(layout, root)
    for role, split in (("train", params.data.train_split), ("val", params.data.val_split)):
        pairs = _check_split(layout, table, root, split, role, issues)
        path = prepared_index_path(out_dir, role)
        index: dict[str, Any] = {
            "task": "segmentation",
            "split": split,
            "layout": layout,
            "classes": table.to_dict(),
            "pairs": [[index_reference(i, path), index_reference(lbl, path)] for i, lbl in pairs],
        }
        if issues.count_for(role):
            index["skipped_records"] = issues.count_for(role)
        atomic_write_json(path, index)
        log.info("%s: %d image/label pairs under %s (%s layout)", role, len(pairs), root, layout)
