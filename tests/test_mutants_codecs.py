"""Tests written to kill the survivors of the mutation run over ``hrnet/codecs`` (scripts/mutation.sh,
README "Mutation run"). Each test names the behaviour it pins; the expected values are hand-worked
from the MSRA reference recipe, not copied from the code's output."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hrnet.codecs.heatmap import MSRAHeatmapCodec, transform_preds
from hrnet.data.transforms import get_affine_transform


def test_default_sigma_is_two_and_other_sigmas_shape_the_gaussian():
    # one keypoint at heatmap pixel (8, 8) of a 16x16 map (stride 1)
    codec = MSRAHeatmapCodec((16, 16), (16, 16))
    heatmaps, _ = codec.encode(np.array([[8.0, 8.0]]), np.array([1.0]))
    assert heatmaps[0, 8, 9] == pytest.approx(math.exp(-1 / 8), rel=1e-6)  # exp(-d^2 / (2 * 2^2))
    wide = MSRAHeatmapCodec((16, 16), (16, 16), sigma=3.0)
    heatmaps, _ = wide.encode(np.array([[8.0, 8.0]]), np.array([1.0]))
    assert heatmaps[0, 8, 9] == pytest.approx(math.exp(-1 / 18), rel=1e-6)  # 2 * 3^2 = 18, not 2 * 3 * 2
    assert heatmaps[0, 10, 8] == pytest.approx(math.exp(-4 / 18), rel=1e-6)


def test_smallest_valid_sizes_and_sigmas_are_accepted_and_zero_refused():
    MSRAHeatmapCodec((1, 1), (1, 1))  # a 1x1 map is a valid (if useless) size
    MSRAHeatmapCodec((8, 8), (4, 4), sigma=1.0)
    MSRAHeatmapCodec((8, 8), (4, 4), sigma=0.5)
    with pytest.raises(ValueError, match=r"invalid codec sizes \(8, 8\)/\(4, 4\) or sigma 0"):
        MSRAHeatmapCodec((8, 8), (4, 4), sigma=0)
    with pytest.raises(ValueError, match=r"invalid codec sizes \(8, 0\)/\(4, 4\)"):
        MSRAHeatmapCodec((8, 0), (4, 4))


def test_visibility_at_one_half_weighs_but_draws_nothing_and_negative_weighs_zero():
    codec = MSRAHeatmapCodec((16, 16), (16, 16))
    kps = np.array([[4.0, 4.0], [8.0, 8.0], [12.0, 12.0]])
    heatmaps, weight = codec.encode(kps, np.array([0.5, -1.0, 2.0]))
    # the reference keeps target_weight = v, clipped to [0, 1] here, and draws only where v > 0.5
    np.testing.assert_array_equal(weight, [0.5, 0.0, 1.0])
    assert heatmaps[0].max() == 0.0
    assert heatmaps[1].max() == 0.0
    assert heatmaps[2, 12, 12] == 1.0


def test_visibility_as_a_column_gives_one_weight_per_keypoint():
    codec = MSRAHeatmapCodec((16, 16), (16, 16))
    heatmaps, weight = codec.encode(np.array([[4.0, 4.0], [8.0, 8.0]]), np.array([[1.0], [0.0]]))
    assert weight.shape == (2,)
    np.testing.assert_array_equal(weight, [1.0, 0.0])
    assert heatmaps.shape == (2, 16, 16)


def test_decode_peak_in_the_last_corner_is_not_refined_and_reads_no_outside_pixel():
    # the maximum at (w-1, h-1): no quarter step (border rule), no neighbour read past the map
    hm = np.zeros((1, 2, 5, 6), np.float32)
    hm[0, 0, 4, 5] = 1.0
    hm[0, 1, 0, 5] = 1.0  # last column of the first row: its right neighbour would be row 1
    coords, maxvals = MSRAHeatmapCodec((24, 20), (6, 5)).decode(hm)
    np.testing.assert_array_equal(coords[0], [[5.0, 4.0], [5.0, 0.0]])
    np.testing.assert_array_equal(maxvals[0, :, 0], [1.0, 1.0])
    coords_t, _ = MSRAHeatmapCodec((24, 20), (6, 5)).decode(torch.from_numpy(hm))
    np.testing.assert_array_equal(coords_t.numpy()[0], [[5.0, 4.0], [5.0, 0.0]])


def test_decode_a_map_whose_maximum_is_zero_gives_the_origin():
    # the reference multiplies the coordinates by (maxval > 0): a zero maximum is "not found"
    hm = np.full((1, 1, 8, 8), -1.0, np.float32)
    hm[0, 0, 5, 4] = 0.0
    coords, maxvals = MSRAHeatmapCodec((32, 32), (8, 8)).decode(hm)
    np.testing.assert_array_equal(coords[0, 0], [0.0, 0.0])
    assert maxvals[0, 0, 0] == 0.0


def test_decode_and_flip_back_name_the_bad_shape():
    codec = MSRAHeatmapCodec((32, 32), (8, 8))
    with pytest.raises(ValueError, match=r"heatmaps must be \(N, K, H, W\), got shape \(8, 8\)"):
        codec.decode(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match=r"heatmaps must be \(N, K, H, W\), got shape \(17, 8, 8\)"):
        codec.flip_back(torch.zeros(17, 8, 8))


def test_decode_keypoints_of_no_people_is_an_empty_n_k_2_array():
    codec = MSRAHeatmapCodec((32, 24), (8, 6))  # H = 6 differs from K = 3
    keypoints, scores = codec.decode_keypoints(
        np.zeros((0, 3, 6, 8), np.float32), np.zeros((0, 2)), np.zeros((0, 2))
    )
    assert isinstance(keypoints, np.ndarray)
    assert keypoints.shape == (0, 3, 2)
    assert scores.shape == (0, 3)


def test_transform_preds_ignores_a_score_column():
    # coords as (x, y, score): only x, y go through the inverse affine, for one person and for N
    center, scale, size = np.array([50.0, 60.0]), np.array([0.5, 0.5]), (25, 25)
    inv = get_affine_transform(center, scale, 0, size, inv=True)
    # 100 px of crop map to 25 heatmap px: heatmap (0, 0) is image (0, 10), (12.5, 12.5) the centre
    np.testing.assert_allclose(inv, [[4.0, 0.0, 0.0], [0.0, 4.0, 10.0]], atol=1e-5)
    coords = np.array([[0.0, 0.0, 0.9], [12.5, 12.5, 0.1]])
    np.testing.assert_allclose(transform_preds(coords, center, scale, size), [[0, 10], [50, 60]], atol=1e-4)
    batch = transform_preds(coords[None], center[None], scale[None], size)
    np.testing.assert_allclose(batch, [[[0, 10], [50, 60]]], atol=1e-4)
