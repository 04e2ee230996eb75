"""COCO mask AP (``COCOeval(iouType="segm")``, pycocotools') of instance masks, the box-filled
mask baselines and the mask overlay of figures. The encodings are :mod:`.coco_masks`'; what is
ours: the results lists, their order (the bbox results' own) and the names of the stats."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from hrnet.data.coco_masks import box_masks, decode_segmentation, encode_masks
from hrnet.evaluation.coco_boxes import BOX_STAT_NAMES
from hrnet.evaluation.cocoeval import coco_stats

SEGM_PREFIX = "segm_"
SEGM_STAT_NAMES = tuple(SEGM_PREFIX + name for name in BOX_STAT_NAMES)  # segm_AP, segm_AP50, ...


def to_coco_segmentations(
    image_ids: Sequence[int],
    masks: Sequence[Sequence[dict[str, Any]]],
    scores: Sequence[Any],
    labels: Sequence[Any],
    label_to_category: Mapping[int, int],
) -> list[dict[str, Any]]:
    """COCO segm results from per-image compressed RLEs (``counts`` as str), scores and labels 1..C,
    in the order :func:`~hrnet.evaluation.coco_boxes.to_coco_detections` lists the same detections."""
    results = []
    for image_id, rles, image_scores, image_labels in zip(image_ids, masks, scores, labels, strict=True):
        for rle, score, label in zip(rles, np.asarray(image_scores), np.asarray(image_labels), strict=True):
            results.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(label_to_category[int(label)]),
                    "segmentation": {"size": list(rle["size"]), "counts": rle["counts"]},
                    "score": round(float(score), 5),
                }
            )
    return results


def evaluate_masks(
    ann_file: str | Path,
    results: list[dict[str, Any]],
    image_ids: Sequence[int] | None = None,
) -> dict[str, float]:
    """``COCOeval(iouType="segm")`` stats as ``segm_AP``, ``segm_AP50``, ... (fractions, -1 as 0);
    ``image_ids`` restricts scoring to those images."""
    return coco_stats(ann_file, results, "segm", SEGM_STAT_NAMES, image_ids)


def image_sizes(ann_file: str | Path) -> dict[int, tuple[int, int]]:
    """``{image id: (height, width)}`` of a COCO file."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann_file))
    return {int(i): (int(im["height"]), int(im["width"])) for i, im in coco.imgs.items()}


def boxes_as_masks(
    results: Sequence[dict[str, Any]], sizes: Mapping[int, tuple[int, int]]
) -> list[dict[str, Any]]:
    """bbox results (``[x, y, w, h]``) with each box filled as its ``segmentation``: the trivial mask
    of a detection, what a mask head has to beat. ``sizes``: :func:`image_sizes`."""
    out = []
    for result in results:
        height, width = sizes[int(result["image_id"])]
        (rle,) = box_masks([result["bbox"]], height, width)
        out.append({key: value for key, value in result.items() if key != "bbox"} | {"segmentation": rle})
    return out


def ground_truth_masks(ann_file: str | Path) -> list[dict[str, Any]]:
    """The non-crowd annotations of ``ann_file`` as segm results of score 1 (a perfect prediction)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann_file))
    results = []
    for ann in coco.dataset["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        image = coco.imgs[ann["image_id"]]
        mask = decode_segmentation(ann["segmentation"], image["height"], image["width"])
        (rle,) = encode_masks(mask[None])
        image_id, category = ann["image_id"], ann["category_id"]
        results.append({"image_id": image_id, "category_id": category, "segmentation": rle, "score": 1.0})
    return results
