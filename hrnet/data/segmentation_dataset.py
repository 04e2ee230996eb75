"""Cityscapes-style semantic segmentation samples and the DataModule.

Training samples follow the official recipe (random scale in ``scale_range``, pad with the
ignore index, random crop, horizontal flip) but fold scale, crop and flip into one
``cv2.warpAffine`` per array, so the cost depends on the crop size only. Pixel centres are
aligned (the same mapping as ``cv2.resize``) and the label uses nearest neighbour on the same
grid, so image and label stay registered. Padding is the ImageNet mean colour (0 after
normalisation) in the image and ``ignore_index`` in the label.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import Dataset

from hrnet.data.cityscapes import read_label_ids
from hrnet.data.class_table import IGNORE_INDEX, ClassTable, cityscapes_table
from hrnet.data.formats.cityscapes import list_cityscapes_pairs
from hrnet.data.images import IMAGENET_MEAN, normalise_planes, read_image
from hrnet.data.sampling import EpochLoadersMixin, SampleKey, sample_key, sample_rng
from hrnet.errors import DataError

log = logging.getLogger(__name__)

_MEAN_RGB = np.array(IMAGENET_MEAN, np.float32) * 255.0
_MEAN_RGB_TUPLE = tuple(float(m) for m in _MEAN_RGB)


class CityscapesSegDataset(Dataset):
    """``(image, labelIds)`` PNG pairs -> ``{"image", "label", "meta"}`` samples.

    ``image`` is (3, H, W) float32 RGB, ImageNet-normalised; ``label`` is (H, W) uint8 train ids
    (``ignore_index`` for void; uint8 keeps collation and worker transfer 8x smaller, the
    module widens it to int64 for the loss). Training: scale factor ``s ~ U(scale_range)`` relative to
    ``base_size`` (the long side; the original size when ``None``), random ``crop_size``
    (width, height) window, flip with probability 0.5. Evaluation: the whole image, resized so
    its long side is ``base_size`` when given, with the label kept at full resolution.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str | Path, str | Path]],
        train: bool,
        crop_size: Sequence[int] = (1024, 512),
        base_size: int | None = None,
        scale_range: Sequence[float] = (0.5, 2.0),
        flip: bool = True,
        ignore_index: int = IGNORE_INDEX,
        seed: int = 0,
        table: ClassTable | None = None,
    ) -> None:
        """``table``: the label files' classes (default Cityscapes'); a flip also swaps its
        ``flip_pairs`` (LIP's left and right classes)."""
        if len(crop_size) != 2 or min(crop_size) < 1:
            raise ValueError(f"crop_size must be (width, height) >= 1, got {crop_size}")
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must be 0 < min <= max, got {scale_range}")
        if base_size is not None and base_size < 1:
            raise ValueError(f"base_size must be >= 1 or None, got {base_size}")
        self.pairs = [(str(i), str(lb)) for i, lb in pairs]
        self.train, self.flip = train, flip
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.base_size = base_size
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.ignore_index = ignore_index
        self.table = table or cityscapes_table()
        self.lut = self.table.lut(ignore_index)
        self.flip_lut = self.table.flip_lut() if self.table.flip_pairs else None
        self.seed = seed

    def __len__(self) -> int:
        return len(self.pairs)

    def _check_pair(self, index: int, image: np.ndarray, label: np.ndarray) -> None:
        if image.shape[:2] != label.shape:
            (lh, lw), (ih, iw) = label.shape, image.shape[:2]
            raise DataError(f"{self.pairs[index][1]}: label size {lw}x{lh} differs from image size {iw}x{ih}")

    def _train_warp(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """2x3 matrix taking source pixels to the augmented crop (scale, crop offset, flip)."""
        cw, ch = self.crop_size
        ref = 1.0 if self.base_size is None else self.base_size / max(height, width)
        s = ref * rng.uniform(*self.scale_range)
        sw, sh = round(width * s), round(height * s)
        x0 = int(rng.integers(0, max(sw - cw, 0) + 1))
        y0 = int(rng.integers(0, max(sh - ch, 0) + 1))
        sx, sy = sw / width, sh / height
        # pixel-centre alignment as cv2.resize: dst = s * src + (s - 1) / 2, then shift by the crop
        mat = np.array([[sx, 0.0, 0.5 * sx - 0.5 - x0], [0.0, sy, 0.5 * sy - 0.5 - y0]])
        if self.flip and rng.random() < 0.5:
            mat[0] = -mat[0]
            mat[0, 2] += cw - 1
        return mat

    def __getitem__(self, key: SampleKey) -> dict:
        epoch, index = sample_key(key, len(self.pairs))
        image_path, label_path = self.pairs[index]
        image, label = read_image(image_path), read_label_ids(label_path, check=False)
        problem = self.table.values_problem(label)
        if problem:
            raise DataError(f"{label_path}: {problem}")
        self._check_pair(index, image, label)
        height, width = label.shape
        label = cv2.LUT(label, self.lut)
        if self.train:
            mat, size = self._train_warp(sample_rng(self.seed, epoch, index), height, width), self.crop_size
            image = cv2.warpAffine(image, mat, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                   borderValue=_MEAN_RGB_TUPLE)  # fmt: skip
            label = cv2.warpAffine(label, mat, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                                   borderValue=int(self.ignore_index))  # fmt: skip
            if self.flip_lut is not None and mat[0, 0] < 0:  # mirrored: left classes become right
                label = cv2.LUT(label, self.flip_lut)
        elif self.base_size is not None and max(height, width) != self.base_size:
            s = self.base_size / max(height, width)
            size = (max(1, round(width * s)), max(1, round(height * s)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        return {
            "image": normalise_planes(image),
            "label": torch.from_numpy(np.ascontiguousarray(label)),
            "meta": {"index": torch.tensor(index, dtype=torch.int64)},
        }


class SegmentationDataModule(EpochLoadersMixin, pl.LightningDataModule):
    """Train/val loaders over a Cityscapes-layout root (real or synthetic)."""

    def __init__(
        self,
        root: str | Path | None,
        crop_size: Sequence[int] = (1024, 512),
        base_size: int | None = None,
        scale_range: Sequence[float] = (0.5, 2.0),
        flip: bool = True,
        batch_size: int = 8,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        pin_memory: bool | None = None,
        ignore_index: int = IGNORE_INDEX,
        train_split: str = "train",
        val_split: str = "val",
        val_base_size: int | None = None,
        pairs: Mapping[str, Sequence[tuple[str | Path, str | Path]]] | None = None,
        table: ClassTable | None = None,
    ) -> None:
        """``pairs`` ({"train": [(image, label), ...], "val": ...}), e.g. from a prepared index,
        replaces listing ``root``."""
        super().__init__()
        if batch_size < 1 or num_workers < 0:
            raise ValueError(
                f"batch_size must be >= 1 and num_workers >= 0 (got {batch_size}, {num_workers})"
            )
        if root is None and pairs is None:
            raise ValueError("SegmentationDataModule: give a dataset root or the pairs")
        self.root = Path(root) if root is not None else None
        self.dataset_args = {
            "crop_size": tuple(crop_size),
            "base_size": base_size,
            "scale_range": tuple(scale_range),
            "flip": flip,
            "ignore_index": ignore_index,
            "seed": seed,
            "table": table,
        }
        self.val_base_size = val_base_size
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.splits = {"train": train_split, "val": val_split}
        self.pairs = pairs
        self.train_dataset: CityscapesSegDataset | None = None
        self.val_dataset: CityscapesSegDataset | None = None

    def _dataset(self, split: str, train: bool) -> CityscapesSegDataset:
        if self.pairs is not None:
            pairs = [(Path(image), Path(label)) for image, label in self.pairs[split]]
        else:
            pairs = list_cityscapes_pairs(self.root, self.splits[split])  # type: ignore[arg-type]
        args = dict(self.dataset_args)
        if not train:
            args["base_size"] = self.val_base_size
        return CityscapesSegDataset(pairs, train, **args)  # type: ignore[arg-type]

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = self._dataset("train", train=True)
        if stage in (None, "fit", "validate", "test", "predict") and self.val_dataset is None:
            self.val_dataset = self._dataset("val", train=False)
