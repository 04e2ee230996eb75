"""The LIP (Look Into Person) layout (20 classes, background scored)::

    root/TrainVal_images/<split>_images/<id>.jpg
    root/TrainVal_parsing_annotations/<split>_segmentations/<id>.png   (label values 0..19)
    root/TrainVal_images/<split>_id.txt                                (one id a line)

The class table, with the left/right pairs a flip swaps, is ``hrnet/data/class_tables/lip.yaml``.
"""

from __future__ import annotations

from pathlib import Path

from hrnet.data.formats.seg_pairs import SplitListing, listed_pairs, read_id_list
from hrnet.data.layouts import DataLayout

LAYOUT = DataLayout(
    "lip",
    "TrainVal_images/<split>_images/<id>.jpg, TrainVal_parsing_annotations/<split>_segmentations/<id>.png "
    "and TrainVal_images/<split>_id.txt",
)


def list_split(root: Path, split: str) -> SplitListing:
    list_file = root / "TrainVal_images" / f"{split}_id.txt"
    return listed_pairs(
        read_id_list(list_file),
        lambda i: root / "TrainVal_images" / f"{split}_images" / f"{i}.jpg",
        lambda i: root / "TrainVal_parsing_annotations" / f"{split}_segmentations" / f"{i}.png",
        list_file,
    )
