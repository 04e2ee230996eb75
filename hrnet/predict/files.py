"""``hrnet predict``: an image, a folder of images or a video in; drawings and results.json out.

OUTDIR receives one drawn picture per image (``<name>``; segmentation: ``<stem>_overlay.png`` and
``<stem>_labelIds.png``, Cityscapes label ids as the evaluate stage writes them) or one drawn video
(``<stem>.mp4``), plus ``results.json`` in the COCO results format: keypoints (pose), segments as
RLE with ``category_id`` the Cityscapes label id (segmentation) or boxes (detection). ``image_id``
counts the images predicted in sorted name order (videos: the frames) and ``file_name`` names them.
OUTDIR is written in a temporary folder and moved into place at the end.

A broken or unreadable image in a folder (a frame of a video that does not decode) is skipped by
default (``on_bad_image="skip"``): its name goes to stderr in one line and into ``skipped.json``
beside ``results.json``, and the other images are predicted. ``on_bad_image="fail"`` (the default
for a single image) stops at it with one line and writes nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hrnet.data.images import read_image
from hrnet.errors import DataError, InputError, MissingFileError
from hrnet.io import atomic_directory
from hrnet.predict.inference import Package

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
ON_BAD_IMAGE = ("skip", "fail")
SKIPPED_FILE = "skipped.json"
MAX_BAD_FRAMES = 100  # consecutive undecodable frames after which a video counts as ended


def list_images(source: Path) -> list[Path]:
    if source.is_dir():
        images = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise InputError(f"{source}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
        return images
    if not source.is_file():
        raise MissingFileError(f"{source}: no such image, folder or video")
    if source.suffix.lower() not in IMAGE_SUFFIXES:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
        raise InputError(f"{source}: expected an image, a folder of images or a video ({kinds})")
    return [source]


def read_rgb(path: Path) -> np.ndarray:
    return read_image(path, exif_orientation=True)  # a user's photo, shown upright


def _box_list(path: Path, where: str, items: Any) -> list[list[float]]:
    if not isinstance(items, list):
        raise InputError(f"{path}: {where} is {items!r}; expected a list of [x, y, w, h] boxes")
    boxes = [item.get("bbox") if isinstance(item, dict) else item for item in items]
    for i, box in enumerate(boxes):
        if not isinstance(box, list) or len(box) != 4 or box[2] <= 0 or box[3] <= 0:
            raise InputError(f"{path}: {where} box {i} is {box}; expected [x, y, w, h] with w, h > 0")
    return [[float(v) for v in box] for box in boxes]


def read_boxes(path: Path, names: Sequence[str]) -> list[list[list[float]]]:
    """Boxes per image: a list ``[[x, y, w, h] or {"bbox": [...]}, ...]`` for a single image, or
    ``{"<image file name>": [...], ...}`` for a folder (images not named get no people)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read boxes ({exc})") from None
    if isinstance(data, dict):
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise InputError(f"{path}: boxes for {unknown[0]!r}, which is not among the input images")
        return [_box_list(path, name, data.get(name, [])) for name in names]
    if len(names) != 1:
        raise InputError(
            f'{path}: a plain box list serves one image; for a folder give {{"<file name>": [boxes]}}'
        )
    return [_box_list(path, "", data)]


class Frames:
    """Reads a video in batches of RGB frames; writes the drawn frames to an mp4 of the same rate."""

    def __init__(self, path: Path, skipped: Skipped | None = None) -> None:
        self.path, self.skipped, self.index = path, skipped, 0
        self.capture = cv2.VideoCapture(str(path))
        if not self.capture.isOpened():
            raise InputError(f"{path}: not a readable video")
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 25.0
        self.count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None

    def batches(self, size: int) -> Iterator[tuple[list[np.ndarray], list[int]]]:
        """Batches of RGB frames and their indices in the video."""
        while True:
            batch, indices = [], []
            while len(batch) < size:
                frame = self._read()
                if frame is None:
                    break
                batch.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                indices.append(self.index - 1)
            if not batch:
                self.capture.release()
                return
            yield batch, indices

    def _read(self) -> np.ndarray | None:
        """The next decodable frame; None at the end. Failed reads followed by a good frame were
        bad frames: skipped (named) or, with no ``skipped``, an error; failed reads up to
        ``MAX_BAD_FRAMES`` with no good frame after them are the end (a container's frame count
        is only an estimate, so it does not decide)."""
        for failed in range(MAX_BAD_FRAMES):
            ok, frame = self.capture.read()
            self.index += 1
            if ok:
                bad = range(self.index - 1 - failed, self.index - 1)
                if bad and self.skipped is None:
                    raise DataError(f"{self.path}: frame {bad[0]} does not decode")
                for index in bad:
                    self.skipped.add(f"{self.path.name}#{index}", "frame does not decode")
                return frame
        return None


class Skipped:
    """The inputs skipped as unreadable: each named in one line on stderr as it is met."""

    def __init__(self) -> None:
        self.files: list[dict[str, str]] = []

    def add(self, name: str, reason: str) -> None:
        from tqdm import tqdm

        self.files.append({"file": name, "error": reason})
        tqdm.write(f"hrnet predict: skipped {name}: {reason}", file=sys.stderr)  # clears the bar first


def _read_batch(paths: Sequence[Path], skipped: Skipped | None) -> tuple[list[np.ndarray], list[int]]:
    """The images of ``paths`` that decode and their positions; a bad one raises without ``skipped``."""
    images, kept = [], []
    for i, path in enumerate(paths):
        try:
            images.append(read_rgb(path))
        except DataError as exc:
            if skipped is None:
                raise
            skipped.add(path.name, str(exc).removeprefix(f"{path}: "))
            continue
        kept.append(i)
    return images, kept


def _progress(total: int | None, enabled: bool, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit=unit, desc="predict", leave=False)


def predict_files(
    package: Package,
    source: str | Path,
    out_dir: str | Path,
    boxes: str | Path | None = None,
    detector: Package | None = None,
    threshold: float = 0.2,
    box_threshold: float = 0.5,
    progress: bool | None = None,
    on_bad_image: str | None = None,
) -> dict[str, Any]:
    """Runs ``package`` on ``source`` and writes OUTDIR; returns ``{"images": n, "instances": m,
    "skipped": [{"file": name, "error": why}, ...]}``.

    ``threshold``: joint score to draw (pose) or box score to draw (detection); ``box_threshold``:
    the detector's person boxes kept for pose. ``on_bad_image``: ``"skip"`` or ``"fail"``; by
    default skip for a folder or video, fail for a single image.
    """
    from hrnet.predict.draw import Drawer

    source, out_dir = Path(source), Path(out_dir)
    package.inference.check_options(package, {"boxes": boxes, "detector": detector})
    video = source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES
    if video and boxes is not None:
        raise InputError(f"{boxes}: --boxes serves images; for a video give --detector DIR")
    if on_bad_image is None:
        on_bad_image = "skip" if video or source.is_dir() else "fail"
    if on_bad_image not in ON_BAD_IMAGE:
        raise InputError(f"on_bad_image={on_bad_image!r}: expected one of {', '.join(ON_BAD_IMAGE)}")
    skipped = Skipped() if on_bad_image == "skip" else None
    with atomic_directory(out_dir) as tmp:
        drawer = Drawer(package, tmp, threshold)
        if video:
            frames = Frames(source, skipped)
            writer = None
            with _progress(frames.count, progress is not False, "frame") as bar:
                for batch, indices in frames.batches(package.batch_size):
                    names = [f"{source.name}#{i}" for i in indices]
                    drawn = drawer.run(batch, names, None, detector, box_threshold, write=False)
                    if writer is None:
                        writer = _video_writer(tmp / f"{source.stem}.mp4", frames.fps, batch[0].shape)
                    for image in drawn:
                        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                    bar.update(len(batch))
            if writer is not None:
                writer.release()
        else:
            paths = list_images(source)
            per_image = read_boxes(Path(boxes), [p.name for p in paths]) if boxes is not None else None
            show = progress if progress is not None else len(paths) > 1
            with _progress(len(paths), show, "image") as bar:
                for start in range(0, len(paths), package.batch_size):
                    part = paths[start : start + package.batch_size]
                    part_boxes = None if per_image is None else per_image[start : start + len(part)]
                    images, kept = _read_batch(part, skipped)
                    if images:
                        names = [part[i].name for i in kept]
                        good_boxes = None if part_boxes is None else [part_boxes[i] for i in kept]
                        drawer.run(images, names, good_boxes, detector, box_threshold, write=True)
                    bar.update(len(part))
            if not drawer.next_id:
                raise DataError(f"{source}: none of its {len(paths)} images could be read")
        (tmp / "results.json").write_text(json.dumps(drawer.results) + "\n")
        files = skipped.files if skipped is not None else []
        if files:
            (tmp / SKIPPED_FILE).write_text(json.dumps(files, indent=2) + "\n")
    return {"images": drawer.next_id, "instances": len(drawer.results), "skipped": files}


def _video_writer(path: Path, fps: float, shape: tuple[int, ...]) -> cv2.VideoWriter:
    height, width = shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise InputError(f"{path}: OpenCV cannot write mp4 video here")
    return writer
