"""The prepared index of a pose split: the checked person records and where their images are.

Written by the prepare stage, read by the pose DataModule; it needs no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from hrnet.data.keypoint_meta import COCO_PERSON, KeypointMeta
from hrnet.errors import DataError, MissingFileError
from hrnet.io import atomic_write_text, path_reference

INDEX_FORMAT, INDEX_VERSION = "hrnet-pose-index", 1
RECORD_KEYS = ("image_id", "ann_id", "image_file", "bbox", "keypoints", "area")


# ----------------------------------------------------------------------------- index files
@dataclass
class PoseIndex:
    records: list[dict]
    image_dir: Path
    meta: dict = field(default_factory=dict)

    @property
    def keypoints(self) -> KeypointMeta:
        """The keypoint set prepare stored (``meta["keypoints"]``); COCO's person when none is."""
        stored = self.meta.get("keypoints")
        return COCO_PERSON if stored is None else KeypointMeta.from_dict(stored)


def index_path(index_dir: str | Path, split: str) -> Path:
    """Where the prepared index of ``split`` lives: ``index_dir / f"{split}.json"``."""
    return Path(index_dir) / f"{split}.json"


def write_index(
    records: list[dict],
    image_dir: str | Path,
    path: str | Path,
    *,
    meta: dict | None = None,
    anchor: str | Path | None = None,
) -> None:
    """Atomically write an index; ``image_dir`` is stored as :func:`hrnet.io.path_reference` says."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = path_reference(image_dir, path, anchor)
    payload = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "image_dir": stored,
        "meta": meta or {},
        "num_records": len(records),
        "records": records,
    }
    atomic_write_text(path, json.dumps(payload, separators=(",", ":")))


def load_index(path: str | Path) -> PoseIndex:
    """Read and check an index written by ``write_index``; the image dir is resolved."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: prepared index not found (run the prepare stage)")
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a valid index file ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != INDEX_FORMAT:
        raise DataError(f"{path}: not an {INDEX_FORMAT} file")
    if payload.get("version") != INDEX_VERSION:
        raise DataError(f"{path}: index version {payload.get('version')} unsupported (want {INDEX_VERSION})")
    records = payload["records"]
    count = len((payload.get("meta", {}).get("keypoints") or COCO_PERSON.to_dict())["names"])
    for i, rec in enumerate(records):
        missing = [k for k in RECORD_KEYS if k not in rec]
        if missing or len(rec["keypoints"]) != count:
            raise DataError(f"{path}: record {i} is malformed (missing {missing or 'keypoints rows'})")
    image_dir = path.parent / payload["image_dir"]
    if not image_dir.is_dir():
        raise MissingFileError(f"{image_dir}: image directory of index {path} not found")
    return PoseIndex(records, image_dir, payload.get("meta", {}))


def read_index(path: str | Path) -> tuple[list[dict], Path]:
    """(records, image_dir) of an index file."""
    index = load_index(path)
    return index.records, index.image_dir
