"""Checks that image files can be read: present, not empty, not truncated, decodable, of the stated size."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from hrnet.data.images import truncated_jpeg
from hrnet.data.issues import IssueLog

K = TypeVar("K", int, str)


def check_image_file(path: Path, width: int | None = None, height: int | None = None) -> str | None:
    """Why the image at ``path`` is unusable (one line ending in ``(expected ...)``), or None."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return "image file not found (expected the file named by file_name in the split's image folder)"
    except OSError as exc:
        return f"cannot read the image file ({exc.strerror}) (expected a readable JPEG or PNG file)"
    if not data:
        return "image file is empty (expected a JPEG or PNG image)"
    if truncated_jpeg(data):  # the rule read_image applies
        return "truncated JPEG: no end-of-image marker (expected a complete JPEG ending in FF D9)"
    # A 1/8-scale decode still entropy-decodes the whole file but skips most of the IDCT work.
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if decoded is None or decoded.size == 0:
        return "not a decodable image (expected a JPEG or PNG that OpenCV can read)"
    if width is not None and height is not None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                actual = image.size
        except (UnidentifiedImageError, OSError, ValueError):
            return None  # OpenCV reads it but PIL does not know the format: no size check
        if actual != (width, height):
            return (
                f"image is {actual[0]}x{actual[1]} pixels "
                f"(expected {width}x{height} as stated in the annotation file)"
            )
    return None


def _workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def _image_record(key: Any) -> tuple[str, int | None]:
    return f"image {key}", key


def check_images(
    files: Mapping[K, str],
    image_dir: Path,
    sizes: Mapping[K, tuple[int, int]],
    split: str,
    issues: IssueLog,
    *,
    progress: bool = True,
    record: Callable[[K], tuple[str, int | None]] = _image_record,
) -> set[K]:
    """Checks each image ``files[key]`` (under ``image_dir``) once; returns the keys of the bad ones.

    ``sizes`` maps a key to the (width, height) the annotations state (no entry: no size check);
    ``record`` names a key's record in the issue log (COCO: key = image id, ``"image <id>"``).
    """
    todo = sorted(files.items())

    def check(item: tuple[K, str]) -> str | None:
        key, name = item
        return check_image_file(image_dir / name, *sizes.get(key, (None, None)))

    bad: set[K] = set()
    pool = ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="check-images")
    try:
        results = pool.map(check, todo)
        with tqdm(total=len(todo), desc=f"checking {split} images", unit="img", disable=not progress) as bar:
            for (key, name), problem in zip(todo, results):
                bar.update()
                if problem:
                    name_of_record, record_id = record(key)
                    issues.add(split, image_dir / name, name_of_record, problem, record_id)
                    bad.add(key)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return bad
