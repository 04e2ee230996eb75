"""The ImageNet normalisation constants and COCO's flip pairs and flip permutation exist once: every
module that holds one of them holds that very object (found by importing, not by reading source).
The flip permutation in use is the data's (hrnet.data.keypoint_meta), COCO's person by default."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

import hrnet
from hrnet.codecs.heatmap import MSRAHeatmapCodec
from hrnet.data.coco_constants import FLIP_INDICES, FLIP_PAIRS, NUM_KEYPOINTS
from hrnet.data.images import IMAGENET_MEAN, IMAGENET_STD, normalise
from hrnet.data.keypoint_meta import COCO_PERSON, meta_from_category
from hrnet.data.pose_dataset import TopDownPoseDataset
from hrnet.data.synthetic.skeletons import SKELETONS
from hrnet.evaluation.segmentation import denormalize
from hrnet.tasks.pose.inference import pose_codec

SKIPPED = ("hrnet.benchmarks",)  # command-line benchmarks, no library code


def project_modules() -> list[ModuleType]:
    found = []
    for package in (hrnet,):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not info.name.startswith(SKIPPED):
                found.append(importlib.import_module(info.name))
    return found


def equal_values(value: Any, reference: Any) -> bool:
    if isinstance(value, (str, bytes, dict, type)) or callable(value):
        return False
    try:
        array = np.asarray(value, dtype=np.float64)
    except Exception:  # not array-like
        return False
    return array.shape == np.shape(reference) and bool(np.allclose(array, reference))


@pytest.fixture(scope="module")
def holders() -> dict[str, list[tuple[str, Any]]]:
    """For each constant: ``(module.attribute, value)`` of every module attribute with its values."""
    constants = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "pairs": FLIP_PAIRS, "perm": FLIP_INDICES}
    found: dict[str, list[tuple[str, Any]]] = {name: [] for name in constants}
    for module in project_modules():
        for attribute, value in vars(module).items():
            for name, reference in constants.items():
                if equal_values(value, reference):
                    found[name].append((f"{module.__name__}.{attribute}", value))
    return found


@pytest.mark.parametrize(
    ("name", "reference", "users"),
    [
        ("mean", IMAGENET_MEAN, {"hrnet.data.segmentation_dataset", "hrnet.evaluation.segmentation"}),
        ("std", IMAGENET_STD, {"hrnet.data.images", "hrnet.evaluation.segmentation"}),
        ("pairs", FLIP_PAIRS, {"hrnet.data"}),
        ("perm", FLIP_INDICES, set()),  # no module keeps one: the data's keypoint set makes it
    ],
)
def test_every_copy_is_the_one_object(holders, name, reference, users):
    copies = [where for where, value in holders[name] if value is not reference]
    assert not copies, f"{copies} hold their own copy; import it from where it is defined"
    modules = {where.rsplit(".", 1)[0] for where, _ in holders[name]}
    assert users <= modules  # the search does see the modules that use it


def test_the_flip_permutation_is_derived_from_the_pairs():
    assert sorted(FLIP_INDICES) == list(range(NUM_KEYPOINTS))
    for a, b in FLIP_PAIRS:
        assert (FLIP_INDICES[a], FLIP_INDICES[b]) == (b, a)
    unpaired = set(range(NUM_KEYPOINTS)) - {k for pair in FLIP_PAIRS for k in pair}
    assert unpaired == {0} and FLIP_INDICES[0] == 0  # the nose maps to itself


def test_dataset_codec_and_packages_flip_with_the_keypoint_sets_permutation():
    default = inspect.signature(TopDownPoseDataset).parameters["keypoints"].default
    assert default is COCO_PERSON and COCO_PERSON.flip_indices == FLIP_INDICES
    assert MSRAHeatmapCodec((64, 64), (16, 16)).flip_indices is COCO_PERSON.flip_indices
    assert pose_codec({"input_size": [64, 64]}).flip_indices is COCO_PERSON.flip_indices
    stick = meta_from_category(SKELETONS["stick"].category, oks_sigmas=SKELETONS["stick"].sigmas)
    package = {"input_size": [64, 64], "keypoints": stick.to_dict()}
    assert pose_codec(package).flip_indices == stick.flip_indices
    assert stick.flip_indices == (0, 1, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12)


def test_normalise_and_denormalize_are_inverse_through_the_one_mean_and_std():
    rgb = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    batch = normalise(rgb)
    assert batch.shape == (2, 3, 5, 7) and batch.dtype == torch.float32 and batch.is_contiguous()
    expected = (rgb / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(batch.permute(0, 2, 3, 1).numpy(), expected, atol=1e-5)
    assert torch.equal(normalise(rgb[1]), batch[1])
    np.testing.assert_array_equal(denormalize(batch[0]), rgb[0])
    with pytest.raises(ValueError, match="expected RGB uint8 images"):
        normalise(rgb.astype(np.float32))
