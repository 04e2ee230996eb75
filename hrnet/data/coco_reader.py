"""COCO person-keypoint annotation files -> JSON-serialisable person-instance records.

A record is a plain dict::

    {"image_id": int, "ann_id": int, "image_file": str,  # file_name, relative to the image dir
     "bbox": [x, y, w, h],                                 # cleaned like the reference code
     "keypoints": [[x, y, v], ...],                        # K rows, COCO visibility 0/1/2
     "area": float}

The image directory is not repeated per record; callers keep it once (see ``write_index``).
The file itself is read and checked by the one COCO loader, :func:`hrnet.data.formats.coco.load_coco`.
"""

from __future__ import annotations

from pathlib import Path

from hrnet.data.formats.coco import SOURCES, CocoIndex, coco_layout, load_coco
from hrnet.data.formats.coco_records import PERSON_CATEGORY_ID
from hrnet.data.keypoint_meta import keypoint_category
from hrnet.errors import MissingFileError

__all__ = ["PERSON_CATEGORY_ID", "SOURCES", "clean_bbox", "coco_layout", "load_person_instances"]


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


def load_person_instances(
    ann_file: Path, image_dir: Path, *, require_keypoints: bool = True, coco: CocoIndex | None = None
) -> list[dict]:
    """Person instances of a COCO keypoint file, sorted by (image_id, ann_id).

    The instances are those of the keypoint category (:func:`keypoint_category`: the one listing
    its keypoints, else COCO's person), with its K keypoints. Skips crowd regions, other categories,
    boxes with zero area or outside the image and,
    with ``require_keypoints``, instances without any labeled keypoint (v > 0). ``coco`` is
    ``ann_file`` already loaded (and checked); without it the file is loaded here, and its
    first bad record raises (a box of no size or outside its image is skipped, as the reference
    reader does).
    """
    ann_file, image_dir = Path(ann_file), Path(image_dir)
    coco = coco if coco is not None else load_coco(ann_file, "keypoints", person_box_geometry=False)
    if not image_dir.is_dir():
        raise MissingFileError(f"{image_dir}: image directory not found")
    category = keypoint_category(coco.dataset)
    category_id, count = category["id"], len(category["keypoints"])
    records: list[dict] = []
    for image_id in coco.image_ids():
        image = coco.imgs[image_id]
        width, height = int(image["width"]), int(image["height"])
        people = (a for a in coco.anns(image_id) if a["category_id"] == category_id)
        for ann in sorted(people, key=lambda a: a["id"]):
            if ann.get("iscrowd", 0) or float(ann.get("area", 0)) <= 0:
                continue
            bbox = clean_bbox(ann["bbox"], width, height)
            if bbox is None:
                continue
            flat = ann.get("keypoints") or [0] * (3 * count)
            keypoints = [
                [float(flat[3 * k]), float(flat[3 * k + 1]), int(flat[3 * k + 2])] for k in range(count)
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
