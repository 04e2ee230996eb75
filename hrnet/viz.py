"""Drawing predictions on images."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from hrnet.data.keypoint_meta import COCO_PERSON


def _palette(n: int) -> list[tuple[int, int, int]]:
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / max(n, 1), 0.9, 1.0)) for i in range(n)]


def draw_skeletons(
    image_rgb: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray | None = None,
    threshold: float = 0.2,
    skeleton: list[list[int]] | None = None,
) -> np.ndarray:
    """Returns a copy of ``image_rgb`` with each person's limbs and joints drawn.

    ``keypoints`` is (N, K, 2) in image pixels, ``scores`` (N, K); joints under ``threshold`` are
    left out. ``skeleton`` is the keypoint set's 1-based limbs as in a COCO category (None: COCO's
    person skeleton).
    """
    skeleton = [list(limb) for limb in COCO_PERSON.skeleton] if skeleton is None else skeleton
    canvas = np.ascontiguousarray(image_rgb.copy())
    thickness = max(1, round(min(canvas.shape[:2]) / 160))
    colours = _palette(len(skeleton))
    if scores is None:
        scores = np.ones(keypoints.shape[:2])
    for person, person_scores in zip(keypoints, scores):
        visible = person_scores > threshold
        for (a, b), colour in zip(skeleton, colours):
            a, b = a - 1, b - 1
            if visible[a] and visible[b]:
                pa = tuple(int(round(v)) for v in person[a])
                pb = tuple(int(round(v)) for v in person[b])
                cv2.line(canvas, pa, pb, colour, thickness + 1, cv2.LINE_AA)
        for joint, ok in zip(person, visible):
            if ok:
                centre = tuple(int(round(v)) for v in joint)
                cv2.circle(canvas, centre, thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)
    return canvas
