"""Synthetic embedded datasets, byte-identical for a given seed.

``coco_keypoints`` (people, COCO person keypoints), ``coco_instances`` (eight object classes,
COCO instances) and ``cityscapes`` (street scenes, Cityscapes layout) each have a ``main`` CLI
(``python -m hrnet.data.synthetic.<module> --help``). They share ``canvas`` (drawing, colours,
noise), ``writer`` (atomic COCO json, JPEG and PNG output) and ``cli`` (the common options).
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use: importing the generators here would make ``python -m`` warn that the
# module it runs is already in sys.modules.
_EXPORTS = {
    "generate_cityscapes": "cityscapes",
    "render_scene": "cityscapes",
    "generate_coco_detection": "coco_instances",
    "generate_coco_keypoints": "coco_keypoints",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
