"""``ModelPackage``: a loaded package with ``predict`` (arrays in, arrays out) and ``predict_files``.

What a prediction is depends on the package's task, whose :class:`~hrnet.predict.inference.TaskInference`
(``hrnet.tasks.TASKS[meta["task"]].inference()``) does the work: pose ``(keypoints, scores)`` at given
boxes or a detector's people, segmentation a map of train ids, detection boxes, scores and labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hrnet.errors import InputError
from hrnet.predict.inference import task_inference


@dataclass
class ModelPackage:
    """A loaded, verified package. ``model`` is the packaged network as its task's inference loads
    it (e.g. a normalised batch to heatmaps or logits, or a list of [0, 1] images to detections)."""

    path: Path
    meta: dict[str, Any]
    model: Any
    batch_size: int = 8
    inference: Any = field(default=None, repr=False)  # the task's TaskInference; from meta when None

    def __post_init__(self) -> None:
        if self.inference is None:
            self.inference = task_inference(self.task)

    @property
    def task(self) -> str:
        return str(self.meta["task"])

    @property
    def input_size(self) -> tuple[int, int]:
        width, height = self.meta["input_size"]
        return int(width), int(height)

    @property
    def class_names(self) -> list[str]:
        """Detection: caption of label ``i`` at index ``i`` (0 is the background)."""
        names = self.meta.get("categories")
        return ["background", *names] if names else []

    def require(self, task: str) -> None:
        """Refuses, in one line, a package of another task than ``task``."""
        if self.task != task:
            raise InputError(f"{self.path}: a {self.task} package; this call needs a {task} package")

    def predict(self, image_rgb: np.ndarray, **options: Any) -> Any:
        """One RGB uint8 image. pose: ``(keypoints (N, K, 2), scores (N, K))`` for the ``[x, y, w, h]``
        ``boxes=`` or the people a ``detector=`` package finds; segmentation: (H, W) uint8 train ids;
        detection: dict of ``boxes`` (xyxy), ``scores`` and ``labels``."""
        return self.inference.predict_one(self, image_rgb, **options)

    def predict_batch(self, images: Sequence[np.ndarray], **options: Any) -> list[Any]:
        """One prediction per image, as the task's inference gives it (pose: ``PosePrediction``)."""
        return self.inference.predict(self, list(images), **options)

    def predict_files(
        self,
        source: str | Path,
        out_dir: str | Path,
        boxes: str | Path | None = None,
        detector: ModelPackage | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """What ``hrnet predict`` does: see :func:`hrnet.predict.files.predict_files`."""
        from hrnet.predict.files import predict_files

        return predict_files(self, source, out_dir, boxes=boxes, detector=detector, **options)
