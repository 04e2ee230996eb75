"""What the task adapters share."""

from __future__ import annotations

import os
from pathlib import Path

INDEX_DIR = Path("index")  # inside the prepared-data folder


def relative_to_index(path: Path, index_file: Path) -> str:
    """How an index refers to a file: relative to the index's folder (survives the final rename)."""
    return os.path.relpath(Path(path).resolve(), Path(index_file).parent.resolve())
