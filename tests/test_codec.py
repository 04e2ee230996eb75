"""MSRA heatmap codec: reference-exact encoding, decoding, flip-back and inverse mapping, and the one
test-time path (flip test, shift, decode to image pixels) on hand-made heatmaps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hrnet.codecs.heatmap import MSRAHeatmapCodec, transform_preds
from hrnet.data.coco_constants import FLIP_INDICES, FLIP_PAIRS, NUM_KEYPOINTS
from hrnet.data.transforms import affine_transform_points, get_affine_transform

INPUT, HEATMAP = (192, 256), (48, 64)


def loop_targets(joints, vis, input_size=INPUT, heatmap_size=HEATMAP, sigma=2.0):
    """Straightforward per-joint, per-window construction of the reference target (test oracle)."""
    stride = np.array(input_size, float) / np.array(heatmap_size)
    w, h = heatmap_size
    target = np.zeros((len(joints), h, w), np.float32)
    weight = np.array(vis, np.float32).copy()
    r = sigma * 3
    for k, (x, y) in enumerate(joints):
        mx, my = int(x / stride[0] + 0.5), int(y / stride[1] + 0.5)
        x0, y0, x1, y1 = int(mx - r), int(my - r), int(mx + r + 1), int(my + r + 1)
        if x0 >= w or y0 >= h or x1 <= 0 or y1 <= 0:
            weight[k] = 0
            continue
        if weight[k] > 0.5:
            for yy in range(max(0, y0), min(y1, h)):
                for xx in range(max(0, x0), min(x1, w)):
                    target[k, yy, xx] = math.exp(-((xx - mx) ** 2 + (yy - my) ** 2) / (2 * sigma**2))
    return target, weight


def loop_decode(heatmaps):
    """Argmax + quarter-pixel step, written as plain loops (test oracle)."""
    n, k, h, w = heatmaps.shape
    coords = np.zeros((n, k, 2), np.float32)
    maxvals = np.zeros((n, k, 1), np.float32)
    for i in range(n):
        for j in range(k):
            hm = heatmaps[i, j]
            idx = int(np.argmax(hm))
            maxvals[i, j, 0] = hm.flat[idx]
            if hm.flat[idx] <= 0:
                continue
            px, py = idx % w, idx // w
            coords[i, j] = px, py
            if 1 < px < w - 1 and 1 < py < h - 1:
                coords[i, j, 0] += 0.25 * np.sign(hm[py, px + 1] - hm[py, px - 1])
                coords[i, j, 1] += 0.25 * np.sign(hm[py + 1, px] - hm[py - 1, px])
    return coords, maxvals


@pytest.fixture
def codec() -> MSRAHeatmapCodec:
    return MSRAHeatmapCodec(INPUT, HEATMAP, sigma=2.0)


def test_encode_matches_reference_construction(codec):
    rng = np.random.default_rng(0)
    for _ in range(30):
        joints = rng.uniform(-50, 300, (NUM_KEYPOINTS, 2))
        vis = (rng.random(NUM_KEYPOINTS) > 0.2).astype(np.float32)
        heatmaps, weight = codec.encode(joints, vis)
        expected, expected_weight = loop_targets(joints, vis)
        assert heatmaps.shape == (NUM_KEYPOINTS, 64, 48) and heatmaps.dtype == np.float32
        assert weight.shape == (NUM_KEYPOINTS,) and weight.dtype == np.float32
        np.testing.assert_allclose(heatmaps, expected, atol=1e-6)
        np.testing.assert_array_equal(weight, expected_weight)


def test_peak_is_at_rounded_heatmap_pixel(codec):
    heatmaps, weight = codec.encode(np.array([[41.0, 70.0]]), np.array([1.0]))
    # 41 / 4 = 10.25 -> 10 ; 70 / 4 = 17.5 -> 18 (int(x + 0.5))
    assert np.unravel_index(heatmaps[0].argmax(), heatmaps[0].shape) == (18, 10)
    assert heatmaps[0, 18, 10] == pytest.approx(1.0)
    assert heatmaps[0, 18, 10 + 7] == 0.0 and heatmaps[0, 18, 10 + 6] > 0  # 3-sigma window
    assert weight[0] == 1.0


def test_invisible_and_outside_keypoints_get_zero_weight(codec):
    joints = np.array([[100.0, 100.0], [100.0, 100.0], [-40.0, 100.0], [100.0, 400.0], [-10.0, 100.0]])
    vis = np.array([0.0, 2.0, 1.0, 1.0, 1.0])
    heatmaps, weight = codec.encode(joints, vis)
    np.testing.assert_array_equal(weight, [0.0, 1.0, 0.0, 0.0, 1.0])  # v=2 counts as 1
    assert heatmaps[0].max() == 0.0 and heatmaps[2].max() == 0.0 and heatmaps[3].max() == 0.0
    # Just left of the crop: the Gaussian's right tail is still on the map.
    assert 0 < heatmaps[4].max() < 1 and heatmaps[4][:, 0].argmax() == 25


@pytest.mark.parametrize("offset", [0.0, 0.25, 0.5, 0.75])
def test_round_trip_reference_encoding(codec, offset):
    """Reference targets sit on the rounded pixel, so decoding returns round-half-up(x)."""
    pts_hm = np.array([[10 + offset, 20 + offset], [30 + offset, 40 + offset]])
    heatmaps, _ = codec.encode(pts_hm * 4, np.ones(2))
    coords, maxvals = codec.decode(heatmaps[None])
    expected = np.floor(pts_hm + 0.5)
    np.testing.assert_allclose(coords[0], expected)
    assert np.abs(coords[0] - pts_hm).max() <= 0.5
    np.testing.assert_allclose(maxvals[0, :, 0], 1.0)


@pytest.mark.parametrize("offset", [0.0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9])
def test_round_trip_within_quarter_pixel_with_subpixel_targets(offset):
    codec = MSRAHeatmapCodec(INPUT, HEATMAP, sigma=2.0, unbiased=True)
    pts_hm = np.array([[12 + offset, 25 + offset], [33 + offset, 9 - offset]])
    heatmaps, _ = codec.encode(pts_hm * 4, np.ones(2))
    coords, _ = codec.decode(heatmaps[None])
    assert np.abs(coords[0] - pts_hm).max() <= 0.25 + 1e-6


def test_quarter_step_direction_and_border_rule(codec):
    hm = np.zeros((1, 3, 10, 12), np.float32)
    hm[0, 0, 5, 6], hm[0, 0, 5, 7], hm[0, 0, 4, 6] = 1.0, 0.5, 0.3  # right and up are higher
    hm[0, 1, 5, 1], hm[0, 1, 5, 2] = 1.0, 0.5  # px == 1: the reference does not refine
    hm[0, 2] = -1.0  # non-positive maximum: coordinates 0
    coords, maxvals = codec.decode(hm)
    np.testing.assert_allclose(coords[0], [[6.25, 4.75], [1.0, 5.0], [0.0, 0.0]])
    np.testing.assert_allclose(maxvals[0, :, 0], [1.0, 1.0, -1.0])


def test_decode_matches_loop_oracle_numpy_and_torch(codec):
    rng = np.random.default_rng(1)
    heatmaps = rng.random((3, NUM_KEYPOINTS, 16, 12)).astype(np.float32)
    heatmaps[0, 0] = 0.0  # all ties -> first index
    expected_coords, expected_max = loop_decode(heatmaps)
    coords, maxvals = codec.decode(heatmaps)
    assert isinstance(coords, np.ndarray) and coords.shape == (3, NUM_KEYPOINTS, 2)
    np.testing.assert_allclose(coords, expected_coords)
    np.testing.assert_allclose(maxvals, expected_max)
    t_coords, t_max = codec.decode(torch.from_numpy(heatmaps))
    assert isinstance(t_coords, torch.Tensor) and t_max.shape == (3, NUM_KEYPOINTS, 1)
    np.testing.assert_allclose(t_coords.numpy(), expected_coords)


def flipped_keypoints(joints: np.ndarray, width: int) -> np.ndarray:
    out = joints.copy()
    out[:, 0] = width - 1 - out[:, 0]
    for a, b in FLIP_PAIRS:
        out[[a, b]] = out[[b, a]]
    return out


def test_flip_back_with_shift_recovers_original_peaks(codec):
    rng = np.random.default_rng(2)
    joints = np.stack([rng.integers(8, 40, NUM_KEYPOINTS) * 4, rng.integers(8, 56, NUM_KEYPOINTS) * 4], 1)
    joints = joints.astype(np.float64)
    original, _ = codec.encode(joints, np.ones(NUM_KEYPOINTS))
    mirrored, _ = codec.encode(flipped_keypoints(joints, INPUT[0]), np.ones(NUM_KEYPOINTS))
    back = codec.flip_back(torch.from_numpy(mirrored[None]))
    assert back.shape == (1, NUM_KEYPOINTS, 64, 48)
    peaks = codec.decode(original[None])[0]
    back_peaks = codec.decode(back)[0].numpy()
    np.testing.assert_allclose(back_peaks, peaks)
    # Without the shift the flipped-back maps sit one heatmap pixel to the left.
    unshifted = codec.decode(
        codec.with_test(shift_heatmap=False).flip_back(torch.from_numpy(mirrored[None]))
    )[0]
    np.testing.assert_allclose(unshifted.numpy()[..., 0], peaks[..., 0] - 1)


def test_flip_back_swaps_pairs_and_keeps_first_column(codec):
    hm = torch.arange(2 * NUM_KEYPOINTS * 4 * 5, dtype=torch.float32).reshape(2, NUM_KEYPOINTS, 4, 5)
    out = codec.flip_back(hm)
    torch.testing.assert_close(out[:, 1, :, 1:], hm[:, 2].flip(-1)[..., :-1])
    torch.testing.assert_close(out[:, 0, :, 0], hm[:, 0, :, -1])  # column 0 duplicated
    torch.testing.assert_close(codec.with_test(shift_heatmap=False).flip_back(hm)[:, 9], hm[:, 10].flip(-1))


def test_transform_preds_inverts_the_heatmap_crop():
    center, scale = np.array([150.0, 120.0]), np.array([1.2, 1.6])
    pts = np.array([[100.0, 60.0], [150.0, 120.0], [210.5, 230.25]])
    to_heatmap = get_affine_transform(center, scale, 0, HEATMAP)
    coords = affine_transform_points(pts, to_heatmap)
    np.testing.assert_allclose(transform_preds(coords, center, scale, HEATMAP), pts, atol=1e-3)
    batch = transform_preds(
        np.stack([coords, coords]), np.stack([center, center]), np.stack([scale, scale]), HEATMAP
    )
    assert batch.shape == (2, 3, 2)
    np.testing.assert_allclose(batch[1], pts, atol=1e-3)
    codec = MSRAHeatmapCodec(INPUT, HEATMAP)
    hm, _ = codec.encode(
        affine_transform_points(pts, get_affine_transform(center, scale, 0, INPUT)), np.ones(3)
    )
    image_pts, scores = codec.decode_keypoints(hm[None], center[None], scale[None])
    assert image_pts.shape == (1, 3, 2) and scores.shape == (1, 3)
    # One heatmap pixel is 200 * 1.2 / 48 = 5 image pixels; rounding costs at most half of it.
    assert np.abs(image_pts[0] - pts).max() <= 2.5 + 1e-3


def test_rejects_bad_sizes_and_shapes():
    with pytest.raises(ValueError):
        MSRAHeatmapCodec((0, 10), (4, 4))
    with pytest.raises(ValueError):
        MSRAHeatmapCodec(INPUT, HEATMAP).decode(np.zeros((17, 8, 8), np.float32))


# ----------------------------------------------------------------------------- the test-time path
# A crop of 1.2 x 1.6 pixel_std units around (150, 120): one heatmap pixel is 5 image pixels and the
# heatmap centre (24, 32) is the crop centre, so heatmap (x, y) is image (150 + 5 (x - 24), 120 + 5 (y - 32)).
CENTER, SCALE = np.array([[150.0, 120.0]]), np.array([[1.2, 1.6]])
L_WRIST, R_WRIST, ROW = 9, 10, 20


class RecordingModel:
    """Returns ``plain`` for the crops it was made with and ``mirrored`` for their mirror image."""

    def __init__(self, images: torch.Tensor, plain: np.ndarray, mirrored: np.ndarray) -> None:
        self.images, self.plain, self.mirrored = images, torch.from_numpy(plain), torch.from_numpy(mirrored)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if torch.equal(images, self.images):
            return self.plain
        assert torch.equal(images, self.images.flip(3)), "the flip test runs the horizontally mirrored crops"
        return self.mirrored


def hand_made_model() -> RecordingModel:
    """Left wrist at heatmap (10, 20) in the plain pass; in the mirrored pass the right wrist channel
    peaks at column 38 (1.0) with 0.6 at column 37: brought back and shifted, that is 1.0 at column 10
    and 0.3 after averaging at column 11; not shifted, 1.0 at 9 and 0.6 at 10."""
    plain = np.zeros((1, NUM_KEYPOINTS, 64, 48), np.float32)
    plain[0, L_WRIST, ROW, 10] = 1.0
    mirrored = np.zeros_like(plain)
    mirrored[0, R_WRIST, ROW, 38], mirrored[0, R_WRIST, ROW, 37] = 1.0, 0.6
    images = torch.randn(1, 3, INPUT[1], INPUT[0])
    return RecordingModel(images, plain, mirrored)


@pytest.mark.parametrize(
    ("flip_test", "shift_heatmap", "heatmap_x", "score"),
    [
        (False, True, 10.0, 1.0),  # the plain pass alone: an isolated peak, no quarter step
        (True, True, 10.25, 1.0),  # peaks coincide; the mirrored 0.6 (averaged 0.3) pulls right
        (True, False, 9.75, 0.8),  # unshifted: 0.5 at 9, (1 + 0.6) / 2 at 10, so a step left
    ],
)
def test_predict_runs_the_flip_test_the_settings_ask_for(codec, flip_test, shift_heatmap, heatmap_x, score):
    model = hand_made_model()
    tested = codec.with_test(flip_test=flip_test, shift_heatmap=shift_heatmap)
    keypoints, scores = tested.predict(model, model.images, CENTER, SCALE)
    assert keypoints.shape == (1, NUM_KEYPOINTS, 2) and scores.shape == (1, NUM_KEYPOINTS)
    expected = [150 + 5 * (heatmap_x - 24), 120 + 5 * (ROW - 32)]
    np.testing.assert_allclose(keypoints[0, L_WRIST], expected, atol=1e-3)
    assert scores[0, L_WRIST] == pytest.approx(score)
    assert scores[0, R_WRIST] == 0.0  # neither pass has a right wrist: nothing was swapped in


def test_test_time_settings_are_the_codecs_and_default_to_the_reference(codec):
    assert codec.flip_test and codec.shift_heatmap and codec.flip_indices == FLIP_INDICES
    changed = codec.with_test(flip_test=False)
    assert not changed.flip_test and changed.shift_heatmap and codec.flip_test  # a copy
    assert (changed.input_size, changed.heatmap_size, changed.sigma) == (INPUT, HEATMAP, 2.0)
    with pytest.raises(ValueError, match="unknown test-time settings"):
        codec.with_test(flip=True)


def test_decode_keypoints_refuses_heatmaps_of_another_size(codec):
    with pytest.raises(ValueError, match=r"heatmaps are 24x32 .* decodes 48x64"):
        codec.decode_keypoints(np.zeros((1, NUM_KEYPOINTS, 32, 24), np.float32), CENTER, SCALE)
    with pytest.raises(ValueError, match="17 heatmaps, but 3 flip indices"):
        MSRAHeatmapCodec(INPUT, HEATMAP, flip_indices=(0, 2, 1)).flip_back(torch.zeros(1, 17, 64, 48))
