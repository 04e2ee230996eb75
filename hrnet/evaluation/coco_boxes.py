"""COCO bounding-box scoring with pycocotools, a trivial baseline and box (and mask) overlays."""

from __future__ import annotations

import colorsys
import contextlib
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools.coco import COCO

from hrnet.evaluation.cocoeval import coco_stats

BOX_STAT_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "AP_S",
    "AP_M",
    "AP_L",
    "AR1",
    "AR10",
    "AR100",
    "AR_S",
    "AR_M",
    "AR_L",
)


def foreground(detection: Mapping[str, Any]) -> dict[str, Any]:
    """A torchvision detector's output without class 0, the background slot.

    Faster R-CNN never reports it; FCOS, whose head here scores ``num_classes + 1`` sigmoid classes
    so that labels are 1..C for both, can (class 0 is never a positive, but an untrained head may
    still score it above the threshold).
    """
    keep = detection["labels"] > 0
    return {key: value[keep] for key, value in detection.items()}


def to_coco_detections(
    image_ids: Sequence[int],
    boxes_xyxy: Sequence[Any],
    scores: Sequence[Any],
    labels: Sequence[Any],
    label_to_category: Mapping[int, int],
) -> list[dict[str, Any]]:
    """COCO results (``bbox`` as ``[x, y, w, h]``) from per-image xyxy boxes, scores and labels 1..C."""
    results = []
    for image_id, boxes, image_scores, image_labels in zip(image_ids, boxes_xyxy, scores, labels):
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        for (x1, y1, x2, y2), score, label in zip(b, np.asarray(image_scores), np.asarray(image_labels)):
            results.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(label_to_category[int(label)]),
                    "bbox": [round(float(v), 2) for v in (x1, y1, x2 - x1, y2 - y1)],
                    "score": round(float(score), 5),
                }
            )
    return results


def evaluate_boxes(
    ann_file: str | Path,
    results: list[dict[str, Any]],
    image_ids: Sequence[int] | None = None,
) -> dict[str, float]:
    """``COCOeval(iouType="bbox")`` stats by name (fractions, -1 reported as 0).

    ``image_ids`` restricts scoring to those images (e.g. a partial validation pass).
    """
    return coco_stats(ann_file, results, "bbox", BOX_STAT_NAMES, image_ids)


def center_box_baseline(ann_file: str | Path) -> list[dict[str, Any]]:
    """The trivial baseline: per image one box of the median GT size at the image centre, labelled
    with the most frequent category, score 1."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann_file))
    anns = [a for a in coco.dataset["annotations"] if not a.get("iscrowd", 0)]
    if not anns:
        return []
    category = Counter(a["category_id"] for a in anns).most_common(1)[0][0]
    w, h = np.median(np.asarray([a["bbox"][2:] for a in anns], dtype=np.float64), axis=0)
    results = []
    for image in coco.dataset["images"]:
        cx, cy = image["width"] / 2, image["height"] / 2
        bbox = [float(cx - w / 2), float(cy - h / 2), float(w), float(h)]
        results.append({"image_id": image["id"], "category_id": category, "bbox": bbox, "score": 1.0})
    return results


MASK_ALPHA = 0.45  # a mask's fill: this much of its box's colour over the image


def label_colour(label: int) -> tuple[int, int, int]:
    """The RGB colour of ``label``'s boxes and masks (golden-ratio hues, so neighbours differ)."""
    r, g, b = colorsys.hsv_to_rgb((label * 0.618) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: Sequence[int],
    scores: Sequence[float] | None = None,
    names: Mapping[int, str] | Sequence[str] | None = None,
    threshold: float = 0.0,
    masks: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """A copy of ``image`` (H, W, 3 uint8) with each xyxy box outlined and captioned, and its mask
    (``masks``: one 0/1 (H, W) array per box) filled translucently in the box's colour.

    The colour depends on the label; ``names`` maps a label to its caption (a sequence is indexed by
    label); boxes scoring below ``threshold`` are skipped.
    """
    boxes = np.asarray(boxes).reshape(-1, 4)
    kept = [i for i in range(len(boxes)) if scores is None or float(scores[i]) >= threshold]
    colours = {i: label_colour(int(labels[i])) for i in kept}
    canvas = image.astype(np.float32)
    for i in kept if masks is not None else ():
        on = np.asarray(masks[i]).astype(bool)  # type: ignore[index]
        canvas[on] = (1 - MASK_ALPHA) * canvas[on] + MASK_ALPHA * np.asarray(colours[i], dtype=np.float32)
    canvas = np.ascontiguousarray(canvas.round().clip(0, 255).astype(np.uint8))
    thickness = max(1, round(min(canvas.shape[:2]) / 200))
    scale = max(0.3, min(canvas.shape[:2]) / 640)
    for i in kept:
        box, label, colour = boxes[i], labels[i], colours[i]
        score = None if scores is None else float(scores[i])
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        name = str(label) if names is None else str(names[int(label)])
        text = name if score is None else f"{name} {score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(y1 - th - base, 0)
        cv2.rectangle(canvas, (x1, top), (x1 + tw, top + th + base), colour, -1)
        cv2.putText(canvas, text, (x1, top + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
