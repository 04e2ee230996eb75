"""COCO instances (boxes) reader, the detection Dataset and its LightningDataModule.

The same code reads the synthetic split (``annotations/instances_{split}.json``, ``images/{split}``)
and real COCO (``annotations/instances_{split}2017.json``, ``{split}2017``). Category ids are mapped
to contiguous labels ``1..C`` in increasing id order (label 0 is torchvision's background).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pycocotools.coco import COCO
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from hrnet.data.coco_reader import coco_layout
from hrnet.data.images import read_image
from hrnet.data.sampling import SampleKey, epoch_loader, sample_key, sample_rng
from hrnet.errors import DataError
from hrnet.io import read_json

log = logging.getLogger(__name__)

SOURCES = ("synthetic", "coco")
MIN_BOX_SIDE = 1.0  # boxes whose clipped width or height is <= this are dropped


@dataclass(frozen=True)
class CategoryMap:
    """COCO categories in label order: label ``i`` (1-based) is ``category_ids[i - 1]``."""

    category_ids: tuple[int, ...]
    names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    @property
    def label_to_category(self) -> dict[int, int]:
        return {i + 1: c for i, c in enumerate(self.category_ids)}

    @property
    def category_to_label(self) -> dict[int, int]:
        return {c: i + 1 for i, c in enumerate(self.category_ids)}

    @property
    def label_names(self) -> dict[int, str]:
        return {i + 1: n for i, n in enumerate(self.names)}


def detection_layout(
    source: str, root: str | Path, split: str, *, must_exist: bool = True
) -> tuple[Path, Path]:
    """(annotation file, image directory) of ``split`` for ``source`` ("synthetic" or "coco")."""
    return coco_layout(source, Path(root), split, must_exist=must_exist, annotations="instances")


def _read_coco(ann_file: Path) -> COCO:
    """Parses and checks the instances JSON; every error is one line naming the file."""
    data = read_json(ann_file, "annotation file not found")
    if not isinstance(data, dict):
        raise DataError(f"{ann_file}: expected a JSON object with images/annotations/categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{ann_file}: missing or non-list {key!r}")
    for image in data["images"]:
        _check_image(ann_file, image)
    image_ids = {im.get("id") for im in data["images"] if isinstance(im, dict)}
    category_ids = {c.get("id") for c in data["categories"] if isinstance(c, dict)}
    for ann in data["annotations"]:
        _check_annotation(ann_file, ann, image_ids, category_ids)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _check_image(ann_file: Path, image: Any) -> None:
    # file_name is joined to the image folder: an absolute path or ".." would read outside it
    name = image.get("file_name") if isinstance(image, dict) else None
    if (
        not isinstance(name, str)
        or not name
        or name.startswith(("/", "\\"))
        or ".." in PurePosixPath(name.replace("\\", "/")).parts
    ):
        image_id = image.get("id") if isinstance(image, dict) else None
        raise DataError(
            f"{ann_file}: image id {image_id}: file_name is {name!r} "
            "(expected a file name inside the split's image folder)"
        )


def _check_annotation(ann_file: Path, ann: Any, image_ids: set, category_ids: set) -> None:
    ann_id = ann.get("id") if isinstance(ann, dict) else None
    where = f"{ann_file}: annotation id {ann_id}"
    if not isinstance(ann, dict) or not {"id", "image_id", "category_id", "bbox"} <= ann.keys():
        raise DataError(f"{where}: needs id, image_id, category_id and bbox")
    if ann["image_id"] not in image_ids:
        raise DataError(f"{where}: image_id {ann['image_id']} is not in 'images'")
    if ann["category_id"] not in category_ids:
        raise DataError(f"{where}: category_id {ann['category_id']} is not in 'categories'")
    bbox = ann["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
        raise DataError(f"{where}: bbox must be 4 numbers [x, y, w, h], got {bbox!r}")
    if not all(math.isfinite(v) for v in bbox):
        raise DataError(f"{where}: bbox has a non-finite value {bbox!r}")
    if bbox[2] < 0 or bbox[3] < 0:
        raise DataError(f"{where}: bbox has negative size (w={bbox[2]}, h={bbox[3]})")


def _categories(coco: COCO) -> CategoryMap:
    cats = sorted(coco.dataset["categories"], key=lambda c: c["id"])
    return CategoryMap(tuple(int(c["id"]) for c in cats), tuple(str(c.get("name", c["id"])) for c in cats))


def read_categories(ann_file: str | Path) -> CategoryMap:
    """The label <-> COCO category mapping of ``ann_file``."""
    return _categories(_read_coco(Path(ann_file)))


def clip_box(bbox: Sequence[float], width: int, height: int) -> list[float] | None:
    """COCO ``[x, y, w, h]`` clipped to the image as xyxy; None when a side is <= ``MIN_BOX_SIDE``."""
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    if x2 - x1 <= MIN_BOX_SIDE or y2 - y1 <= MIN_BOX_SIDE:
        return None
    return [x1, y1, x2, y2]


def load_detection_split(
    ann_file: str | Path, image_dir: str | Path, *, drop_empty: bool = False
) -> tuple[list[dict], CategoryMap]:
    """Records (one per image, in id order) and the category mapping of one split.

    Record: ``image_id``, ``file_name`` (path under ``image_dir``), ``width``, ``height``,
    ``boxes`` (xyxy, clipped), ``labels`` (1..C) and ``category_ids``. Crowd annotations and boxes
    with a clipped side <= 1 px (COCO train2017 has two of height 0) are skipped; ``drop_empty``
    leaves out images with no box left.
    """
    ann_file, image_dir = Path(ann_file), Path(image_dir)
    coco = _read_coco(ann_file)
    categories = _categories(coco)
    to_label = categories.category_to_label
    records, dropped = [], 0
    for image_id in sorted(coco.imgs):
        image = coco.imgs[image_id]
        boxes, cats = [], []
        for ann in coco.imgToAnns.get(image_id, []):
            if ann.get("iscrowd", 0):
                continue
            box = clip_box(ann["bbox"], image["width"], image["height"])
            if box is None:
                dropped += 1
                continue
            boxes.append(box)
            cats.append(int(ann["category_id"]))
        if drop_empty and not boxes:
            continue
        records.append(
            {
                "image_id": int(image_id),
                "file_name": str(image_dir / image["file_name"]),
                "width": int(image["width"]),
                "height": int(image["height"]),
                "boxes": boxes,
                "labels": [to_label[c] for c in cats],
                "category_ids": cats,
            }
        )
    if dropped:
        log.info("%s: dropped %d boxes with a side <= %s px after clipping", ann_file, dropped, MIN_BOX_SIDE)
    return records, categories


def load_detection_records(
    ann_file: str | Path, image_dir: str | Path, *, drop_empty: bool = False
) -> list[dict]:
    """The records of :func:`load_detection_split` (mapping via :func:`read_categories`)."""
    return load_detection_split(ann_file, image_dir, drop_empty=drop_empty)[0]


def read_image_tensor(path: str | Path) -> Tensor:
    """RGB float tensor (3, H, W) in [0, 1]."""
    rgb = read_image(path)
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)


class DetectionDataset(Dataset):
    """``(image (3,H,W) float [0,1], {"boxes": (N,4) xyxy, "labels": (N,), "image_id": int})``.

    With ``train`` the image and boxes are flipped horizontally with probability ``flip_prob``.
    """

    def __init__(
        self, records: Sequence[dict], train: bool = False, flip_prob: float = 0.5, seed: int = 0
    ) -> None:
        self.records = list(records)
        self.train = train
        self.flip_prob = flip_prob
        self.seed = seed

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
        if self.train and sample_rng(self.seed, epoch, index).random() < self.flip_prob:
            image = image.flip(-1)
            boxes = torch.stack(
                [image.shape[-1] - boxes[:, 2], boxes[:, 1], image.shape[-1] - boxes[:, 0], boxes[:, 3]], 1
            )
        target = {
            "boxes": boxes,
            "labels": torch.tensor(record["labels"], dtype=torch.int64),
            "image_id": int(record["image_id"]),
        }
        return image, target


def collate(batch: Sequence[tuple[Tensor, dict]]) -> tuple[list[Tensor], list[dict]]:
    """Keeps images and targets as lists (they differ in size / box count)."""
    return [item[0] for item in batch], [item[1] for item in batch]


class DetectionDataModule(pl.LightningDataModule):
    """Train/val detection loaders over one dataset root (``source`` layout, see :func:`detection_layout`).

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
        splits: Mapping[str, tuple[str | Path, str | Path]] | None = None,
    ) -> None:
        """``splits`` ({"train": (ann_file, image_dir), "val": ...}), e.g. from a prepared index,
        replaces locating the splits under ``root``."""
        super().__init__()
        self.root, self.source = (Path(root) if root is not None else None), source
        self.train_split, self.val_split = train_split, val_split
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.num_workers, self.flip_prob, self.seed = num_workers, flip_prob, seed
        self.splits = {k: (Path(a), Path(d)) for k, (a, d) in splits.items()} if splits else None
        self.val_ann_file = str(self._layout("val", must_exist=False)[0])
        self.categories: CategoryMap | None = None
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
        if self.splits is not None:
            return self.splits[role]
        if self.root is None:
            raise ValueError("DetectionDataModule: give a dataset root or the splits")
        split = self.train_split if role == "train" else self.val_split
        return detection_layout(self.source, self.root, split, must_exist=must_exist)

    def setup(self, stage: str | None = None) -> None:
        val_ann, val_dir = self._layout("val")
        self.val_records, val_categories = load_detection_split(val_ann, val_dir)
        if stage in (None, "fit") and not self.train_records:
            train_ann, train_dir = self._layout("train")
            self.train_records, train_categories = load_detection_split(train_ann, train_dir, drop_empty=True)
            if train_categories != val_categories:
                raise DataError(f"{train_ann}: categories differ from those of {val_ann}")
        self.categories = val_categories

    def _loader(self, records: list[dict], train: bool) -> DataLoader:
        dataset = DetectionDataset(records, train=train, flip_prob=self.flip_prob, seed=self.seed)
        batch_size = self.batch_size if train else self.val_batch_size
        return epoch_loader(
            dataset, batch_size, train, self.seed, self.num_workers, torch.cuda.is_available(), collate
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_records, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_records, train=False)
