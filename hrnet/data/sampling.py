"""Sampling that is a pure function of (seed, epoch), the same on one process or many.

:class:`EpochSampler` replaces both ``RandomSampler`` and Lightning's ``DistributedSampler``:

- the order of an epoch comes from ``(seed, epoch)`` alone, so a run resumed at epoch *k* sees
  exactly the batches an uninterrupted run would have seen;
- under DDP each rank takes ``order[rank::world_size]``; training drops the tail so every rank
  has the same number of batches, evaluation keeps every sample exactly once (no padding, so
  gathered predictions hold no duplicates);
- it yields ``(epoch, index)`` pairs, so a dataset can draw its augmentation from
  :func:`sample_rng` instead of a per-process stream that depends on the number of workers or on
  where a run was resumed. Datasets read a key with :func:`sample_key`, which also takes a plain
  index (epoch 0) and raises ``IndexError`` past the end, as a sequence does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochSampler(Sampler[tuple[int, int]]):
    def __init__(self, size: int, seed: int, shuffle: bool, drop_last: bool = False) -> None:
        self.size, self.seed, self.shuffle, self.drop_last = size, seed, shuffle, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        if self.shuffle:
            return np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        return np.arange(self.size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rank, world = _rank_and_world()
        order = self._order()
        if self.drop_last:
            order = order[: len(order) // world * world]
        return iter((self.epoch, int(i)) for i in order[rank::world])

    def __len__(self) -> int:
        rank, world = _rank_and_world()
        if self.drop_last:
            return self.size // world
        return len(range(rank, self.size, world))


SampleKey = int | tuple[int, int]


def sample_key(key: SampleKey, size: int) -> tuple[int, int]:
    """``(epoch, index)`` of a dataset key: a pair from :class:`EpochSampler`, or a plain index (epoch 0).

    Indices follow sequence rules (negative ones count from the end); one outside the dataset raises
    ``IndexError``, so iterating a dataset ends.
    """
    epoch, index = key if isinstance(key, tuple) else (0, key)
    index = int(index)
    if not -size <= index < size:
        raise IndexError(f"sample index {index} out of range for a dataset of {size}")
    return int(epoch), index % size


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one sample in one epoch."""
    return np.random.default_rng([seed, epoch, index])


def epoch_loader(
    dataset: Dataset,
    batch_size: int,
    train: bool,
    seed: int,
    num_workers: int = 0,
    pin_memory: bool = False,
    collate_fn: Callable | None = None,
) -> DataLoader:
    """The DataLoader every DataModule here uses: :class:`EpochSampler`, seeded and DDP-aware.

    Train loaders shuffle and drop the last partial batch (when the split holds a full one);
    evaluation loaders keep every sample exactly once. Use with ``Trainer(use_distributed_sampler=False)``.
    """
    size = len(dataset)  # type: ignore[arg-type]
    drop_last = train and size >= batch_size
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSampler(size, seed, shuffle=train, drop_last=train),
        drop_last=drop_last,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        collate_fn=collate_fn,
    )


class EpochLoadersMixin:
    """``train_dataloader``/``val_dataloader`` for a DataModule with ``train_dataset`` and ``val_dataset``.

    The host class provides ``setup``, ``batch_size``, ``val_batch_size``, ``seed``, ``num_workers``
    and ``pin_memory``; both loaders come from :func:`epoch_loader`.
    """

    def _epoch_loader(self, train: bool) -> DataLoader:
        stage, name = ("fit", "train_dataset") if train else ("validate", "val_dataset")
        if getattr(self, name) is None:
            self.setup(stage)  # type: ignore[attr-defined]
        dataset = getattr(self, name)
        batch_size = self.batch_size if train else self.val_batch_size  # type: ignore[attr-defined]
        return epoch_loader(
            dataset,
            batch_size,
            train,
            self.seed,
            self.num_workers,
            self.pin_memory,  # type: ignore[attr-defined]
        )

    def train_dataloader(self) -> DataLoader:
        return self._epoch_loader(train=True)

    def val_dataloader(self) -> DataLoader:
        return self._epoch_loader(train=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
