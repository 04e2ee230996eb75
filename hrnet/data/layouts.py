"""The on-disk dataset layouts that ``data.source`` names, a registry readable without torch: each
layout is described in the module that reads it (``hrnet/data/formats/<name>.py``, its ``LAYOUT``),
and a task lists the layouts it reads (``Task.sources``). A layout of another package registers
through the ``hrnet.layouts`` entry-point group."""

from __future__ import annotations

from dataclasses import dataclass

from hrnet.registry import Registry


@dataclass(frozen=True)
class DataLayout:
    """A dataset format on disk: its name (a ``data.source`` value) and the folder it expects at
    ``data.root`` (for messages and the README)."""

    name: str
    expects: str


LAYOUTS: Registry[DataLayout] = Registry("data layout", group="hrnet.layouts")
LAYOUTS.register("coco", "hrnet.data.formats.coco:LAYOUT")
LAYOUTS.register("cityscapes", "hrnet.data.formats.cityscapes:LAYOUT")
LAYOUTS.register("pascal_context", "hrnet.data.formats.pascal_context:LAYOUT")
LAYOUTS.register("lip", "hrnet.data.formats.lip:LAYOUT")
LAYOUTS.register("folder", "hrnet.data.formats.folder:LAYOUT")
