"""The pose DataModule: train and val loaders of top-down person crops over the prepared index,
with the MSRA heatmap codec's targets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch

from hrnet.codecs.heatmap import MSRAHeatmapCodec
from hrnet.data.keypoint_meta import KeypointMeta, same_keypoints
from hrnet.data.pose_dataset import TopDownPoseDataset
from hrnet.data.pose_index import PoseIndex, index_path, load_index
from hrnet.data.sampling import EpochLoadersMixin
from hrnet.errors import DataError


class PoseDataModule(EpochLoadersMixin, pl.LightningDataModule):
    """Train/val loaders over the prepared indexes ``index_dir/{train,val}.json``.

    Sizes are ``(width, height)``; ``heatmap_size`` defaults to a quarter of ``input_size``. The
    keypoint set (``keypoints``, from the indexes' metadata once set up; COCO's person before) gives
    the codec its flip permutation and the datasets their flip pairs and half-body groups.
    """

    def __init__(
        self,
        index_dir: str | Path,
        input_size: Sequence[int] = (192, 256),
        heatmap_size: Sequence[int] | None = None,
        sigma: float = 2.0,
        batch_size: int = 32,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        aug: dict | None = None,
        seed: int = 0,
        pin_memory: bool | None = None,
        train_split: str = "train",
        val_split: str = "val",
    ) -> None:
        super().__init__()
        self.index_dir = Path(index_dir)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        hm = heatmap_size or (self.input_size[0] // 4, self.input_size[1] // 4)
        self.heatmap_size = (int(hm[0]), int(hm[1]))
        self.sigma = sigma
        self.keypoints: KeypointMeta | None = None
        self.codec = MSRAHeatmapCodec(self.input_size, self.heatmap_size, sigma)
        if batch_size < 1 or num_workers < 0:
            raise ValueError(
                f"batch_size must be >= 1 and num_workers >= 0 (got {batch_size}, {num_workers})"
            )
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.aug = aug
        self.seed = seed
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.splits = {"train": train_split, "val": val_split}
        self.train_dataset: TopDownPoseDataset | None = None
        self.val_dataset: TopDownPoseDataset | None = None
        self.val_index: PoseIndex | None = None

    def _dataset(self, split: str, train: bool) -> tuple[TopDownPoseDataset, PoseIndex]:
        index = load_index(index_path(self.index_dir, self.splits[split]))
        if not index.records:
            raise DataError(f"{index_path(self.index_dir, self.splits[split])}: index has no records")
        if self.keypoints is None:
            self.keypoints = index.keypoints
            self.codec = MSRAHeatmapCodec(
                self.input_size, self.heatmap_size, self.sigma, flip_indices=self.keypoints.flip_indices
            )
        else:
            same_keypoints(self.keypoints, index.keypoints, f"the {split} index", "the index set up first")
        dataset = TopDownPoseDataset(
            index.records, index.image_dir, self.input_size, self.codec, train, self.aug, seed=self.seed,
            keypoints=self.keypoints,
        )  # fmt: skip
        return dataset, index

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset, _ = self._dataset("train", train=True)
        if stage in (None, "fit", "validate", "test", "predict") and self.val_dataset is None:
            self.val_dataset, self.val_index = self._dataset("val", train=False)
