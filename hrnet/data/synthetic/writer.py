"""Writes synthetic datasets: COCO splits (JPEG images + one annotation json) and PNG files.

Everything goes through ``hrnet.io``'s atomic helpers, so an interrupted run leaves either the
previous complete split or the new one, never a half-written file or image folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from hrnet.io import atomic_directory, atomic_path, atomic_write_json, atomic_write_text

SPLITS = {"train": 0, "val": 1}
VAL_ID_OFFSET = 1_000_000
LICENSES = [{"id": 1, "name": "CC0 1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}]
Render = Callable[[np.random.Generator], tuple[np.ndarray, list[dict]]]


def encode(path: Path, array: np.ndarray, params: list[int]) -> bytes:
    """``array`` encoded in the format of ``path``'s suffix; ``RuntimeError`` naming ``path`` if not."""
    ok, buf = cv2.imencode(path.suffix, array, params)
    if not ok:
        raise RuntimeError(f"{path}: could not encode {path.suffix}")
    return buf.tobytes()


def write_png(path: Path, array: np.ndarray) -> None:
    data = encode(path, array, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _write_coco_json(path: Path, payload: dict, compact: bool) -> None:
    """``compact``: no spaces and no final newline; else ``json.dumps``' default separators + newline."""
    if compact:
        atomic_write_text(path, json.dumps(payload, separators=(",", ":")))
    else:
        atomic_write_json(path, payload, indent=None)


@dataclass(frozen=True)
class CocoSplit:
    """What a COCO generator writes for one split besides its images."""

    ann_file: str  # under root/annotations, with ``{split}`` standing for the split name
    description: str
    contributor: str  # recorded in ``info``; the generator's former module name, kept for byte identity
    categories: list[dict]
    compact_json: bool
    image_fields: dict = field(default_factory=dict)  # extra keys of each ``images`` entry


def write_coco_split(
    root: Path,
    split: str,
    count: int,
    seed: int,
    render: Render,
    spec: CocoSplit,
    jpeg_quality: int,
    progress: bool = False,
) -> list[dict]:
    """Writes ``root/images/<split>/<id:012d>.jpg`` and the split's annotation json.

    Image ``index`` of the split draws from ``default_rng([seed, SPLITS[split], index])``; ids are
    ``index + 1`` (train) or ``VAL_ID_OFFSET + index + 1`` (val), annotation ids ``image_id * 100 + j``.
    Returns the json's ``annotations``.
    """
    offset = 0 if split == "train" else VAL_ID_OFFSET
    images: list[dict] = []
    annotations: list[dict] = []
    with atomic_directory(root / "images" / split) as image_dir:
        for index in tqdm(range(count), desc=f"synthetic {split}", disable=not progress, unit="img"):
            image, anns = render(np.random.default_rng([seed, SPLITS[split], index]))
            image_id = offset + index + 1
            file_name = f"{image_id:012d}.jpg"
            jpeg = encode(
                root / "images" / split / file_name, image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
            )
            (image_dir / file_name).write_bytes(jpeg)
            h, w = image.shape[:2]
            images.append(
                {"id": image_id, "file_name": file_name, "width": w, "height": h, **spec.image_fields}
            )
            for j, ann in enumerate(anns):
                annotations.append({"id": image_id * 100 + j + 1, "image_id": image_id, **ann})
    info = {"description": spec.description, "version": "1.0", "year": 2024, "contributor": spec.contributor,
            "seed": seed}  # fmt: skip
    payload = {"info": info, "licenses": LICENSES, "images": images, "annotations": annotations,
               "categories": spec.categories}  # fmt: skip
    _write_coco_json(root / "annotations" / spec.ann_file.format(split=split), payload, spec.compact_json)
    return annotations


def write_coco_dataset(
    root: Path,
    counts: dict[str, int],
    seed: int,
    render: Render,
    spec: CocoSplit,
    jpeg_quality: int,
    split_summary: Callable[[int, list[dict]], dict],
    progress: bool = False,
) -> dict:
    """``write_coco_split`` for each ``split: count`` of ``counts``; returns the summary per split."""
    summary: dict = {}
    for split, count in counts.items():
        annotations = write_coco_split(root, split, count, seed, render, spec, jpeg_quality, progress)
        summary[split] = split_summary(count, annotations)
    return summary
