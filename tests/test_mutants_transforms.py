"""Tests written to kill the survivors of the mutation run over ``hrnet/data/transforms.py``
(scripts/mutation.sh, README "Mutation run"). Expected values are worked by hand from the MSRA
reference formulas (``get_affine_transform``, ``half_body_transform``), not copied from the code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hrnet.data.transforms import (
    box_to_center_scale,
    crop_image,
    crop_people,
    fliplr_joints,
    get_affine_transform,
    half_body_transform,
)


def expected_affine(center, src_width, rot_deg, output_size):
    """The reference crop affine worked out by hand: src_dir (0, -s/2) turned by the rotation maps onto
    dst_dir (0, -W/2), so the linear part is k * [[cos, sin], [-sin, cos]] with k = W / s, and the
    centre goes to the output centre."""
    k, t = output_size[0] / src_width, math.radians(rot_deg)
    linear = k * np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    offset = np.array([output_size[0] / 2, output_size[1] / 2]) - linear @ np.asarray(center, float)
    return np.concatenate([linear, offset[:, None]], axis=1)


@pytest.mark.parametrize("rot", [30.0, 90.0, -45.0])
def test_rotated_affine_is_the_reference_similarity(rot):
    mat = get_affine_transform((100.0, 80.0), (1.0, 1.0), rot, (50, 40))
    np.testing.assert_allclose(mat, expected_affine((100.0, 80.0), 200.0, rot, (50, 40)), atol=1e-4)


def test_scalar_scale_is_the_same_on_both_axes():
    np.testing.assert_allclose(
        get_affine_transform((60.0, 50.0), 0.5, 0.0, (25, 25)),
        get_affine_transform((60.0, 50.0), (0.5, 0.5), 0.0, (25, 25)),
    )
    np.testing.assert_allclose(
        get_affine_transform((60.0, 50.0), 0.5, 0.0, (25, 25)),
        expected_affine((60, 50), 100.0, 0.0, (25, 25)),
        atol=1e-5,
    )


def test_shift_moves_the_crop_centre_by_a_fraction_of_its_size():
    # reference: src[0] = center + scale * pixel_std * shift; 0.1 of a 200 px crop is 20 px to the right
    mat = get_affine_transform((100.0, 80.0), (1.0, 1.0), 0.0, (50, 50), shift=(0.1, 0.0))
    np.testing.assert_allclose(mat, expected_affine((120.0, 80.0), 200.0, 0.0, (50, 50)), atol=1e-4)


def test_box_with_a_score_column_uses_its_first_four_numbers():
    center, scale = box_to_center_scale([10.0, 20.0, 100.0, 200.0, 0.9], aspect_ratio=0.5, padding=1.0)
    np.testing.assert_allclose(center, [60.0, 120.0])
    np.testing.assert_allclose(scale, [0.5, 1.0])


def test_crop_image_fills_outside_with_the_border_value_and_zero_by_default():
    image = np.full((4, 4, 3), 9, np.uint8)
    shift_out = np.array(
        [[1.0, 0.0, 10.0], [0.0, 1.0, 0.0]]
    )  # everything moves 10 px right: column 0..3 empty
    np.testing.assert_array_equal(crop_image(image, shift_out, (4, 4)), 0)
    np.testing.assert_array_equal(crop_image(image, shift_out, (4, 4), border_value=5), 5)


def test_crop_people_takes_the_padding_and_returns_float32_centres_and_scales():
    image = np.zeros((100, 100, 3), np.uint8)
    crops, centers, scales = crop_people(image, [[10.0, 10.0, 40.0, 80.0]], (32, 64), padding=1.0)
    assert crops.shape == (1, 64, 32, 3)
    np.testing.assert_allclose(centers, [[30.0, 50.0]])
    np.testing.assert_allclose(scales, [[0.2, 0.4]])  # 40 x 80 px in 200 px units, not padded
    assert centers.dtype == scales.dtype == np.float32


def test_fliplr_joints_takes_coco_triplets_and_leaves_its_inputs_alone():
    joints = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 0.0]], np.float32)
    vis = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], np.float32)  # joints_vis (K, 3) as in the reference
    flipped, flipped_vis = fliplr_joints(joints, vis, width=10, flip_indices=[1, 0])
    # joint 0 of the result is joint 1 mirrored (x -> 10 - 1 - x), unlabelled: zeroed; joint 1 is joint 0
    np.testing.assert_array_equal(flipped, [[0.0, 0.0, 0.0], [8.0, 2.0, 0.0]])
    np.testing.assert_array_equal(flipped_vis, vis[[1, 0]])
    np.testing.assert_array_equal(joints, [[1.0, 2.0, 0.0], [3.0, 4.0, 0.0]])  # input not modified
    assert flipped.dtype == np.float32


class FixedDraw:
    """A stand-in for ``np.random.Generator`` whose standard normal draw is fixed."""

    def __init__(self, value: float) -> None:
        self.value = value

    def standard_normal(self) -> float:
        return self.value


UPPER = [0, 1, 2]


def people(upper: int, lower: int) -> tuple[np.ndarray, np.ndarray]:
    """Joints (6, 3) with ``upper`` of joints 0..2 and ``lower`` of joints 3..5 labelled; joint k at
    (10 k, 20 k)."""
    joints = np.array([[10.0 * k, 20.0 * k, 2.0] for k in range(6)])
    vis = np.zeros((6, 3))
    vis[:upper] = 1
    vis[3 : 3 + lower] = 1
    return joints, vis


def test_half_body_takes_coco_triplets_and_the_upper_body_on_a_low_draw():
    joints, vis = people(3, 3)
    center, scale = half_body_transform(joints, vis, UPPER, aspect_ratio=1.0, rng=FixedDraw(0.0))
    # joints 0..2: x 0..20, y 0..40 -> centre (10, 20), 20 x 40 grown to 40 x 40, x 1.5 / 200
    np.testing.assert_allclose(center, [10.0, 20.0])
    np.testing.assert_allclose(scale, [0.3, 0.3])
    assert center.dtype == scale.dtype == np.float32


def test_half_body_draw_of_exactly_one_half_prefers_the_lower_body():
    joints, vis = people(3, 3)
    center, _ = half_body_transform(joints, vis, UPPER, aspect_ratio=1.0, rng=FixedDraw(0.5))
    np.testing.assert_allclose(center, [40.0, 80.0])  # joints 3..5


@pytest.mark.parametrize(
    ("upper", "lower", "draw", "expected"),
    [
        (2, 3, 0.0, [40.0, 80.0]),  # upper needs more than 2 joints: the lower body
        (3, 3, 0.0, [10.0, 20.0]),  # 3 upper joints are enough
        (3, 2, 1.0, [10.0, 20.0]),  # lower preferred but only 2: the upper body
        (2, 0, 1.0, [5.0, 10.0]),  # 2 selected joints still make a box
        (1, 0, 1.0, None),  # 1 does not
    ],
)
def test_half_body_counts_joints_as_the_reference(upper, lower, draw, expected):
    joints, vis = people(upper, lower)
    result = half_body_transform(joints, vis, UPPER, aspect_ratio=1.0, rng=FixedDraw(draw))
    if expected is None:
        assert result is None
    else:
        np.testing.assert_allclose(result[0], expected)


def test_fliplr_joints_returns_float32_for_integer_inputs():
    flipped, flipped_vis = fliplr_joints(
        np.array([[1, 2], [3, 4]]), np.array([1, 0]), width=10, flip_indices=[1, 0]
    )
    assert flipped.dtype == flipped_vis.dtype == np.float32
    np.testing.assert_array_equal(flipped, [[0.0, 0.0], [8.0, 2.0]])
    np.testing.assert_array_equal(flipped_vis, [0.0, 1.0])
