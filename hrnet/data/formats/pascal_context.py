"""The PASCAL-Context layout (59 classes, as the official HRNet code trains and scores it)::

    root/JPEGImages/<id>.jpg
    root/SegmentationClassContext/<id>.png          (label values 0..59; 0 = background, not scored)
    root/ImageSets/SegmentationContext/<split>.txt  (one id a line)

The class table is ``hrnet/data/class_tables/pascal_context.yaml``.
"""

from __future__ import annotations

from pathlib import Path

from hrnet.data.formats.seg_pairs import SplitListing, listed_pairs, read_id_list
from hrnet.data.layouts import DataLayout

LAYOUT = DataLayout(
    "pascal_context",
    "JPEGImages/<id>.jpg, SegmentationClassContext/<id>.png and ImageSets/SegmentationContext/<split>.txt",
)


def list_split(root: Path, split: str) -> SplitListing:
    list_file = root / "ImageSets" / "SegmentationContext" / f"{split}.txt"
    return listed_pairs(
        read_id_list(list_file),
        lambda i: root / "JPEGImages" / f"{i}.jpg",
        lambda i: root / "SegmentationClassContext" / f"{i}.png",
        list_file,
    )
