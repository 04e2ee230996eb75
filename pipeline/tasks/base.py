"""What the task adapters share."""

from __future__ import annotations

import os
from pathlib import Path

from hrnet.config import Params

INDEX_DIR = Path("index")  # inside the prepared-data folder


def relative_to_index(path: Path, index_file: Path) -> str:
    """How an index refers to a file: relative to the index's folder (survives the final rename)."""
    return os.path.relpath(Path(path).resolve(), Path(index_file).parent.resolve())


def data_root(params: Params, prepared_dir: Path, synthetic_dir: str) -> Path:
    """The dataset's root: the generated copy inside the prepared folder, or ``data.root`` for real data."""
    return prepared_dir / synthetic_dir if params.data.source == "synthetic" else Path(params.data.root)
