"""What a keypoint set is: its names, skeleton, flip pairs, OKS sigmas and half-body groups.

Read from the data, never assumed: the names and skeleton are the keypoint category's in the COCO
file (``categories[].keypoints``, ``.skeleton``); the rest is derived from the names or given by
one setting each:

- flip pairs: every ``left_X``/``right_X`` pair of names (also ``l_X``/``r_X``, ``X_left``/``X_right``
  and ``X_l``/``X_r``; case ignored). ``pose.flip_pairs`` replaces them: a list of ``[a, b]`` pairs,
  each side a keypoint name or a 0-based index. A keypoint in no pair maps to itself.
- OKS sigmas: ``pose.oks_sigmas``, one per keypoint; without it COCO's 17 for COCO's person
  keypoints. Any other keypoint set without them is refused.
- half body: the lower group is every keypoint whose name holds a lower-limb word (``LOWER_WORDS``:
  hip, knee, ankle, foot, ...), the upper group the rest; with either group empty half-body
  augmentation is off (logged once by the dataset).

Light: no torch. The prepare stage resolves it once and stores :meth:`KeypointMeta.to_dict` in the
index; training, evaluation, the checkpoint and the package carry that dictionary.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hrnet.data import coco_constants as coco
from hrnet.errors import DataError

LOWER_WORDS = ("hip", "knee", "ankle", "foot", "feet", "heel", "toe", "leg", "thigh", "shin", "paw")
# (left, right) spellings of one side pair, tried in order on each name (case ignored)
_SIDES = (
    (re.compile(r"^left_(.+)$"), "right_{}"),
    (re.compile(r"^l_(.+)$"), "r_{}"),
    (re.compile(r"^(.+)_left$"), "{}_right"),
    (re.compile(r"^(.+)_l$"), "{}_r"),
)


@dataclass(frozen=True)
class KeypointMeta:
    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]  # 1-based limbs, as in the COCO file
    flip_pairs: tuple[tuple[int, int], ...]  # 0-based
    sigmas: tuple[float, ...]
    upper_body_ids: tuple[int, ...]
    lower_body_ids: tuple[int, ...]
    category_id: int = 1

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    @functools.cached_property
    def flip_indices(self) -> tuple[int, ...]:
        """``flipped[k] = original[flip_indices[k]]``: the flip augmentation's and flip test's map."""
        return coco.flip_permutation(self.num_keypoints, self.flip_pairs)

    @property
    def half_body(self) -> bool:
        return bool(self.upper_body_ids) and bool(self.lower_body_ids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "category_id": self.category_id,
            "names": list(self.names),
            "skeleton": [list(limb) for limb in self.skeleton],
            "flip_pairs": [list(pair) for pair in self.flip_pairs],
            "sigmas": list(self.sigmas),
            "upper_body_ids": list(self.upper_body_ids),
            "lower_body_ids": list(self.lower_body_ids),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeypointMeta:
        return cls(
            names=tuple(data["names"]),
            skeleton=tuple(tuple(limb) for limb in data["skeleton"]),  # type: ignore[misc]
            flip_pairs=tuple(tuple(pair) for pair in data["flip_pairs"]),  # type: ignore[misc]
            sigmas=tuple(float(s) for s in data["sigmas"]),
            upper_body_ids=tuple(data["upper_body_ids"]),
            lower_body_ids=tuple(data["lower_body_ids"]),
            category_id=int(data.get("category_id", 1)),
        )


def derive_flip_pairs(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """0-based (left, right) pairs of ``names`` spelled as the module docstring lists."""
    where = {name.lower(): i for i, name in enumerate(names)}
    pairs = []
    for i, name in enumerate(names):
        for pattern, right in _SIDES:
            found = pattern.match(name.lower())
            if found and right.format(found.group(1)) in where:
                pairs.append((i, where[right.format(found.group(1))]))
                break
    return tuple(pairs)


def _index(side: str | int, names: Sequence[str]) -> int:
    if isinstance(side, bool) or not isinstance(side, int | str):
        raise DataError(f"pose.flip_pairs: {side!r} is neither a keypoint name nor an index")
    if isinstance(side, str):
        if side not in names:
            raise DataError(
                f"pose.flip_pairs: {side!r} is not a keypoint name (expected one of {list(names)})"
            )
        return names.index(side)
    if not 0 <= side < len(names):
        raise DataError(f"pose.flip_pairs: index {side} out of range (expected 0..{len(names) - 1})")
    return side


def resolve_flip_pairs(
    names: Sequence[str], override: Sequence[Sequence[str | int]] | None = None
) -> tuple[tuple[int, int], ...]:
    """``override`` (pairs of names or 0-based indices) checked, else :func:`derive_flip_pairs`."""
    if override is None:
        return derive_flip_pairs(names)
    pairs: list[tuple[int, int]] = []
    for pair in override:
        if len(pair) != 2:
            raise DataError(f"pose.flip_pairs: {list(pair)!r} is not a pair (expected [left, right])")
        a, b = (_index(side, list(names)) for side in pair)
        pairs.append((a, b))
    used = [k for pair in pairs for k in pair]
    if len(used) != len(set(used)) or any(a == b for a, b in pairs):
        raise DataError(f"pose.flip_pairs: {used} names a keypoint twice (expected each in one pair at most)")
    return tuple(pairs)


def is_coco_person(names: Sequence[str]) -> bool:
    return tuple(names) == coco.KEYPOINT_NAMES


def resolve_sigmas(names: Sequence[str], override: Sequence[float] | None = None) -> tuple[float, ...]:
    """``pose.oks_sigmas`` checked against the number of keypoints; COCO's for COCO's person."""
    count = len(names)
    if override is None:
        if is_coco_person(names):
            return tuple(float(s) for s in coco.OKS_SIGMAS)
        raise DataError(
            f"pose.oks_sigmas: required for these {count} keypoints ({', '.join(names[:4])}, ...), "
            f"which are not COCO's person keypoints (expected a list of {count} per-keypoint OKS sigmas)"
        )
    if len(override) != count or any(not float(s) > 0 for s in override):
        raise DataError(
            f"pose.oks_sigmas: {len(override)} values given (expected {count} positive sigmas, "
            "one per keypoint of the data)"
        )
    return tuple(float(s) for s in override)


def body_groups(names: Sequence[str]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(upper, lower) 0-based ids: lower has a :data:`LOWER_WORDS` word in its name."""
    lower = tuple(i for i, n in enumerate(names) if any(word in n.lower() for word in LOWER_WORDS))
    return tuple(i for i in range(len(names)) if i not in lower), lower


def keypoint_category(dataset: dict[str, Any]) -> dict[str, Any]:
    """The category of a COCO keypoint file that lists keypoints; COCO's person when none does."""
    listing = [
        c for c in dataset.get("categories", []) if isinstance(c, dict) and c.get("keypoints")
    ]  # fmt: skip
    if len(listing) > 1:
        ids = [c.get("id") for c in listing]
        raise DataError(f"categories {ids} all list keypoints (expected one keypoint category)")
    return listing[0] if listing else coco.PERSON_CATEGORY


def meta_from_category(
    category: dict[str, Any],
    flip_pairs: Sequence[Sequence[str | int]] | None = None,
    oks_sigmas: Sequence[float] | None = None,
) -> KeypointMeta:
    """The metadata of a COCO category (``keypoints``, ``skeleton``) with the two settings."""
    names = category.get("keypoints")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DataError(f"category {category.get('id')}: keypoints is {names!r} (expected a list of names)")
    skeleton = tuple((int(a), int(b)) for a, b in category.get("skeleton") or ())
    upper, lower = body_groups(names)
    return KeypointMeta(
        names=tuple(names),
        skeleton=skeleton,
        flip_pairs=resolve_flip_pairs(names, flip_pairs),
        sigmas=resolve_sigmas(names, oks_sigmas),
        upper_body_ids=upper,
        lower_body_ids=lower,
        category_id=int(category.get("id", 1)),
    )


COCO_PERSON = meta_from_category(coco.PERSON_CATEGORY)
assert COCO_PERSON.flip_pairs == coco.FLIP_PAIRS and COCO_PERSON.upper_body_ids == coco.UPPER_BODY_IDS


def same_keypoints(expected: KeypointMeta, found: KeypointMeta, what: str, where: str) -> None:
    """One line when ``what`` (e.g. a checkpoint) has other keypoint names than ``where`` (e.g. the
    prepared data) has in ``expected``."""
    if expected.names != found.names:
        raise DataError(
            f"{what} has {found.num_keypoints} keypoints ({', '.join(found.names[:3])}, ...) but {where} "
            f"has {expected.num_keypoints} ({', '.join(expected.names[:3])}, ...) (expected the same "
            "keypoint names in the same order)"
        )
