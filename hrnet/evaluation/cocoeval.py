"""One call of pycocotools' COCOeval, shared by keypoint and box scoring."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def coco_stats(
    ann_file: str | Path,
    results: list[dict[str, Any]],
    iou_type: str,
    stat_names: Sequence[str],
    image_ids: Sequence[int] | None = None,
    kpt_oks_sigmas: Sequence[float] | None = None,
) -> dict[str, float]:
    """``COCOeval`` stats by name, as fractions; all 0 without results.

    ``image_ids`` restricts scoring to those images (e.g. a partial validation pass). pycocotools reports
    -1 where an area range has no ground truth: reported as 0. ``kpt_oks_sigmas``: the keypoint
    set's per-keypoint sigmas (pycocotools' default is COCO's 17).
    """
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO(str(ann_file))
        if not results:
            return dict.fromkeys(stat_names, 0.0)
        # loadRes writes area, id, iscrowd (and a box's polygon) into the dicts it is given: copies,
        # so that the caller's results (bbox_results.json, segm_results.json) stay as made
        detections = ground_truth.loadRes([dict(result) for result in results])
        evaluator = COCOeval(ground_truth, detections, iouType=iou_type)
        if iou_type == "keypoints":
            evaluator.params.useSegm = None  # as the official pose code
            if kpt_oks_sigmas is not None:
                evaluator.params.kpt_oks_sigmas = np.asarray(kpt_oks_sigmas, dtype=np.float64)
        if image_ids is not None:
            evaluator.params.imgIds = sorted({int(i) for i in image_ids})
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: max(float(value), 0.0) for name, value in zip(stat_names, evaluator.stats, strict=False)}
