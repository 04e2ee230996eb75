"""Turns per-task predictions into drawings, label PNGs and COCO-format result records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from hrnet.viz import draw_skeletons

if TYPE_CHECKING:
    from hrnet.predict.api import ModelPackage


def _write_image(path: Path, image_rgb: np.ndarray) -> None:
    ok, encoded = cv2.imencode(path.suffix, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: cannot encode this image format")
    path.write_bytes(encoded.tobytes())


def rle_segments(label_ids: np.ndarray, image_id: int, file_name: str) -> list[dict[str, Any]]:
    """One COCO segment result per label id present, the mask as compressed RLE."""
    from pycocotools import mask as mask_utils

    records = []
    for label in np.unique(label_ids):
        rle = mask_utils.encode(np.asfortranarray((label_ids == label).astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        records.append(
            {
                "image_id": image_id,
                "file_name": file_name,
                "category_id": int(label),
                "segmentation": rle,
                "score": 1.0,
            }
        )
    return records


class Drawer:
    """Accumulates ``results`` over batches; ``run`` returns the drawn images (and writes them)."""

    def __init__(self, package: ModelPackage, out_dir: Path, threshold: float) -> None:
        self.package, self.out_dir, self.threshold = package, out_dir, threshold
        self.results: list[dict[str, Any]] = []
        self.next_id = 0

    def run(
        self,
        images: Sequence[np.ndarray],
        names: Sequence[str],
        boxes: Sequence[Sequence[Sequence[float]]] | None,
        detector: ModelPackage | None,
        box_threshold: float,
        write: bool,
    ) -> list[np.ndarray]:
        ids = list(range(self.next_id, self.next_id + len(images)))
        self.next_id += len(images)
        task = self.package.task
        if task == "pose":
            return self._pose(images, names, ids, boxes, detector, box_threshold, write)
        if task == "segmentation":
            return self._segmentation(images, names, ids, write)
        return self._detection(images, names, ids, write)

    def _pose(self, images, names, ids, boxes, detector, box_threshold, write) -> list[np.ndarray]:
        drawn = []
        people = self.package.predict_pose(images, boxes, detector, box_threshold=box_threshold)
        for image, name, image_id, found in zip(images, names, ids, people):
            for kps, scores, box, score in zip(
                found.keypoints, found.scores, found.boxes, found.person_scores
            ):
                triplets = np.concatenate([kps, scores[:, None]], axis=1).reshape(-1)
                self.results.append(
                    {
                        "image_id": image_id,
                        "file_name": name,
                        "category_id": 1,
                        "keypoints": [round(float(v), 3) for v in triplets],
                        "score": round(float(score), 5),
                        "bbox": [round(float(v), 2) for v in box],
                    }
                )
            drawn.append(draw_skeletons(image, found.keypoints, found.scores, self.threshold))
            if write:
                _write_image(self.out_dir / name, drawn[-1])
        return drawn

    def _segmentation(self, images, names, ids, write) -> list[np.ndarray]:
        from hrnet.evaluation.segmentation import colorize, train_ids_to_label_ids

        drawn = []
        for image, name, image_id, train_ids in zip(
            images, names, ids, self.package.predict_segmentation(images)
        ):
            label_ids = train_ids_to_label_ids(train_ids)
            self.results += rle_segments(label_ids, image_id, name)
            drawn.append(cv2.addWeighted(image, 0.5, colorize(train_ids), 0.5, 0.0))
            if write:
                stem = Path(name).stem
                _write_image(self.out_dir / f"{stem}_overlay.png", drawn[-1])
                cv2.imwrite(str(self.out_dir / f"{stem}_labelIds.png"), label_ids)
        return drawn

    def _detection(self, images, names, ids, write) -> list[np.ndarray]:
        from hrnet.evaluation.coco_boxes import draw_boxes

        categories = self.package.meta.get("category_ids")
        captions = self.package.class_names or None
        drawn = []
        for image, name, image_id, det in zip(images, names, ids, self.package.predict_detection(images)):
            for (x1, y1, x2, y2), score, label in zip(det["boxes"], det["scores"], det["labels"]):
                self.results.append(
                    {
                        "image_id": image_id,
                        "file_name": name,
                        "category_id": int(categories[int(label) - 1]) if categories else int(label),
                        "bbox": [round(float(v), 2) for v in (x1, y1, x2 - x1, y2 - y1)],
                        "score": round(float(score), 5),
                    }
                )
            drawn.append(
                draw_boxes(image, det["boxes"], det["labels"], det["scores"], captions, self.threshold)
            )
            if write:
                _write_image(self.out_dir / name, drawn[-1])
        return drawn
