"""The keypoint sets the synthetic figures can be annotated with (``data.synthetic.pose.skeleton``).

- ``coco``: COCO's 17 person keypoints (the default; its output is what it always was);
- ``stick``: a 14-keypoint stick figure of the same drawn people (head and neck centres, then
  ``left_``/``right_`` shoulders, elbows, hands, hips, knees and feet), not COCO's skeleton: its
  flip pairs are derived from the names and its OKS sigmas are this module's suggestion.

A point is a COCO joint of the sampled figure (an index) or a named point of it (``head_c``,
``neck``); it counts as visible on the figure's parts listed with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hrnet.data import coco_constants as coco
from hrnet.data.synthetic.coco_figures import EAR_L, EAR_R, FACE, HEAD, JOINT_PARTS, TORSO


@dataclass(frozen=True)
class SyntheticSkeleton:
    category: dict
    points: tuple[int | str, ...]  # per keypoint: a COCO joint index or a named figure point
    parts: tuple[tuple[int, ...], ...]  # per keypoint: the parts it is visible on
    face: tuple[int, ...]  # keypoints left unlabelled on a figure seen from behind
    sigmas: tuple[float, ...]  # suggested OKS sigmas (pose.oks_sigmas overrides them)


def _stick() -> SyntheticSkeleton:
    sides = ("shoulder", 5), ("elbow", 7), ("hand", 9), ("hip", 11), ("knee", 13), ("foot", 15)
    names, points = ["head", "neck"], ["head_c", "neck"]
    for name, left in sides:
        names += [f"left_{name}", f"right_{name}"]
        points += [left, left + 1]
    skeleton = [(1, 2), (2, 3), (2, 4), (3, 5), (5, 7), (4, 6), (6, 8), (3, 9), (4, 10), (9, 10),
                (9, 11), (11, 13), (10, 12), (12, 14)]  # fmt: skip
    parts = [(HEAD, FACE, EAR_L, EAR_R), (HEAD, TORSO)] + [JOINT_PARTS[p] for p in points[2:]]
    category = {"supercategory": "figure", "id": 1, "name": "stick_figure", "keypoints": names,
                "skeleton": [list(limb) for limb in skeleton]}  # fmt: skip
    # head and neck as wide as the shoulders; the limbs as COCO's joints they sit on
    sigmas = (0.079, 0.079) + tuple(round(float(coco.OKS_SIGMAS[p]), 4) for p in points[2:])  # type: ignore[index]
    return SyntheticSkeleton(category, tuple(points), tuple(parts), (), sigmas)


SKELETONS: dict[str, SyntheticSkeleton] = {
    "coco": SyntheticSkeleton(
        coco.PERSON_CATEGORY,
        tuple(range(coco.NUM_KEYPOINTS)),
        JOINT_PARTS,
        (0, 1, 2),
        tuple(float(s) for s in coco.OKS_SIGMAS),
    ),
    "stick": _stick(),
}


def suggested_sigmas(names: Sequence[str]) -> tuple[float, ...] | None:
    """The sigmas of the synthetic skeleton with these keypoint names; None for any other."""
    for skeleton in SKELETONS.values():
        if list(skeleton.category["keypoints"]) == list(names):
            return skeleton.sigmas
    return None
