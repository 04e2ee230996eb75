"""COCO person-keypoint annotation files -> JSON-serialisable person-instance records.

A record is a plain dict::

    {"image_id": int, "ann_id": int, "image_file": str,  # file_name, relative to the image dir
     "bbox": [x, y, w, h],                                 # cleaned like the reference code
     "keypoints": [[x, y, v], ...],                        # 17 rows, COCO visibility 0/1/2
     "area": float}

The image directory is not repeated per record; callers keep it once (see ``write_index``).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from pycocotools.coco import COCO

from hrnet.data.coco_constants import NUM_KEYPOINTS
from hrnet.errors import DataError, MissingFileError

PERSON_CATEGORY_ID = 1
SOURCES = ("synthetic", "coco")


def coco_layout(
    source: str, root: Path, split: str, *, must_exist: bool = True, annotations: str = "person_keypoints"
) -> tuple[Path, Path]:
    """(annotation file, image directory) of ``split`` for a dataset ``source`` under ``root``.

    ``synthetic``: ``annotations/person_keypoints_{split}.json`` and ``images/{split}``;
    ``coco``: ``annotations/person_keypoints_{split}2017.json`` and ``{split}2017``.
    """
    root = Path(root)
    if source == "synthetic":
        ann_file = root / "annotations" / f"{annotations}_{split}.json"
        image_dir = root / "images" / split
    elif source == "coco":
        ann_file = root / "annotations" / f"{annotations}_{split}2017.json"
        image_dir = root / f"{split}2017"
    else:
        raise DataError(f"unknown dataset source {source!r}; expected one of {', '.join(SOURCES)}")
    if must_exist:
        if not ann_file.is_file():
            raise MissingFileError(f"{ann_file}: annotation file not found ({source} layout)")
        if not image_dir.is_dir():
            raise MissingFileError(f"{image_dir}: image directory not found ({source} layout)")
    return ann_file, image_dir


def clean_bbox(bbox: list[float], width: int, height: int) -> list[float] | None:
    """The reference box sanitising: clip the top-left to the image, then the far corner.

    Returns ``[x1, y1, x2 - x1, y2 - y1]`` or None when the box misses the image (or collapses
    to a single pixel, which cannot define a crop). As in the reference, the far corner is
    ``x1 + w - 1`` from the *clipped* ``x1``; a zero width or height alone is kept.
    """
    x, y, w, h = (float(v) for v in bbox[:4])
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if x2 < x1 or y2 < y1 or (x2 == x1 and y2 == y1):
        return None
    return [x1, y1, x2 - x1, y2 - y1]


def _load_coco(ann_file: Path, dataset: dict | None = None) -> COCO:
    if dataset is None and not ann_file.is_file():
        raise MissingFileError(f"{ann_file}: annotation file not found")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
            if dataset is None:
                return COCO(str(ann_file))
            coco = COCO()
            coco.dataset = dataset
            coco.createIndex()
            return coco
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{ann_file}: not a valid COCO annotation file ({exc})") from exc


def load_person_instances(
    ann_file: Path, image_dir: Path, *, require_keypoints: bool = True, dataset: dict | None = None
) -> list[dict]:
    """Person instances of a COCO keypoint file, sorted by (image_id, ann_id).

    Skips crowd regions, non-person categories, boxes with zero area or outside the image and,
    with ``require_keypoints``, instances without any labeled keypoint (v > 0). ``dataset`` is
    the already parsed (and checked, see ``hrnet.data.validation``) content of ``ann_file``; the
    file is read when it is None.
    """
    ann_file, image_dir = Path(ann_file), Path(image_dir)
    coco = _load_coco(ann_file, dataset)
    if not image_dir.is_dir():
        raise MissingFileError(f"{image_dir}: image directory not found")
    records: list[dict] = []
    for image_id in sorted(coco.getImgIds()):
        image = coco.imgs[image_id]
        width, height = int(image["width"]), int(image["height"])
        ann_ids = coco.getAnnIds(imgIds=[image_id], catIds=[PERSON_CATEGORY_ID], iscrowd=False)
        for ann in sorted(coco.loadAnns(ann_ids), key=lambda a: a["id"]):
            if ann.get("iscrowd", 0) or float(ann.get("area", 0)) <= 0:
                continue
            bbox = clean_bbox(ann["bbox"], width, height)
            if bbox is None:
                continue
            flat = ann.get("keypoints") or [0] * (3 * NUM_KEYPOINTS)
            if len(flat) != 3 * NUM_KEYPOINTS:
                raise DataError(
                    f"{ann_file}: annotation {ann['id']} has {len(flat)} keypoint values, "
                    f"expected {3 * NUM_KEYPOINTS}"
                )
            keypoints = [
                [float(flat[3 * k]), float(flat[3 * k + 1]), int(flat[3 * k + 2])]
                for k in range(NUM_KEYPOINTS)
            ]
            if require_keypoints and not any(kp[2] > 0 for kp in keypoints):
                continue
            records.append(
                {
                    "image_id": int(image_id),
                    "ann_id": int(ann["id"]),
                    "image_file": str(image["file_name"]),
                    "bbox": bbox,
                    "keypoints": keypoints,
                    "area": float(ann["area"]),
                }
            )
    return records
