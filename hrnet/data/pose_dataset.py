"""Top-down pose samples (crop + heatmap targets), the prepared index files and the DataModule.

Index file (one JSON per split, written by ``write_index``)::

    {"format": "hrnet-pose-index", "version": 1,
     "image_dir": "<dir relative to the index file's folder, or absolute>",
     "meta": {...}, "num_records": N, "records": [<coco_reader record>, ...]}
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from hrnet.data.images import normalise, read_image
from hrnet.data.keypoint_meta import COCO_PERSON, KeypointMeta
from hrnet.data.pose_index import (  # noqa: F401  (re-exported: the index belongs to the dataset)
    PoseIndex,
    index_path,
    load_index,
    read_index,
    write_index,
)
from hrnet.data.sampling import SampleKey, sample_key, sample_rng
from hrnet.data.transforms import (
    affine_transform_points,
    box_to_center_scale,
    crop_person,
    fliplr_joints,
    half_body_transform,
)

log = logging.getLogger(__name__)


class HeatmapEncoder(Protocol):
    """What the dataset needs of a codec (:class:`hrnet.codecs.heatmap.MSRAHeatmapCodec`): its input
    size and the targets of joints in crop pixels."""

    input_size: Sequence[int]

    def encode(self, keypoints: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


DEFAULT_AUG: dict = {
    "flip": True,
    "rot_factor": 40.0,
    "scale_factor": 0.35,
    "rot_prob": 0.6,
    "half_body_prob": 0.3,
    "num_joints_half_body": 8,
}


# ----------------------------------------------------------------------------- dataset
class TopDownPoseDataset(Dataset):
    """Person crops around ``records`` boxes with MSRA heatmap targets.

    Each item is ``{"image": (3, h, w) float32 (RGB, ImageNet-normalised), "target": (K, hh, hw),
    "target_weight": (K, 1), "meta": {"center", "scale", "image_id", "area", "index",
    "rotation"}}``. Training applies the reference augmentation (half body, scale, rotation,
    flip); evaluation crops the padded box only. ``keypoints`` is the data's keypoint set: its flip
    pairs swap left and right under the flip, its body groups make the half-body crop (off, as
    logged, when it has no lower-body keypoints). Random draws come from a per-process
    ``numpy`` Generator seeded from ``seed`` and ``torch.initial_seed()`` (so DataLoader
    workers differ and runs repeat under a fixed seed).
    """

    def __init__(
        self,
        records: Sequence[dict],
        image_root: str | Path,
        input_size: Sequence[int],
        codec: HeatmapEncoder,
        train: bool,
        aug: dict | None = None,
        *,
        keypoints: KeypointMeta = COCO_PERSON,
        padding: float = 1.25,
        seed: int = 0,
    ) -> None:
        unknown = set(aug or {}) - set(DEFAULT_AUG)
        if unknown:
            raise ValueError(f"unknown augmentation keys {sorted(unknown)}; known: {sorted(DEFAULT_AUG)}")
        self.aug = {**DEFAULT_AUG, **(aug or {})}
        self.image_root = Path(image_root)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if tuple(codec.input_size) != self.input_size:
            raise ValueError(f"codec input size {codec.input_size} != dataset input size {self.input_size}")
        self.codec, self.train = codec, train
        self.keypoints = keypoints
        self.flip_indices, self.upper_body_ids = keypoints.flip_indices, keypoints.upper_body_ids
        self.half_body = keypoints.half_body
        if train and not self.half_body and self.aug["half_body_prob"] > 0:
            log.info("half-body augmentation off: no keypoint name says hip, knee, ankle, foot, ...")
        self.seed = seed
        aspect = self.input_size[0] / self.input_size[1]
        self.aspect_ratio = aspect
        n = len(records)
        self.files = [str(self.image_root / r["image_file"]) for r in records]
        self.image_ids = np.array([r["image_id"] for r in records], dtype=np.int64)
        self.areas = np.array([r["area"] for r in records], dtype=np.float32)
        kps = np.zeros((0, keypoints.num_keypoints, 3), np.float32)
        if n:
            kps = np.array([r["keypoints"] for r in records], dtype=np.float32).reshape(n, -1, 3)
        self.joints = np.ascontiguousarray(kps[:, :, :2])
        self.vis = np.minimum(kps[:, :, 2], 1.0)
        cs = [box_to_center_scale(r["bbox"], aspect, padding) for r in records]
        self.centers = np.array([c for c, _ in cs], dtype=np.float32).reshape(n, 2)
        self.scales = np.array([s for _, s in cs], dtype=np.float32).reshape(n, 2)

    def __len__(self) -> int:
        return len(self.files)

    def _augment(
        self,
        rng: np.random.Generator,
        center: np.ndarray,
        scale: np.ndarray,
        joints: np.ndarray,
        vis: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, float, bool]:
        aug = self.aug
        half_body = self.half_body and vis.sum() > aug["num_joints_half_body"]
        if half_body and rng.random() < aug["half_body_prob"]:
            half = half_body_transform(joints, vis, self.upper_body_ids, self.aspect_ratio, rng)
            if half is not None:
                center, scale = half
        sf, rf = aug["scale_factor"], aug["rot_factor"]
        scale = scale * np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf)
        rot = (
            float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf))
            if rng.random() <= aug["rot_prob"]
            else 0.0
        )
        flip = bool(aug["flip"]) and rng.random() <= 0.5
        return center.astype(np.float32), scale.astype(np.float32), rot, flip

    def __getitem__(self, key: SampleKey) -> dict:
        epoch, index = sample_key(key, len(self.files))
        image = read_image(self.files[index])
        center, scale = self.centers[index].copy(), self.scales[index].copy()
        joints, vis = self.joints[index].copy(), self.vis[index].copy()
        rot, flip = 0.0, False
        if self.train:
            rng = sample_rng(self.seed, epoch, index)
            center, scale, rot, flip = self._augment(rng, center, scale, joints, vis)
        if flip:  # mirror joints and center; the image mirror is folded into the warp below
            width = image.shape[1]
            joints, vis = fliplr_joints(joints, vis, width, self.flip_indices)
            center[0] = width - center[0] - 1
        crop, mat = crop_person(image, center, scale, self.input_size, rot, mirror=flip)
        joints_in = np.where(vis[:, None] > 0, affine_transform_points(joints, mat), joints)
        target, weight = self.codec.encode(joints_in, vis)
        return {
            "image": normalise(crop),
            "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(weight).unsqueeze(-1),
            "meta": {
                "center": torch.from_numpy(center),
                "scale": torch.from_numpy(scale),
                "image_id": torch.tensor(int(self.image_ids[index]), dtype=torch.int64),
                "area": torch.tensor(float(self.areas[index]), dtype=torch.float32),
                "index": torch.tensor(index, dtype=torch.int64),
                "rotation": torch.tensor(rot, dtype=torch.float32),
            },
        }
