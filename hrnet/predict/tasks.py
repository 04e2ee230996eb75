"""Batched inference per task on RGB uint8 images of any size.

pose: person crops (from boxes) -> keypoints; segmentation: the image resized to the package's
input size -> train ids at the image's size; detection: the scripted torchvision detector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from hrnet.codecs.heatmap import MSRAHeatmapCodec
from hrnet.data.images import normalise
from hrnet.data.transforms import crop_people

Runner = Callable[[torch.Tensor], torch.Tensor]


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, max(size, 1))]


def pose_codec(meta: dict[str, Any]) -> MSRAHeatmapCodec:
    """The codec of a pose package: its input and heatmap sizes and the test-time settings it was
    evaluated with. Packages from before ``heatmap_size`` and ``shift_heatmap`` were recorded had
    1/4-size heatmaps and the shift on."""
    width, height = (int(v) for v in meta["input_size"])
    heatmap_size = meta.get("heatmap_size") or (width // 4, height // 4)
    return MSRAHeatmapCodec(
        (width, height),
        heatmap_size,
        flip_test=bool(meta.get("flip_test", True)),
        shift_heatmap=bool(meta.get("shift_heatmap", True)),
    )


def predict_pose(
    runner: Runner,
    images: Sequence[np.ndarray],
    boxes: Sequence[Sequence[Sequence[float]]],
    codec: MSRAHeatmapCodec,
    batch_size: int = 8,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image: keypoints (N, 17, 2), scores (N, 17) and crop scales (N, 2, in ``PIXEL_STD`` units)
    for its ``[x, y, w, h]`` boxes."""
    crops, centers, scales, owners = [], [], [], []
    for i, (image, image_boxes) in enumerate(zip(images, boxes)):
        if len(image_boxes):
            image_crops, c, s = crop_people(image, image_boxes, codec.input_size)
            crops.append(image_crops)
            centers.append(c)
            scales.append(s)
            owners += [i] * len(image_boxes)
    results = [(np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros((0, 2))) for _ in images]
    if not crops:
        return results
    crop_batch, center, scale = np.concatenate(crops), np.concatenate(centers), np.concatenate(scales)
    found = [
        codec.predict(runner, normalise(crop_batch[s]), center[s], scale[s])
        for s in _chunks(len(owners), batch_size)
    ]
    keypoints, scores = np.concatenate([k for k, _ in found]), np.concatenate([v for _, v in found])
    owners_arr = np.asarray(owners)
    for i in set(owners):
        rows = owners_arr == i
        results[i] = (keypoints[rows], scores[rows], scale[rows])
    return results


def resized_batch(images: Sequence[np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """RGB uint8 images resized to ``size`` (w, h), ImageNet-normalised, as (N, 3, h, w)."""
    return normalise(np.stack([cv2.resize(image, size, interpolation=cv2.INTER_LINEAR) for image in images]))


def predict_segmentation(
    runner: Runner, images: Sequence[np.ndarray], input_size: tuple[int, int], batch_size: int = 8
) -> list[np.ndarray]:
    """Per image: a (H, W) uint8 map of Cityscapes train ids at the image's own size."""
    maps = []
    for part in _chunks(len(images), batch_size):
        logits = runner(resized_batch(images[part], input_size))
        for image, image_logits in zip(images[part], logits):
            up = F.interpolate(
                image_logits[None].float(), size=image.shape[:2], mode="bilinear", align_corners=False
            )
            maps.append(up[0].argmax(0).to(torch.uint8).numpy())
    return maps


def predict_detection(
    detector: Callable[[list[torch.Tensor]], list[dict[str, torch.Tensor]]],
    images: Sequence[np.ndarray],
    batch_size: int = 8,
) -> list[dict[str, Any]]:
    """Per image: ``boxes`` (M, 4) xyxy pixels, ``scores`` (M,), ``labels`` (M,) 1..C.

    Only images of one size share a batch: torchvision pads a batch to its largest image, which
    would make an image's detections depend on its neighbours.
    """
    by_size: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_size.setdefault(image.shape, []).append(i)
    out: list[dict[str, Any]] = [{} for _ in images]
    for indices in by_size.values():
        for part in _chunks(len(indices), batch_size):
            chosen = indices[part]
            tensors = [
                torch.from_numpy(np.ascontiguousarray(images[i])).permute(2, 0, 1) / 255.0 for i in chosen
            ]
            with torch.inference_mode():
                detections = detector(tensors)
            for i, d in zip(chosen, detections):
                keep = d["labels"] > 0  # class 0 is the background slot (see coco_boxes.foreground)
                out[i] = {k: d[k][keep].numpy() for k in ("boxes", "scores", "labels")}
    return out
