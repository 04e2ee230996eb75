"""EpochSampler: order from (seed, epoch) alone, rank slicing, drop_last and len under DDP."""

import pytest
import torch
from torch.utils.data import Dataset

from hrnet.data import sampling
from hrnet.data.sampling import EpochSampler, epoch_loader, sample_key, sample_rng


def as_rank(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr(sampling, "_rank_and_world", lambda: (rank, world))


def drawn(sampler: EpochSampler) -> list[tuple[int, int]]:
    return list(sampler)


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


class Indices(Dataset):
    """A dataset whose samples are their own indices, read the way the real datasets read keys."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key):
        return torch.tensor(sample_key(key, self.size)[1])


def test_loaders_drop_the_partial_train_batch_and_keep_every_eval_sample():
    data = Indices(10)
    train = epoch_loader(data, batch_size=4, train=True, seed=0)
    assert [len(b) for b in train] == [4, 4] and len(train) == 2
    evaluation = epoch_loader(data, batch_size=4, train=False, seed=0)
    assert torch.cat(list(evaluation)).tolist() == list(range(10))
    small = epoch_loader(Indices(3), batch_size=4, train=True, seed=0)
    assert [len(b) for b in small] == [3]  # a split smaller than one batch still trains


def test_keys_are_epoch_index_pairs_and_plain_indices_end_where_the_dataset_ends():
    sampler = EpochSampler(3, seed=0, shuffle=False)
    sampler.set_epoch(2)
    assert list(sampler) == [(2, 0), (2, 1), (2, 2)]
    assert sample_key((2, 1), 3) == (2, 1) and sample_key(1, 3) == (0, 1) and sample_key(-1, 3) == (0, 2)
    for bad in (3, -4, (0, 3)):
        with pytest.raises(IndexError):
            sample_key(bad, 3)
    assert [int(x) for x in Indices(3)] == [0, 1, 2]  # iterating a dataset ends after its last sample
