"""OKS at intermediate distances against pycocotools, and OKS-NMS just either side of its threshold.

The cases in ``test_nms.py`` have an OKS of exactly 1 or about 0, so a wrong constant in the OKS
(``sigma`` for ``2 sigma``, a missing ``/ 2``) leaves them passing. Here every pair of people is
scored by :func:`hrnet.evaluation.nms.oks` and by ``COCOeval.computeOks`` on the same keypoints, and
the NMS cases are built from people whose OKS lies a little above and a little below 0.9.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from hrnet.evaluation import oks_nms
from hrnet.evaluation.nms import oks

# a 100 x 100 px person; both people of a pair share it: our OKS averages the two areas, COCO's
# uses the ground truth's
AREA = 10_000.0


def coco_oks(reference: np.ndarray, others: np.ndarray, area: float) -> np.ndarray:
    """``COCOeval.computeOks`` of ``reference`` (the ground truth, all joints visible) with each of
    ``others`` (the detections), on one image."""
    gt = {
        "images": [{"id": 1, "width": 1000, "height": 1000}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "area": area,
                "bbox": [0.0, 0.0, 100.0, 100.0],
                "iscrowd": 0,
                "num_keypoints": 17,
                "keypoints": np.column_stack([reference[:, :2], np.full(17, 2.0)]).ravel().tolist(),
            }
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground_truth = COCO()
        ground_truth.dataset = gt
        ground_truth.createIndex()
        detections = ground_truth.loadRes(
            [
                {
                    "image_id": 1,
                    "category_id": 1,
                    "keypoints": np.column_stack([other[:, :2], np.ones(17)]).ravel().tolist(),
                    "score": 1.0 - 0.01 * i,  # distinct, descending: computeOks keeps this order
                }
                for i, other in enumerate(others)
            ]
        )
        evaluator = COCOeval(ground_truth, detections, "keypoints")
        evaluator.params.imgIds = [1]
        evaluator.params.maxDets = [len(others)]
        evaluator._prepare()  # what evaluate() does first: files gts and dts by image and category
    return np.asarray(evaluator.computeOks(1, 1))[:, 0]


def pose(rng: np.random.Generator) -> np.ndarray:
    return np.column_stack([rng.uniform(100, 300, (17, 2)), np.ones(17)])


@pytest.mark.parametrize("pixels", [3.0, 5.0, 10.0, 20.0, 40.0])
def test_oks_at_intermediate_distances_equals_pycocotools(pixels: float) -> None:
    rng = np.random.default_rng(int(pixels))
    reference = pose(rng)
    # every joint moved by `pixels` in a random direction, and people moved jointwise at random
    angles = rng.uniform(0, 2 * np.pi, (4, 17))
    shifted = reference[None].repeat(4, 0)
    shifted[:, :, 0] += pixels * np.cos(angles)
    shifted[:, :, 1] += pixels * np.sin(angles)
    shifted[3, :, :2] += rng.normal(0, pixels, (17, 2))
    ours = oks(reference, shifted, AREA, np.full(4, AREA))
    theirs = coco_oks(reference, shifted, AREA)
    assert ((ours > 0.02) & (ours < 0.98)).all(), f"not an intermediate case: {ours}"
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_oks_of_two_people_five_pixels_apart_is_the_coco_value() -> None:
    # the example: all joints 5 px apart on an area of 100 x 100 px: 0.871 (with sigma for
    # 2 sigma it would be 0.647)
    reference = np.column_stack([np.full(17, 50.0), np.full(17, 50.0), np.ones(17)])
    other = reference.copy()
    other[:, 0] += 5
    value = oks(reference, other[None], AREA, np.array([AREA]))[0]
    assert value == pytest.approx(coco_oks(reference, other[None], AREA)[0], rel=1e-12)
    assert value == pytest.approx(0.871, abs=5e-4)


def near_threshold(target: float) -> tuple[np.ndarray, np.ndarray]:
    """Two people whose OKS is ``target``: the second has every joint moved by the distance that
    gives it (a joint moved by ``d`` contributes ``exp(-d² / (2 area (2σ)²))``, so all joints at
    the same OKS need per-joint distances ``d_j = 2σ_j sqrt(-2 area ln target)``)."""
    from hrnet.data.coco_constants import OKS_SIGMAS

    a = np.column_stack([np.full(17, 200.0), np.full(17, 200.0), np.ones(17)])
    b = a.copy()
    b[:, 0] += 2 * OKS_SIGMAS * np.sqrt(-2 * AREA * np.log(target))
    return a, b


@pytest.mark.parametrize("target", [0.905, 0.895])
def test_the_constructed_pairs_have_the_coco_oks_they_are_built_for(target: float) -> None:
    a, b = near_threshold(target)
    assert coco_oks(a, b[None], AREA)[0] == pytest.approx(target, abs=1e-9)
    assert oks(a, b[None], AREA, np.array([AREA]))[0] == pytest.approx(target, abs=1e-9)


def test_hard_nms_drops_a_person_just_above_the_threshold_and_keeps_one_just_below() -> None:
    above, below = near_threshold(0.905), near_threshold(0.895)
    for (a, b), first, second in ((above, [0], [1]), (below, [0, 1], [1, 0])):
        assert oks_nms(np.stack([a, b]), [0.9, 0.8], [AREA, AREA]) == first
        assert oks_nms(np.stack([a, b]), [0.8, 0.9], [AREA, AREA]) == second
    # the threshold moves the decision: at 0.91 the 0.905 pair stays, at 0.89 the 0.895 pair goes
    a, b = above
    assert oks_nms(np.stack([a, b]), [0.9, 0.8], [AREA, AREA], threshold=0.91) == [0, 1]
    a, b = below
    assert oks_nms(np.stack([a, b]), [0.9, 0.8], [AREA, AREA], threshold=0.89) == [0]


def test_soft_nms_rescores_by_the_intermediate_oks() -> None:
    # B at OKS 0.905 with A: its score becomes 0.8 exp(-0.905² / 0.9) = 0.3220; at OKS 0.895 it
    # becomes 0.3285. C, far away, scores 0.325: behind B in one case, ahead in the other; and
    # with the OKS off by more than a few thousandths (e.g. sigma for 2 sigma: OKS 0.67) the order flips.
    far = near_threshold(0.905)[0].copy()
    far[:, :2] += 500
    assert 0.8 * np.exp(-(0.905**2) / 0.9) < 0.325 < 0.8 * np.exp(-(0.895**2) / 0.9)
    for target, expected in ((0.905, [0, 2, 1]), (0.895, [0, 1, 2])):
        a, b = near_threshold(target)
        assert oks_nms(np.stack([a, b, far]), [0.9, 0.8, 0.325], [AREA] * 3, soft=True) == expected
