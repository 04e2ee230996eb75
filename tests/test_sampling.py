"""EpochSampler: order from (seed, epoch) alone, rank slicing, drop_last and len under DDP."""

import pytest
import torch

from hrnet.data import sampling
from hrnet.data.sampling import EpochSampler, epoch_loader, sample_rng, untag


def as_rank(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr(sampling, "_rank_and_world", lambda: (rank, world))


def drawn(sampler: EpochSampler) -> list[tuple[int, int]]:
    return [untag(i, sampler.size) for i in sampler]


def test_order_is_a_function_of_seed_and_epoch_and_tags_the_epoch():
    a, b = EpochSampler(10, seed=3, shuffle=True), EpochSampler(10, seed=3, shuffle=True)
    first = drawn(a)
    assert sorted(i for _, i in first) == list(range(10)) and {e for e, _ in first} == {0}
    assert first == drawn(b) and first != drawn(EpochSampler(10, seed=4, shuffle=True))
    a.set_epoch(5)
    fifth = drawn(a)
    assert {e for e, _ in fifth} == {5} and [i for _, i in fifth] != [i for _, i in first]
    b.set_epoch(5)
    assert drawn(b) == fifth  # a run resumed at epoch 5 sees what an uninterrupted one saw
    assert [i for _, i in drawn(EpochSampler(4, seed=3, shuffle=False))] == [0, 1, 2, 3]
    assert sample_rng(3, 5, 1).random() == sample_rng(3, 5, 1).random() != sample_rng(3, 5, 2).random()


@pytest.mark.parametrize("size", [9, 10, 11])
def test_ranks_split_an_epoch_without_overlap(monkeypatch, size):
    world = 3
    order = [i for _, i in drawn(EpochSampler(size, seed=0, shuffle=True))]
    for drop_last in (True, False):
        shards = []
        for rank in range(world):
            as_rank(monkeypatch, rank, world)
            sampler = EpochSampler(size, seed=0, shuffle=True, drop_last=drop_last)
            shard = [i for _, i in drawn(sampler)]
            assert len(sampler) == len(shard)
            assert shard == order[rank::world][: len(shard)]  # the same global order, sliced by rank
            shards.append(shard)
        seen = sorted(i for shard in shards for i in shard)
        if drop_last:  # training: equal shards, so every rank runs the same number of steps
            assert {len(s) for s in shards} == {size // world}
            assert seen == sorted(order[: size // world * world])
        else:  # evaluation: every sample exactly once, no padding
            assert seen == list(range(size))


def test_loaders_drop_the_partial_train_batch_and_keep_every_eval_sample():
    data = torch.arange(10)
    train = epoch_loader(data, batch_size=4, train=True, seed=0)
    assert [len(b) for b in train] == [4, 4] and len(train) == 2
    evaluation = epoch_loader(data, batch_size=4, train=False, seed=0)
    assert torch.cat(list(evaluation)).tolist() == list(range(10))
    small = epoch_loader(torch.arange(3), batch_size=4, train=True, seed=0)
    assert [len(b) for b in small] == [3]  # a split smaller than one batch still trains
