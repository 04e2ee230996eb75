"""What the evaluators need from ``torch.distributed``; each is a no-op in a single process.

Samples are keyed by an id (a dataset index, a COCO image id). A sampler that pads uneven shards
(``torch.utils.data.DistributedSampler``) hands some samples to two ranks; keeping the first copy
of each id, in rank order, makes the gathered set the one a single process sees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def world_size() -> int:
    """The initialised process group's size; 1 without one."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised process group; ``(0, 1)`` without one."""
    world = world_size()
    return (dist.get_rank() if world > 1 else 0), world


def is_global_zero() -> bool:
    """Whether this process is rank 0 (or the only one)."""
    return rank_and_world()[0] == 0


def gather_first_copies(
    local: Sequence[T], to_all: bool = False, key: Callable[[T], int] = itemgetter(0)
) -> list[T] | None:
    """Every rank's ``local`` items, one per ``key`` (the sample id; the first copy in rank order
    is kept), sorted by it. They go to rank 0 (``None`` on the others), or to every rank with ``to_all``.
    """
    world = world_size()
    parts: list[Any] = [list(local)]
    if world > 1:
        parts = [None] * world
        if to_all:
            dist.all_gather_object(parts, list(local))
        else:
            rank = dist.get_rank()
            dist.gather_object(list(local), parts if rank == 0 else None, dst=0)
            if rank != 0:
                return None
    merged: dict[int, T] = {}
    for part in parts:
        for item in part:
            merged.setdefault(int(key(item)), item)
    return [merged[k] for k in sorted(merged)]


def broadcast_from_zero(value: T) -> T:
    """Rank 0's ``value`` on every rank."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """A copy of ``tensor`` summed over all processes when ``torch.distributed`` is initialised."""
    out = tensor.clone()
    if world_size() > 1:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def owned_elsewhere(ids: list[int]) -> set[int]:
    """Those of this rank's sample ``ids`` that a lower rank also holds (its copy is the one kept)."""
    rank, world = rank_and_world()
    if world == 1:
        return set()
    everyone: list[Any] = [None] * world
    dist.all_gather_object(everyone, list(ids))
    lower = {int(i) for part in everyone[:rank] for i in part}
    return {int(i) for i in ids} & lower


class RunningMean:
    """A mean weighted by sample counts whose sum and count are reduced over ranks, so uneven shards
    weigh each sample once (a mean of per-rank means would not)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, value: torch.Tensor | float, count: int) -> None:
        self.total += float(value) * count
        self.count += int(count)

    def compute(self, device: torch.device | str = "cpu") -> float:
        reduced = sum_across_ranks(
            torch.tensor([self.total, float(self.count)], dtype=torch.float64, device=device)
        )
        total, count = reduced.tolist()
        return total / count if count else float("nan")
