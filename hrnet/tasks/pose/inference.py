"""Pose packages: person crops (from given boxes or a detection package's people) -> keypoints in
image pixels, scored and OKS-NMS'd as the evaluate stage scores people at detected boxes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hrnet.codecs.heatmap import MSRAHeatmapCodec
from hrnet.data.images import normalise
from hrnet.data.keypoint_meta import COCO_PERSON, KeypointMeta
from hrnet.data.transforms import crop_people
from hrnet.errors import InputError
from hrnet.evaluation.rescoring import rescore, score_people
from hrnet.predict.inference import DenseInference, Package, chunks
from hrnet.viz import draw_skeletons

if TYPE_CHECKING:
    from collections.abc import Callable

KEYPOINT_SCORE_THRESHOLD = 0.2  # the official in_vis_thre, for packages that do not record theirs
OKS_NMS_THRESHOLD = 0.9  # the official oks_thre, likewise
NO_BOXES = (
    "pose packages need person boxes: give --boxes FILE (JSON [[x, y, w, h], ...]) or "
    "--detector DIR (a detection package); in Python: predict(image, boxes=...) or detector=..."
)


@dataclass
class PosePrediction:
    """People found in one image: keypoints (N, K, 2) in pixels, their scores (N, K), the boxes
    ``[x, y, w, h]`` (N, 4) they came from and one score per person (box score x mean confident
    joint score, as the official evaluation rescores)."""

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    person_scores: np.ndarray


def package_keypoints(meta: dict[str, Any]) -> KeypointMeta:
    """The keypoint set a pose package records (``keypoints``); COCO's person for older packages."""
    stored = meta.get("keypoints")
    return COCO_PERSON if stored is None else KeypointMeta.from_dict(stored)


def pose_codec(meta: dict[str, Any]) -> MSRAHeatmapCodec:
    """The codec of a pose package: its input and heatmap sizes, its keypoints' flip permutation
    and the test-time settings it was evaluated with. Packages from before ``heatmap_size`` and
    ``shift_heatmap`` were recorded had 1/4-size heatmaps and the shift on."""
    width, height = (int(v) for v in meta["input_size"])
    heatmap_size = meta.get("heatmap_size") or (width // 4, height // 4)
    return MSRAHeatmapCodec(
        (width, height),
        heatmap_size,
        flip_test=bool(meta.get("flip_test", True)),
        shift_heatmap=bool(meta.get("shift_heatmap", True)),
        flip_indices=package_keypoints(meta).flip_indices,
    )


def predict_pose(
    runner: Callable[[torch.Tensor], torch.Tensor],
    images: Sequence[np.ndarray],
    boxes: Sequence[Sequence[Sequence[float]]],
    codec: MSRAHeatmapCodec,
    batch_size: int = 8,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image: keypoints (N, K, 2), scores (N, K) and crop scales (N, 2, in ``PIXEL_STD`` units)
    for its ``[x, y, w, h]`` boxes."""
    crops, centers, scales, owners = [], [], [], []
    for i, (image, image_boxes) in enumerate(zip(images, boxes)):
        if len(image_boxes):
            image_crops, c, s = crop_people(image, image_boxes, codec.input_size)
            crops.append(image_crops)
            centers.append(c)
            scales.append(s)
            owners += [i] * len(image_boxes)
    joints = len(codec.flip_indices)
    results = [(np.zeros((0, joints, 2)), np.zeros((0, joints)), np.zeros((0, 2))) for _ in images]
    if not crops:
        return results
    crop_batch, center, scale = np.concatenate(crops), np.concatenate(centers), np.concatenate(scales)
    found = [
        codec.predict(runner, normalise(crop_batch[s]), center[s], scale[s])
        for s in chunks(len(owners), batch_size)
    ]
    keypoints, scores = np.concatenate([k for k, _ in found]), np.concatenate([v for _, v in found])
    owners_arr = np.asarray(owners)
    for i in set(owners):
        rows = owners_arr == i
        results[i] = (keypoints[rows], scores[rows], scale[rows])
    return results


def person_boxes(
    detector: Package, images: Sequence[np.ndarray], threshold: float = 0.0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per image the ``[x, y, w, h]`` boxes a detection package finds of class "person" (every class
    when it has no class of that name) scoring at least ``threshold``, and their scores."""
    names = detector.class_names
    person = [i for i, name in enumerate(names) if name == "person"]
    boxes, scores = [], []
    for det in detector.predict_batch(images):
        keep = det["scores"] >= threshold
        if person:
            keep &= np.isin(det["labels"], person)
        xyxy = det["boxes"][keep].astype(np.float64)
        boxes.append(np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1))
        scores.append(det["scores"][keep].astype(np.float64))
    return boxes, scores


class PoseInference(DenseInference):
    title = "HRNet top-down human pose estimator"
    fp32_outside_graph = ("heatmap decoding and flip averaging (hrnet.codecs)",)

    def input_description(self, meta: dict[str, Any]) -> str:
        return super().input_description(meta).replace("RGB images", "RGB person crops")

    def usage(self, meta: dict[str, Any]) -> str:
        return "keypoints, scores = package.predict(image_rgb, boxes=[[x, y, w, h]])  # image pixels"

    def check_options(self, package: Package, options: dict[str, Any]) -> None:
        if options.get("boxes") is None and options.get("detector") is None:
            raise InputError(NO_BOXES)

    def predict(
        self,
        package: Package,
        images: Sequence[np.ndarray],
        boxes: Sequence[Sequence[Sequence[float]]] | None = None,
        detector: Package | None = None,
        flip_test: bool | None = None,
        box_threshold: float = 0.0,
    ) -> list[PosePrediction]:
        """Per image: people in the given ``boxes`` (all kept) or in the ``detector``'s person boxes
        scoring at least ``box_threshold`` (rescored and OKS-NMS'd as the official evaluation)."""
        self.check_options(package, {"boxes": boxes, "detector": detector})
        box_scores: list[np.ndarray]
        if boxes is None:
            boxes, box_scores = person_boxes(detector, images, box_threshold)
        else:
            boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes]
            box_scores = [np.ones(len(b)) for b in boxes]
        codec = pose_codec(package.meta)
        if flip_test is not None:
            codec = codec.with_test(flip_test=flip_test)
        people = predict_pose(package.model, images, boxes, codec, package.batch_size)
        meta = package.meta
        threshold = float(meta.get("keypoint_score_threshold", KEYPOINT_SCORE_THRESHOLD))
        nms = {
            "oks_nms_threshold": float(meta.get("oks_nms_threshold", OKS_NMS_THRESHOLD)),
            "soft_nms": bool(meta.get("soft_nms", False)),
            "sigmas": package_keypoints(meta).sigmas,
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

    def predict_one(self, package: Package, image: np.ndarray, **options: Any) -> Any:
        """``(keypoints (N, K, 2), scores (N, K))`` for the ``boxes`` of one image."""
        boxes = options.pop("boxes", None)
        (found,) = self.predict(package, [image], None if boxes is None else [boxes], **options)
        return found.keypoints, found.scores

    def results(self, package: Package, prediction: Any, image_id: int, name: str) -> list[dict[str, Any]]:
        records = []
        for kps, scores, box, score in zip(
            prediction.keypoints, prediction.scores, prediction.boxes, prediction.person_scores
        ):
            triplets = np.concatenate([kps, scores[:, None]], axis=1).reshape(-1)
            records.append(
                {
                    "image_id": image_id,
                    "file_name": name,
                    "category_id": package_keypoints(package.meta).category_id,
                    "keypoints": [round(float(v), 3) for v in triplets],
                    "score": round(float(score), 5),
                    "bbox": [round(float(v), 2) for v in box],
                }
            )
        return records

    def draw(self, package: Package, image: np.ndarray, prediction: Any, threshold: float) -> np.ndarray:
        skeleton = [list(limb) for limb in package_keypoints(package.meta).skeleton]
        return draw_skeletons(image, prediction.keypoints, prediction.scores, threshold, skeleton)

    def write_extra(self, package: Package, out_dir: Path, name: str, prediction: Any) -> str | None:
        return None


INFERENCE = PoseInference()
