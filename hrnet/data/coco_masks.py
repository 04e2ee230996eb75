"""Instance masks in COCO's encodings, through pycocotools: an annotation's ``segmentation``
(polygons, or RLE for crowds) to a binary mask, and predicted masks to the compressed RLE that COCO
results files (``"segmentation": {"size": [h, w], "counts": str}``) and ``COCOeval(iouType="segm")``
take. The one place both directions are written: the data loader, the evaluator, the evaluate
stage and ``hrnet predict`` call these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

MASK_THRESHOLD = 0.5  # a predicted mask pixel is in the instance at probability >= this (torchvision's paste)


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A COCO ``segmentation`` (a list of polygons, an uncompressed RLE with a list of counts, or a
    compressed RLE) as an (height, width) uint8 mask of 0/1."""
    if isinstance(segmentation, list):  # polygons: [[x1, y1, x2, y2, ...], ...]
        polygons = [p for p in segmentation if len(p) >= 6]  # three points at least
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width)) if polygons else None
    elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    elif isinstance(segmentation, dict):
        counts = segmentation["counts"]
        rle = {"size": segmentation["size"], "counts": counts.encode() if isinstance(counts, str) else counts}
    else:
        raise ValueError(f"segmentation: expected polygons or an RLE dict, got {type(segmentation).__name__}")
    if rle is None:
        return np.zeros((height, width), dtype=np.uint8)
    return mask_utils.decode(rle).astype(np.uint8)


def encode_masks(masks: Any, threshold: float = MASK_THRESHOLD) -> list[dict[str, Any]]:
    """Masks (N, 1, H, W) or (N, H, W), probabilities or 0/1, as N compressed RLEs with ``counts``
    decoded to str (JSON-ready)."""
    array = np.asarray(masks.detach().cpu() if hasattr(masks, "detach") else masks)
    if array.ndim == 4:
        array = array[:, 0]
    binary = np.asfortranarray((array >= threshold).astype(np.uint8).transpose(1, 2, 0))
    encoded = mask_utils.encode(binary) if len(array) else []
    return [{"size": list(rle["size"]), "counts": rle["counts"].decode()} for rle in encoded]


def box_masks(boxes: Sequence[Sequence[float]], height: int, width: int) -> list[dict[str, Any]]:
    """Each xywh box filled as its mask (the trivial segm baseline), as compressed RLEs."""
    if not len(boxes):
        return []
    encoded = mask_utils.frPyObjects(np.asarray(boxes, dtype=np.float64), height, width)
    return [{"size": list(rle["size"]), "counts": rle["counts"].decode()} for rle in encoded]
