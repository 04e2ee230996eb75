"""What the task adapters share."""

from __future__ import annotations

import json
from pathlib import Path

from hrnet.errors import MissingFileError
from hrnet.io import path_reference
from pipeline.params import Params

INDEX_DIR = Path("index")  # inside the prepared-data folder


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


def data_root(params: Params) -> Path:
    """The dataset's root folder (``data.root``; relative paths are the project's)."""
    return Path(params.data.root)
