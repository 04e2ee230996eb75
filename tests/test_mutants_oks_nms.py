"""Tests written to kill the survivors of the mutation run over ``hrnet/evaluation``'s OKS, OKS-NMS and
rescoring (scripts/mutation.sh, README "Mutation run"): OKS against pycocotools' own computeOks at
intermediate distances, hard and soft NMS around their thresholds, the official rescoring defaults.
Expected values are worked by hand (stated in the comments) or come from pycocotools."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from hrnet.data.coco_constants import OKS_SIGMAS
from hrnet.evaluation.nms import oks, oks_nms
from hrnet.evaluation.rescoring import nms_per_image, rescore, score_people


# ----------------------------------------------------------------------------- nms and rescoring
def pycocotools_oks(ground_truth: np.ndarray, detections: np.ndarray, area: float) -> np.ndarray:
    """pycocotools' own ``COCOeval.computeOks`` of detections (M, 17, 2) against one person whose 17
    joints are all labelled, of ``area`` (the independent reference)."""
    gt = COCO()
    gt.dataset = {
        "images": [{"id": 1, "width": 1000, "height": 1000}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "area": area,
                "bbox": [0, 0, 100, 100],
                "num_keypoints": 17,
                "keypoints": np.concatenate([ground_truth, np.full((17, 1), 2.0)], 1).reshape(-1).tolist(),
            }
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(
            [
                {
                    "image_id": 1,
                    "category_id": 1,
                    "score": 1.0 - 0.01 * i,
                    "keypoints": np.concatenate([d, np.ones((17, 1))], 1).reshape(-1).tolist(),
                }
                for i, d in enumerate(detections)
            ]
        )
        evaluator = COCOeval(gt, dt, iouType="keypoints")
        evaluator.params.imgIds = [1]
        evaluator._prepare()
        return np.asarray(evaluator.computeOks(1, 1))[:, 0]


def test_oks_equals_pycocotools_at_intermediate_distances():
    rng = np.random.default_rng(5)
    reference = rng.uniform(100, 300, (17, 2))
    others = reference[None] + rng.normal(scale=[[[2.0]], [[6.0]], [[12.0]]], size=(3, 17, 2))
    area = 90.0 * 160.0
    mine = oks(reference, others, area, np.full(3, area))
    assert mine == pytest.approx(pycocotools_oks(reference, others, area), abs=1e-12)
    assert mine.min() > 0.1 and mine.max() < 0.99  # really intermediate, not ~1 or ~0
    # the mean area of two people is what the official NMS uses: areas a and 3a act as 2a
    np.testing.assert_allclose(
        oks(reference, others, area, np.full(3, 3 * area)),
        oks(reference, others, 2 * area, np.full(3, 2 * area)),
    )


def test_oks_of_people_without_area_is_zero_not_infinite():
    a, b = np.zeros((17, 2)), np.ones((1, 17, 2))
    np.testing.assert_array_equal(oks(a, b, 0.0, np.zeros(1)), [0.0])  # np.spacing(1) keeps it finite
    np.testing.assert_array_equal(oks(a, a[None], 0.0, np.zeros(1)), [1.0])


def people_at_oks(oks_value: float, area: float) -> tuple[np.ndarray, np.ndarray]:
    """Two people whose OKS is exactly ``oks_value``: every joint k moved by d_k with
    d_k^2 / (2 sigma_k)^2 / area / 2 = -ln(oks_value)."""
    a = np.tile([200.0, 200.0], (17, 1))
    shift = np.sqrt(-math.log(oks_value) * 2 * (2 * OKS_SIGMAS) ** 2 * area)
    b = a.copy()
    b[:, 0] += shift
    return a, b


def triplets(*people: np.ndarray) -> np.ndarray:
    return np.stack([np.concatenate([p, np.ones((17, 1))], 1) for p in people])


def test_soft_nms_decays_by_exp_of_minus_oks_squared_over_threshold():
    a, b = people_at_oks(0.5, 1e4)
    c = a + 5000.0  # far from both
    assert oks(a, b[None], 1e4, np.array([1e4]))[0] == pytest.approx(0.5)
    kps = triplets(a, b, c)
    # A first; B: 0.9 * exp(-0.25 / 0.5) = 0.546 < C's 0.6, so C, then B. (With exp(-0.25 * 0.5), or
    # exp(-0.125 / 0.5), B would stay above 0.6 and come second.)
    assert oks_nms(kps, [1.0, 0.9, 0.6], [1e4] * 3, threshold=0.5, soft=True) == [0, 2, 1]
    assert oks_nms(kps, [1.0, 0.9, 0.5], [1e4] * 3, threshold=0.5, soft=True) == [0, 1, 2]


def test_hard_nms_just_below_and_above_the_threshold():
    for value, kept in ((0.89, [0, 1]), (0.91, [0])):
        a, b = people_at_oks(value, 2500.0)
        assert oks_nms(triplets(a, b), [0.9, 0.8], [2500.0, 2500.0]) == kept


def test_nms_accepts_column_vectors_and_names_a_length_mismatch():
    a, b = people_at_oks(0.95, 2500.0)
    assert oks_nms(triplets(a, b), np.array([[0.8], [0.9]]), np.array([[2500.0], [2500.0]])) == [1]
    with pytest.raises(ValueError, match="2 people, 3 scores and 2 areas"):
        oks_nms(triplets(a, b), [0.8, 0.9, 0.1], [2500.0, 2500.0])


def test_equal_scores_are_picked_later_index_first_among_many():
    # the official argsort()[::-1] order for ties: the later index first; 30 people far apart, scores
    # i % 3: the 2s from the last index down, then the 1s, then the 0s (an unstable sort mixes them)
    kps = triplets(*[np.tile([100.0 * i, 0.0], (17, 1)) for i in range(30)])
    expected = [i for score in (2, 1, 0) for i in range(29, -1, -1) if i % 3 == score]
    assert oks_nms(kps, np.arange(30) % 3, np.full(30, 100.0)) == expected


def test_score_people_defaults_are_the_official_ones():
    a, b = people_at_oks(0.95, 2500.0)
    keypoints = np.stack([a, b, a])
    joint_scores = np.array([[0.3] * 17, [0.25] * 17, [0.15] * 17])
    # rescored with in_vis 0.2: 0.3, 0.25 and 0 (no joint above 0.2); hard NMS at 0.9 per image:
    # B (OKS 0.95 with A) goes; the third person is in another image
    kept, people = score_people([1, 1, 2], keypoints, joint_scores, [1.0, 1.0, 1.0], np.full((3, 2), 0.25))
    assert people == pytest.approx([0.3, 0.25, 0.0])
    assert kept.tolist() == [0, 2]
    assert kept.dtype == np.int64
    # the settings passed on: a threshold above 0.95 keeps B, soft NMS keeps everyone
    kept, _ = score_people([1, 1, 2], keypoints, joint_scores, [1.0] * 3, np.full((3, 2), 0.25), 0.2, 0.96)
    assert kept.tolist() == [0, 1, 2]
    kept, _ = score_people(
        [1, 1, 2], keypoints, joint_scores, [1.0] * 3, np.full((3, 2), 0.25), soft_nms=True
    )
    assert kept.tolist() == [0, 1, 2]
    kept, people = score_people([1, 1, 2], keypoints, joint_scores, [1.0] * 3, np.full((3, 2), 0.25), 0.28)
    assert people == pytest.approx([0.3, 0.0, 0.0])  # the joint threshold passed on


def test_no_people_give_empty_int64_indices():
    kept, people = score_people([], np.zeros((0, 17, 2)), np.zeros((0, 17)), [], np.zeros((0, 2)))
    assert kept.shape == (0,) and kept.dtype == np.int64
    assert people.shape == (0,)
    kept = nms_per_image([], np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros(0), np.zeros(0))
    assert kept.shape == (0,) and kept.dtype == np.int64


def test_nms_per_image_default_threshold_and_column_inputs():
    a, b = people_at_oks(0.95, 2500.0)
    kps, joint_scores = np.stack([a, b]), np.ones((2, 17))
    assert nms_per_image([1, 1], kps, joint_scores, np.array([0.9, 0.8]), np.full(2, 2500.0)).tolist() == [0]
    kept = nms_per_image(
        np.array([[1], [1]]), kps, joint_scores, np.array([[0.8], [0.9]]), np.full((2, 1), 2500.0)
    )
    assert kept.tolist() == [1]


def test_rescore_takes_the_joint_threshold():
    scores = rescore(np.array([[0.3, 0.6, 0.9]]), [0.5], in_vis_threshold=0.5)
    assert scores == pytest.approx([0.5 * 0.75])  # mean of 0.6 and 0.9 only
