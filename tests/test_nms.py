"""OKS-NMS against cases worked out by hand from the official lib/nms/nms.py definition."""

import numpy as np
import pytest

from hrnet.evaluation import oks_nms


def person(x: float, y: float) -> np.ndarray:
    """17 joints all at (x, y), score 1 (the score column does not enter the OKS)."""
    return np.tile([x, y, 1.0], (17, 1))


def test_hard_nms_drops_a_duplicate_and_keeps_a_distant_person():
    # A and B coincide (OKS 1 > 0.9); C is 100 px away (OKS ~ 0): kept in score order.
    kps = np.stack([person(10, 10), person(10, 10), person(110, 110)])
    assert oks_nms(kps, [0.9, 0.8, 0.7], [100, 100, 100]) == [0, 2]
    assert oks_nms(kps, [0.7, 0.8, 0.9], [100, 100, 100]) == [2, 1]


def test_hard_nms_is_greedy_against_kept_people_only():
    # B moves one joint of A 1000 px away, C moves a second one too (same spot as B's): a joint
    # that far contributes exp(-huge) = 0, so OKS(A, B) = OKS(B, C) = 16/17 = 0.941 > 0.9 and
    # OKS(A, C) = 15/17 = 0.882 <= 0.9. A suppresses B; C only meets kept people (A), so it stays.
    a = person(50, 50)
    b = a.copy()
    b[0, :2] += 1000
    c = b.copy()
    c[1, :2] += 1000
    kps = np.stack([a, b, c])
    assert oks_nms(kps, [0.9, 0.8, 0.7], [1e4] * 3) == [0, 2]
    assert oks_nms(kps, [0.8, 0.9, 0.7], [1e4] * 3) == [1]  # B first overlaps both
    assert oks_nms(kps, [0.9, 0.8, 0.7], [1e4] * 3, threshold=0.95) == [0, 1, 2]


def test_area_scales_the_distance():
    # 1 px apart: area 1e6 gives exponents <= 1/(8 * 0.025^2 * 1e6) = 2e-4, OKS ~ 1, B goes;
    # area 1 gives exponents >= 1/(8 * 0.107^2) ~ 10.9, OKS ~ 0, both stay.
    kps = np.stack([person(0, 0), person(1, 0)])
    assert oks_nms(kps, [0.9, 0.8], [1e6, 1e6]) == [0]
    assert oks_nms(kps, [0.9, 0.8], [1.0, 1.0]) == [0, 1]


def test_ties_go_to_the_later_index_as_argsort_reversed():
    kps = np.stack([person(0, 0), person(500, 500)])
    assert oks_nms(kps, [0.5, 0.5], [100, 100]) == [1, 0]


def test_threshold_is_inclusive_overlap_kept_when_equal():
    # identical people have OKS exactly 1; official code keeps overlap <= thresh
    kps = np.stack([person(0, 0), person(0, 0)])
    assert oks_nms(kps, [0.9, 0.8], [100, 100], threshold=1.0) == [0, 1]
    assert oks_nms(kps, [0.9, 0.8], [100, 100], threshold=0.99) == [0]


def test_soft_nms_rescores_instead_of_dropping():
    # B duplicates A (OKS 1): its score becomes 0.8 * exp(-1 / 0.9) = 0.263.
    kps = np.stack([person(10, 10), person(10, 10), person(110, 110)])
    assert oks_nms(kps, [0.9, 0.8, 0.7], [100] * 3, soft=True) == [0, 2, 1]  # 0.263 < 0.7
    assert oks_nms(kps, [0.9, 0.8, 0.2], [100] * 3, soft=True) == [0, 1, 2]  # 0.263 > 0.2


def test_soft_nms_returns_at_most_twenty():
    kps = np.stack([person(1000 * i, 0) for i in range(25)])
    scores = np.linspace(0.1, 0.9, 25)
    assert oks_nms(kps, scores, [100] * 25, soft=True) == list(range(24, 4, -1))


def test_empty_and_bad_shapes():
    assert oks_nms(np.zeros((0, 17, 3)), [], []) == []
    with pytest.raises(ValueError, match=r"keypoints must be \(N, 17, 3\), got \(1, 17, 2\)"):
        oks_nms(np.zeros((1, 17, 2)), [1.0], [1.0])
