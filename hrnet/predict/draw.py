"""Turns per-task predictions into drawings, label PNGs and COCO-format result records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hrnet.predict.inference import Package


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
    """Accumulates ``results`` over batches; ``run`` returns the drawn images (and writes them).
    What is predicted, drawn and reported is the package's task inference's."""

    def __init__(self, package: Package, out_dir: Path, threshold: float) -> None:
        self.package, self.out_dir, self.threshold = package, out_dir, threshold
        self.results: list[dict[str, Any]] = []
        self.next_id = 0

    def run(
        self,
        images: Sequence[np.ndarray],
        names: Sequence[str],
        boxes: Sequence[Sequence[Sequence[float]]] | None,
        detector: Package | None,
        box_threshold: float,
        write: bool,
    ) -> list[np.ndarray]:
        ids = list(range(self.next_id, self.next_id + len(images)))
        self.next_id += len(images)
        package, inference = self.package, self.package.inference
        options: dict[str, Any] = {}
        if boxes is not None or detector is not None:  # what pose takes; other tasks take none
            options = {"boxes": boxes, "detector": detector, "box_threshold": box_threshold}
        drawn = []
        for image, name, image_id, prediction in zip(
            images, names, ids, inference.predict(package, images, **options)
        ):
            self.results += inference.results(package, prediction, image_id, name)
            drawn.append(inference.draw(package, image, prediction, self.threshold))
            if write:
                drawing = inference.write_extra(package, self.out_dir, name, prediction) or name
                _write_image(self.out_dir / drawing, drawn[-1])
        return drawn
