"""The detection Dataset and its LightningDataModule.

Records come from :mod:`hrnet.data.detection_records` (the prepare stage's index holds them); its
reader names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from hrnet.data.coco_masks import decode_segmentation
from hrnet.data.detection_records import (
    MIN_BOX_SIDE,
    CategoryMap,
    DetectionSplit,
    clip_box,
    detection_layout,
    load_detection_records,
    load_detection_split,
    read_categories,
)
from hrnet.data.images import read_image
from hrnet.data.sampling import SampleKey, epoch_loader, sample_key, sample_rng
from hrnet.errors import DataError

__all__ = [
    "MIN_BOX_SIDE",
    "CategoryMap",
    "DetectionDataModule",
    "DetectionDataset",
    "DetectionSplit",
    "clip_box",
    "collate",
    "detection_layout",
    "load_detection_records",
    "load_detection_split",
    "read_categories",
    "read_image_tensor",
    "record_masks",
]


def read_image_tensor(path: str | Path) -> Tensor:
    """RGB float tensor (3, H, W) in [0, 1]."""
    rgb = read_image(path)
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)


def record_masks(record: dict) -> Tensor:
    """The instance masks (N, H, W) uint8 of a record's boxes, decoded from their COCO
    ``segmentations`` (pycocotools'); a box without one is filled as its mask."""
    height, width = int(record["height"]), int(record["width"])
    segmentations = record.get("segmentations") or [None] * len(record["boxes"])
    masks = np.zeros((len(record["boxes"]), height, width), dtype=np.uint8)
    for i, (segmentation, box) in enumerate(zip(segmentations, record["boxes"], strict=True)):
        if segmentation is None:
            x1, y1, x2, y2 = (round(float(v)) for v in box)
            masks[i, y1:y2, x1:x2] = 1
        else:
            masks[i] = decode_segmentation(segmentation, height, width)
    return torch.from_numpy(masks)


class DetectionDataset(Dataset):
    """``(image (3,H,W) float [0,1], {"boxes": (N,4) xyxy, "labels": (N,), "image_id": int})``,
    with ``with_masks`` also ``"masks"`` (N,H,W) uint8 (:func:`record_masks`).

    With ``train`` the image, boxes and masks are flipped horizontally with probability ``flip_prob``.
    """

    def __init__(
        self,
        records: Sequence[dict],
        train: bool = False,
        flip_prob: float = 0.5,
        seed: int = 0,
        with_masks: bool = False,
    ) -> None:
        self.records = list(records)
        self.train = train
        self.flip_prob = flip_prob
        self.seed = seed
        self.with_masks = with_masks

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: SampleKey) -> tuple[Tensor, dict[str, Any]]:
        epoch, index = sample_key(key, len(self.records))
        record = self.records[index]
        image = read_image_tensor(record["file_name"])
        if image.shape[1:] != (record["height"], record["width"]):
            raise DataError(
                f"{record['file_name']}: image is {image.shape[2]}x{image.shape[1]}, "
                f"annotations say {record['width']}x{record['height']}"
            )
        boxes = torch.tensor(record["boxes"], dtype=torch.float32).reshape(-1, 4)
        masks = record_masks(record) if self.with_masks else None
        if self.train and sample_rng(self.seed, epoch, index).random() < self.flip_prob:
            image = image.flip(-1)
            boxes = torch.stack(
                [image.shape[-1] - boxes[:, 2], boxes[:, 1], image.shape[-1] - boxes[:, 0], boxes[:, 3]], 1
            )
            masks = None if masks is None else masks.flip(-1)
        target: dict[str, Any] = {
            "boxes": boxes,
            "labels": torch.tensor(record["labels"], dtype=torch.int64),
            "image_id": int(record["image_id"]),
        }
        if masks is not None:
            target["masks"] = masks
        return image, target


def collate(batch: Sequence[tuple[Tensor, dict]]) -> tuple[list[Tensor], list[dict]]:
    """Keeps images and targets as lists (they differ in size / box count)."""
    return [item[0] for item in batch], [item[1] for item in batch]


class DetectionDataModule(pl.LightningDataModule):
    """Train/val detection loaders over one dataset root (``source`` layout, see :func:`detection_layout`)
    or over loaded splits (the prepared index).

    After ``setup``: ``categories`` (:class:`CategoryMap`), ``label_to_category``, ``num_classes``
    and ``val_ann_file`` (for scoring).
    """

    def __init__(
        self,
        root: str | Path | None,
        source: str = "synthetic",
        train_split: str = "train",
        val_split: str = "val",
        batch_size: int = 8,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        flip_prob: float = 0.5,
        seed: int = 0,
        splits: Mapping[str, DetectionSplit] | None = None,
        with_masks: bool = False,
    ) -> None:
        """``splits`` ({"train": DetectionSplit, "val": ...}), e.g. from the prepared index, replaces
        reading the splits under ``root``. ``with_masks`` (a mask framework's run) adds each
        instance's mask to the targets."""
        super().__init__()
        if root is None and splits is None:
            raise ValueError("DetectionDataModule: give a dataset root or the splits")
        self.root, self.source = (Path(root) if root is not None else None), source
        self.train_split, self.val_split = train_split, val_split
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.num_workers, self.flip_prob, self.seed = num_workers, flip_prob, seed
        self.splits = dict(splits) if splits is not None else None
        self.with_masks = with_masks
        self.val_ann_file = str(self.splits["val"].ann_file if self.splits else self._layout("val", False)[0])
        self.categories: CategoryMap | None = self.splits["val"].categories if self.splits else None
        self.train_records: list[dict] = []
        self.val_records: list[dict] = []

    @property
    def label_to_category(self) -> dict[int, int]:
        return self._categories().label_to_category

    @property
    def num_classes(self) -> int:
        return self._categories().num_classes

    def _categories(self) -> CategoryMap:
        if self.categories is None:
            self.categories = read_categories(self.val_ann_file)
        return self.categories

    def _layout(self, role: str, must_exist: bool = True) -> tuple[Path, Path]:
        split = self.train_split if role == "train" else self.val_split
        return detection_layout(self.source, self.root, split, must_exist=must_exist)  # type: ignore[arg-type]

    def _split(self, role: str) -> DetectionSplit:
        if self.splits is not None:
            return self.splits[role]
        ann_file, image_dir = self._layout(role)
        records, categories = load_detection_split(ann_file, image_dir)
        return DetectionSplit(records, categories, ann_file)

    def setup(self, stage: str | None = None) -> None:
        val = self._split("val")
        self.val_records = val.records
        if stage in (None, "fit") and not self.train_records:
            train = self._split("train")
            self.train_records = [record for record in train.records if record["boxes"]]
            if train.categories != val.categories:
                raise DataError(f"{train.ann_file}: categories differ from those of {val.ann_file}")
        self.categories = val.categories

    def _loader(self, records: list[dict], train: bool) -> DataLoader:
        dataset = DetectionDataset(records, train, self.flip_prob, self.seed, self.with_masks)
        batch_size = self.batch_size if train else self.val_batch_size
        return epoch_loader(
            dataset, batch_size, train, self.seed, self.num_workers, torch.cuda.is_available(), collate
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_records, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_records, train=False)
