"""``ModelPackage``: a loaded package with ``predict`` (arrays in, arrays out) and ``predict_files``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hrnet.errors import InputError
from hrnet.evaluation.rescoring import rescore, score_people
from hrnet.predict import tasks

DETECTOR_PERSON = "person"
KEYPOINT_SCORE_THRESHOLD = 0.2  # the official in_vis_thre, for packages that do not record theirs
OKS_NMS_THRESHOLD = 0.9  # the official oks_thre, likewise
NO_BOXES = (
    "pose packages need person boxes: give --boxes FILE (JSON [[x, y, w, h], ...]) or "
    "--detector DIR (a detection package); in Python: predict(image, boxes=...) or detector=..."
)


@dataclass
class PosePrediction:
    """People found in one image: keypoints (N, 17, 2) in pixels, their scores (N, 17), the boxes
    ``[x, y, w, h]`` (N, 4) they came from and one score per person (box score x mean confident
    joint score, as the official evaluation rescores)."""

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    person_scores: np.ndarray


@dataclass
class ModelPackage:
    """A loaded, verified package. ``model`` maps a normalised batch to the network's outputs
    (pose, segmentation) or a list of [0, 1] images to detections (detection)."""

    path: Path
    meta: dict[str, Any]
    model: Any
    batch_size: int = 8
    _names: list[str] = field(default_factory=list, repr=False)

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

    def _require(self, task: str) -> None:
        if self.task != task:
            raise InputError(f"{self.path}: a {self.task} package; this call needs a {task} package")

    def predict(
        self,
        image_rgb: np.ndarray,
        boxes: Sequence[Sequence[float]] | None = None,
        flip_test: bool | None = None,
        detector: ModelPackage | None = None,
    ) -> Any:
        """One RGB uint8 image. pose: ``(keypoints (N, 17, 2), scores (N, 17))`` for the ``[x, y, w, h]``
        ``boxes`` or the people ``detector`` finds; segmentation: (H, W) uint8 Cityscapes train ids;
        detection: dict of ``boxes`` (xyxy), ``scores`` and ``labels``."""
        if self.task == "pose":
            (result,) = self.predict_pose(
                [image_rgb], None if boxes is None else [boxes], detector, flip_test
            )
            return result.keypoints, result.scores
        if self.task == "segmentation":
            return self.predict_segmentation([image_rgb])[0]
        return self.predict_detection([image_rgb])[0]

    def predict_pose(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[Sequence[Sequence[float]]] | None = None,
        detector: ModelPackage | None = None,
        flip_test: bool | None = None,
        box_threshold: float = 0.0,
    ) -> list[PosePrediction]:
        """Per image: people in the given ``boxes`` (all kept) or in the ``detector``'s person boxes
        scoring at least ``box_threshold`` (rescored and OKS-NMS'd as the official evaluation)."""
        self._require("pose")
        if boxes is None and detector is None:
            raise InputError(NO_BOXES)
        box_scores: list[np.ndarray]
        if boxes is None:
            boxes, box_scores = detector.person_boxes(images, box_threshold)
        else:
            boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes]
            box_scores = [np.ones(len(b)) for b in boxes]
        codec = tasks.pose_codec(self.meta)
        if flip_test is not None:
            codec = codec.with_test(flip_test=flip_test)
        people = tasks.predict_pose(self.model, images, boxes, codec, self.batch_size)
        threshold = float(self.meta.get("keypoint_score_threshold", KEYPOINT_SCORE_THRESHOLD))
        nms = {
            "oks_nms_threshold": float(self.meta.get("oks_nms_threshold", OKS_NMS_THRESHOLD)),
            "soft_nms": bool(self.meta.get("soft_nms", False)),
        }
        out = []
        for (keypoints, scores, scales), image_boxes, image_box_scores in zip(people, boxes, box_scores):
            if detector is None:  # the caller's boxes: every person is kept
                person, keep = rescore(scores, image_box_scores, threshold), slice(None)
            else:  # as the evaluate stage scores people at detected boxes
                image_ids = np.zeros(len(scores), dtype=np.int64)
                keep, person = score_people(
                    image_ids, keypoints, scores, image_box_scores, scales, threshold, **nms
                )
            out.append(PosePrediction(keypoints[keep], scores[keep], image_boxes[keep], person[keep]))
        return out

    def predict_segmentation(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        self._require("segmentation")
        return tasks.predict_segmentation(self.model, list(images), self.input_size, self.batch_size)

    def predict_detection(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        self._require("detection")
        return tasks.predict_detection(self.model, list(images), self.batch_size)

    def person_boxes(
        self, images: Sequence[np.ndarray], threshold: float = 0.0
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Detection packages: per image the ``[x, y, w, h]`` boxes of class "person" (every class
        when the package has no class of that name) scoring at least ``threshold``, and their scores."""
        self._require("detection")
        names = self.class_names
        person = [i for i, name in enumerate(names) if name == DETECTOR_PERSON]
        boxes, scores = [], []
        for det in self.predict_detection(images):
            keep = det["scores"] >= threshold
            if person:
                keep &= np.isin(det["labels"], person)
            xyxy = det["boxes"][keep].astype(np.float64)
            boxes.append(np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1))
            scores.append(det["scores"][keep].astype(np.float64))
        return boxes, scores

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
