"""Top-down geometry: box -> center/scale, crop affines, flips and the half-body box."""

from __future__ import annotations

import numpy as np
import pytest

from hrnet.data.coco_constants import FLIP_INDICES, NUM_KEYPOINTS, UPPER_BODY_IDS
from hrnet.data.transforms import (
    affine_transform_points,
    box_to_center_scale,
    crop_image,
    fliplr_joints,
    get_affine_transform,
    half_body_transform,
    hflip_matrix,
)

OUT = (192, 256)


def test_box_to_center_scale_grows_to_aspect_and_pads():
    center, scale = box_to_center_scale([10, 20, 100, 50], aspect_ratio=0.75)  # too wide -> grow h
    np.testing.assert_allclose(center, [60, 45])
    np.testing.assert_allclose(scale, np.array([100, 100 / 0.75]) / 200 * 1.25, rtol=1e-6)
    _, scale = box_to_center_scale([0, 0, 30, 120], aspect_ratio=0.75)  # too tall -> grow w
    np.testing.assert_allclose(scale, np.array([90, 120]) / 200 * 1.25, rtol=1e-6)
    _, scale = box_to_center_scale([0, 0, 75, 100], aspect_ratio=0.75, padding=1.0)
    np.testing.assert_allclose(scale, [0.375, 0.5], rtol=1e-6)
    assert center.dtype == np.float32 and scale.dtype == np.float32


def test_affine_maps_center_to_output_center_with_isotropic_scale():
    center, scale = np.array([100.0, 80.0]), np.array([1.2, 1.6])
    mat = get_affine_transform(center, scale, 0, OUT)
    assert mat.shape == (2, 3)
    np.testing.assert_allclose(affine_transform_points(center, mat), [96, 128], atol=1e-4)
    k = OUT[0] / (1.2 * 200)  # the crop width fixes the (isotropic) zoom
    np.testing.assert_allclose(mat[:, :2], [[k, 0], [0, k]], atol=1e-5)


def test_positive_rotation_turns_content_counter_clockwise():
    center = np.array([100.0, 80.0])
    mat = get_affine_transform(center, [1.0, 1.0], 90, OUT)
    k = OUT[0] / 200
    # A point right of the center ends up above the crop center.
    np.testing.assert_allclose(affine_transform_points(center + [10, 0], mat), [96, 128 - 10 * k], atol=1e-3)


@pytest.mark.parametrize("rot", [0.0, 17.0, -63.5])
def test_affine_then_inverse_returns_points(rot):
    center, scale = np.array([321.5, 240.25]), np.array([0.9, 1.2])
    pts = np.random.default_rng(0).uniform(0, 600, (20, 2))
    fwd = get_affine_transform(center, scale, rot, OUT, shift=(0.1, -0.05))
    inv = get_affine_transform(center, scale, rot, OUT, shift=(0.1, -0.05), inv=True)
    back = affine_transform_points(affine_transform_points(pts, fwd), inv)
    np.testing.assert_allclose(back, pts, atol=1e-3)
    assert affine_transform_points(pts.reshape(4, 5, 2), fwd).shape == (4, 5, 2)


def test_crop_image_places_a_pixel_where_the_affine_says():
    image = np.zeros((240, 320, 3), np.uint8)
    image[100, 150] = 255
    mat = get_affine_transform([160.0, 120.0], [1.0, 1.0], 0, (200, 200))  # identity-sized crop
    crop = crop_image(image, mat, (200, 200))
    x, y = affine_transform_points(np.array([150.0, 100.0]), mat)
    assert crop.shape == (200, 200, 3)
    assert crop[int(round(y)), int(round(x))].max() > 200


def test_fliplr_joints_mirrors_swaps_and_zeroes_unlabeled():
    joints = np.arange(NUM_KEYPOINTS * 2, dtype=np.float32).reshape(NUM_KEYPOINTS, 2) + 1
    vis = np.ones(NUM_KEYPOINTS, np.float32)
    vis[3] = 0  # left ear unlabeled
    flipped, fvis = fliplr_joints(joints, vis, 100, FLIP_INDICES)
    assert flipped[0, 0] == 100 - 1 - joints[0, 0]  # nose has no partner
    np.testing.assert_allclose(flipped[1], [100 - 1 - joints[2, 0], joints[2, 1]])  # left eye <- right eye
    assert fvis[4] == 0 and np.all(flipped[4] == 0)  # the unlabeled left ear is now the right ear
    assert fvis[3] == 1
    twice, tvis = fliplr_joints(flipped, fvis, 100, FLIP_INDICES)
    np.testing.assert_allclose(twice[vis > 0], joints[vis > 0])
    np.testing.assert_array_equal(tvis, vis)
    assert joints[0, 0] == 1  # inputs are not modified


def test_hflip_matrix_matches_pixel_convention():
    mirrored = affine_transform_points(np.array([[0.0, 5.0], [9.0, 2.0]]), hflip_matrix(10)[:2])
    np.testing.assert_allclose(mirrored, [[9, 5], [0, 2]])


class FixedNormal:
    def __init__(self, value: float) -> None:
        self.value = value

    def standard_normal(self) -> float:
        return self.value


def test_half_body_picks_upper_or_lower_and_enlarges():
    joints = np.zeros((NUM_KEYPOINTS, 2), np.float32)
    joints[:11] = np.stack([np.linspace(40, 80, 11), np.linspace(10, 50, 11)], 1)
    joints[11:] = np.stack([np.linspace(50, 70, 6), np.linspace(100, 200, 6)], 1)
    vis = np.ones(NUM_KEYPOINTS)
    center, scale = half_body_transform(joints, vis, UPPER_BODY_IDS, 0.75, FixedNormal(0.0))
    np.testing.assert_allclose(center, joints[:11].mean(0), rtol=1e-6)
    np.testing.assert_allclose(scale, np.array([40, 40 / 0.75]) / 200 * 1.5, rtol=1e-5)
    center, scale = half_body_transform(joints, vis, UPPER_BODY_IDS, 0.75, FixedNormal(1.0))
    np.testing.assert_allclose(center, joints[11:].mean(0), rtol=1e-6)
    np.testing.assert_allclose(scale, np.array([100 * 0.75, 100]) / 200 * 1.5, rtol=1e-5)


def test_half_body_falls_back_and_gives_up():
    joints = np.random.default_rng(0).uniform(0, 100, (NUM_KEYPOINTS, 2))
    vis = np.zeros(NUM_KEYPOINTS)
    vis[[11, 12, 13]] = 1  # only lower body labeled: chosen even when the upper one is preferred
    center, _ = half_body_transform(joints, vis, UPPER_BODY_IDS, 0.75, FixedNormal(0.0))
    np.testing.assert_allclose(center, joints[[11, 12, 13]].mean(0), rtol=1e-5)
    vis[:] = 0
    vis[0] = 1
    assert half_body_transform(joints, vis, UPPER_BODY_IDS, 0.75, FixedNormal(0.0)) is None
