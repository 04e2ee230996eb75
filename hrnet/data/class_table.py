"""A segmentation dataset's classes: what its label files hold and how they are scored.

A :class:`ClassTable` gives, for the scored classes in train-id order, their names, the label value
each is stored as and its colour; the label values that are present in the files but not scored
(``ignore_values``, mapped to the train id ``IGNORE_INDEX``); and the class pairs a horizontal flip
swaps (LIP's left and right arm, leg and shoe). Every other label value is an error in the data.

Where tables come from (never constants elsewhere in the code):

- Cityscapes: ``cityscapesscripts.helpers.labels`` (:func:`cityscapes_table`);
- PASCAL-Context and LIP: ``class_tables/<name>.yaml`` beside this module (:func:`builtin_table`);
- the ``folder`` layout: the dataset's own ``classes.yaml`` (:func:`read_classes_yaml`).

Those files share one schema (``README.md``, "classes.yaml")::

    ignore: 255                 # a label value, or a list of them, that is not scored (default 255)
    classes:                    # the scored classes, in train-id order
      - {name: road, value: 7, color: [128, 64, 128]}   # color optional: the VOC palette of value
    flip_pairs: [[left_arm, right_arm]]                 # optional: class names a flip swaps
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrnet.errors import DataError

IGNORE_INDEX = 255  # the train id of every pixel that is not scored
_BUILTIN_DIR = Path(__file__).with_name("class_tables")


def voc_color(value: int) -> tuple[int, int, int]:
    """The PASCAL VOC palette colour of a label value (bits of the value spread over R, G, B)."""
    rgb = [0, 0, 0]
    for shift in range(8):
        for channel in range(3):
            rgb[channel] |= ((value >> (3 * shift + channel)) & 1) << (7 - shift)
    return rgb[0], rgb[1], rgb[2]


@dataclass(frozen=True)
class ClassTable:
    """Scored classes in train-id order (``names``, stored ``values``, RGB ``colors``), the
    stored values that are not scored (``ignore_values``) and the train-id pairs a flip swaps."""

    names: tuple[str, ...]
    values: tuple[int, ...]
    colors: tuple[tuple[int, int, int], ...]
    ignore_values: tuple[int, ...] = (IGNORE_INDEX,)
    flip_pairs: tuple[tuple[int, int], ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def lut(self, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
        """256-entry uint8 table: ``lut[label value]`` is the train id (``ignore_index`` if not scored)."""
        if not 0 <= ignore_index <= 255 or ignore_index < self.num_classes:
            raise ValueError(f"ignore_index must be in [{self.num_classes}, 255], got {ignore_index}")
        lut = np.full(256, ignore_index, dtype=np.uint8)
        lut[list(self.values)] = np.arange(self.num_classes, dtype=np.uint8)
        return lut

    def known_values(self) -> np.ndarray:
        """(256,) bool: the label values a label file may hold."""
        known = np.zeros(256, dtype=bool)
        known[list(self.values) + list(self.ignore_values)] = True
        return known

    def unknown_values(self, label: np.ndarray) -> list[int]:
        """The values in ``label`` that this table does not know (sorted; empty when all are known)."""
        known = self.known_values()
        top = int(label.max()) if label.size else 0
        if known[: top + 1].all():  # fast path: every value up to the maximum is known
            return []
        present = np.flatnonzero(np.bincount(label.ravel(), minlength=256))
        return [int(v) for v in present if not known[v]]

    def values_problem(self, label: np.ndarray) -> str | None:
        """Why ``label`` holds values outside this table, or None."""
        bad = self.unknown_values(label)
        return f"label values {bad} are not in the class table" if bad else None

    def to_values(self) -> np.ndarray:
        """256-entry uint8 table: train id -> stored label value (others: the first ignore value)."""
        out = np.full(256, self.ignore_values[0] if self.ignore_values else 0, dtype=np.uint8)
        out[: self.num_classes] = self.values
        return out

    def palette(self) -> np.ndarray:
        """(256, 3) uint8 RGB: train id -> colour (ignore and unknown ids black)."""
        out = np.zeros((256, 3), dtype=np.uint8)
        out[: self.num_classes] = self.colors
        return out

    def flip_permutation(self) -> list[int]:
        """Train ids in the order a horizontally flipped prediction's channels must be read."""
        perm = list(range(self.num_classes))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def flip_lut(self, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
        """256-entry uint8 table taking a train-id label to that of the mirrored image."""
        lut = np.arange(256, dtype=np.uint8)
        lut[: self.num_classes] = self.flip_permutation()
        return lut

    def describe(self) -> str:
        """A short description for messages: the class count and the first names."""
        shown = ", ".join(self.names[:4]) + (", ..." if self.num_classes > 4 else "")
        return f"{self.num_classes} classes: {shown}"

    def to_dict(self) -> dict[str, Any]:
        """The table as stored in indexes, checkpoints and package.json."""
        return {
            "names": list(self.names),
            "values": list(self.values),
            "colors": [list(c) for c in self.colors],
            "ignore_values": list(self.ignore_values),
            "flip_pairs": [list(p) for p in self.flip_pairs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassTable:
        return cls(
            tuple(data["names"]),
            tuple(int(v) for v in data["values"]),
            tuple((int(r), int(g), int(b)) for r, g, b in data["colors"]),
            tuple(int(v) for v in data["ignore_values"]),
            tuple((int(a), int(b)) for a, b in data["flip_pairs"]),
        )


def _fail(source: str | Path, field: str, expected: str) -> DataError:
    return DataError(f"{source}: {field}: expected {expected}")


def _value(source: str | Path, field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise _fail(source, field, f"a label value in 0..255, got {value!r}")
    return value


def parse_classes(data: Any, source: str | Path) -> ClassTable:
    """A :class:`ClassTable` from the mapping of a classes.yaml; errors are one line naming
    ``source`` and the field."""
    if not isinstance(data, dict):
        raise _fail(source, "top level", "a mapping with a 'classes' list")
    unknown = sorted(set(data) - {"ignore", "classes", "flip_pairs"})
    if unknown:
        raise _fail(source, unknown[0], "only the fields ignore, classes, flip_pairs")
    ignore = data.get("ignore", IGNORE_INDEX)
    ignore_list = ignore if isinstance(ignore, list) else [ignore]
    ignore_values = tuple(_value(source, "ignore", v) for v in ignore_list)
    classes = data.get("classes")
    if not isinstance(classes, list) or not classes:
        raise _fail(source, "classes", "a non-empty list of {name, value, color}")
    if len(classes) > IGNORE_INDEX:
        raise _fail(source, "classes", f"at most {IGNORE_INDEX} classes, got {len(classes)}")
    names, values, colors = [], [], []
    for i, entry in enumerate(classes):
        field = f"classes[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"name", "value", "color"}:
            raise _fail(source, field, "a mapping with name, value and optional color")
        name = entry.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise _fail(source, f"{field}.name", f"a non-empty name used once, got {name!r}")
        value = _value(source, f"{field}.value", entry.get("value"))
        if value in values or value in ignore_values:
            raise _fail(source, f"{field}.value", f"a value no other class or ignore uses, got {value}")
        color = entry.get("color", list(voc_color(value)))
        if (
            not isinstance(color, list)
            or len(color) != 3
            or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)
        ):
            raise _fail(source, f"{field}.color", f"[r, g, b] in 0..255, got {color!r}")
        names.append(name)
        values.append(value)
        colors.append((color[0], color[1], color[2]))
    pairs = []
    for i, pair in enumerate(data.get("flip_pairs") or []):
        field = f"flip_pairs[{i}]"
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(p in names for p in pair)
            or pair[0] == pair[1]
        ):
            raise _fail(source, field, f"two different class names of 'classes', got {pair!r}")
        pairs.append((names.index(pair[0]), names.index(pair[1])))
    if len({i for pair in pairs for i in pair}) != 2 * len(pairs):
        raise _fail(source, "flip_pairs", "each class in at most one pair")
    return ClassTable(tuple(names), tuple(values), tuple(colors), ignore_values, tuple(pairs))


def read_classes_yaml(path: str | Path) -> ClassTable:
    """The class table a ``classes.yaml`` describes; a missing or bad file raises one line."""
    from hrnet.io import read_yaml

    path = Path(path)
    return parse_classes(read_yaml(path, "class table not found (expected a classes.yaml)"), path)


def builtin_table(name: str) -> ClassTable:
    """The class table of a built-in layout: ``cityscapes``, ``pascal_context`` or ``lip``."""
    if name == "cityscapes":
        return cityscapes_table()
    return read_classes_yaml(_BUILTIN_DIR / f"{name}.yaml")


def cityscapes_table() -> ClassTable:
    """The 19 evaluated Cityscapes classes from ``cityscapesscripts``; every other label id of its
    table (void classes, train id 255 or -1) is stored but not scored."""
    from cityscapesscripts.helpers.labels import labels

    scored = sorted((lb for lb in labels if 0 <= lb.trainId < 255), key=lambda lb: lb.trainId)
    ignored = tuple(lb.id for lb in labels if lb.id >= 0 and not 0 <= lb.trainId < 255)
    return ClassTable(
        tuple(lb.name for lb in scored),
        tuple(lb.id for lb in scored),
        tuple(tuple(lb.color) for lb in scored),  # type: ignore[misc]
        ignored,
    )
