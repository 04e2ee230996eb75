"""``hrnet bench-data``: samples per second of ONE data-loading worker.

Both training pipelines run in this single process through the training ``DataLoader`` of the
DataModules (``epoch_loader``: shuffled ``EpochSampler``) with ``num_workers=0``, so the figure
includes batching / collation as a worker does it, on the
embedded synthetic data generated into a temporary folder:

* **pose**: ``TopDownPoseDataset`` in training mode at the chosen input size (default 256x192):
  JPEG decode of the whole image (default 640x480, COCO-like), half-body / scale / rotation / flip
  augmentation folded into one affine warp of the crop, MSRA Gaussian heatmap targets, RGB
  ImageNet normalisation to a float tensor.
* **segmentation**: ``CityscapesSegDataset`` in training mode on Cityscapes-sized scenes (default
  2048x1024 RGB PNG + 8-bit labelIds PNG): decode both, labelId -> trainId LUT, random scale
  (0.5-2.0 of ``base_size`` 2048) + crop (default 512x1024) + flip as one warp per array,
  normalisation to a float tensor and a uint8 label.

After a warm-up, ``--repeats`` timed passes of ``--samples`` samples each are made (cycling over
the generated files, with a new order and new augmentation draws each epoch); the median
samples/s is reported. The time to decode the files alone (``decode ms``) is measured
separately to show where the time goes. Torch and OpenCV are limited to ``--threads``
(default 1) threads, as one worker on one core.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shlex
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from hrnet.benchmarks.report import (
    RESULTS_DIR,
    align_rows,
    machine_info,
    make_report,
    progress_log,
    utc_now,
    write_and_print,
)
from hrnet.data.sampling import epoch_loader
from hrnet.errors import InputError


# ----------------------------------------------------------------------------- datasets
def pose_dataset(root: Path, args: argparse.Namespace) -> tuple[Dataset, list[str], dict[str, Any]]:
    from hrnet.codecs.heatmap import MSRAHeatmapCodec
    from hrnet.data.coco_reader import coco_layout, load_person_instances
    from hrnet.data.pose_dataset import TopDownPoseDataset
    from hrnet.data.synthetic.coco_keypoints import generate_coco_keypoints

    width, height = args.pose_image_size
    if not (root / "annotations").is_dir():
        generate_coco_keypoints(root, args.pose_images, 0, (width, height), seed=0, progress=False)
    ann_file, image_dir = coco_layout("synthetic", root, "train")
    records = load_person_instances(ann_file, image_dir)
    h, w = args.pose_input_size
    codec = MSRAHeatmapCodec((w, h), (w // 4, h // 4), sigma=2.0)
    dataset = TopDownPoseDataset(records, image_dir, (w, h), codec, train=True, seed=0)
    files = sorted({str(image_dir / r["image_file"]) for r in records})
    info = {
        "images": len(files),
        "instances": len(records),
        "image_size_wh": [width, height],
        "input_size_hw": [h, w],
        "heatmap_size_hw": [h // 4, w // 4],
        "mean_file_kib": round(sum(os.path.getsize(f) for f in files) / len(files) / 1024, 1),
    }
    return dataset, files, info


def segmentation_dataset(root: Path, args: argparse.Namespace) -> tuple[Dataset, list[str], dict[str, Any]]:
    from hrnet.data.formats.cityscapes import list_cityscapes_pairs
    from hrnet.data.segmentation_dataset import CityscapesSegDataset
    from hrnet.data.synthetic.cityscapes import generate_cityscapes

    width, height = args.seg_image_size
    if not (root / "leftImg8bit").is_dir():
        generate_cityscapes(root, args.seg_images, 0, (width, height), seed=0)
    pairs = list_cityscapes_pairs(root, "train")
    if args.seg_png_level is not None:  # what a one-off transcoding of the dataset would give
        import cv2

        for image_path, _ in pairs:
            image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
            ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, args.seg_png_level])
            if not ok:
                raise InputError(f"{image_path}: cannot re-encode")
            Path(image_path).write_bytes(buf.tobytes())
    ch, cw = args.seg_crop_size
    dataset = CityscapesSegDataset(
        pairs,
        train=True,
        crop_size=(cw, ch),
        base_size=max(width, height),
        scale_range=tuple(args.seg_scale_range),
    )
    files = [str(p) for pair in pairs for p in pair]
    info = {
        "images": len(pairs),
        "image_size_wh": [width, height],
        "crop_size_hw": [ch, cw],
        "base_size": max(width, height),
        "scale_range": list(args.seg_scale_range),
        "png_level": 1 if args.seg_png_level is None else args.seg_png_level,
        "png_decoder": png_decoder(),
        "mean_image_kib": round(sum(os.path.getsize(p[0]) for p in pairs) / len(pairs) / 1024, 1),
        "mean_label_kib": round(sum(os.path.getsize(p[1]) for p in pairs) / len(pairs) / 1024, 1),
    }
    return dataset, files, info


def png_decoder() -> str:
    """Which library decodes the RGB frames (see ``hrnet.data.images.read_image``)."""
    from hrnet.data import images

    if images.pyspng is not None:
        return f"pyspng {getattr(images.pyspng, '__version__', '')}".strip()
    import cv2

    return f"opencv {cv2.__version__}"


BUILDERS: dict[str, Callable[[Path, argparse.Namespace], tuple[Dataset, list[str], dict[str, Any]]]] = {
    "pose": pose_dataset,
    "segmentation": segmentation_dataset,
}


# ----------------------------------------------------------------------------- timing
def _batches(loader: DataLoader, first_epoch: int) -> Iterator[dict]:
    """Batches over successive epochs (new order and new augmentation draws each epoch)."""
    for epoch in itertools.count(first_epoch):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        yield from loader


def time_samples(loader: DataLoader, samples: int, first_epoch: int = 0) -> tuple[float, int]:
    """Seconds to draw at least ``samples`` samples from ``loader`` (and how many were drawn)."""
    drawn = 0
    batches = _batches(loader, first_epoch)
    t0 = time.perf_counter()
    while drawn < samples:
        batch = next(batches)
        drawn += int(batch["image"].shape[0])
    return time.perf_counter() - t0, drawn


def decode_ms(task: str, files: list[str], rounds: int = 3) -> float:
    """Median milliseconds to decode one sample's files (image, and label for segmentation)."""
    from hrnet.data import cityscapes
    from hrnet.data.images import read_image

    if task == "pose":
        per_sample = [[f] for f in files]
        readers: list[Callable[[str], Any]] = [partial(read_image, rgb=False)]
    else:
        per_sample = [files[i : i + 2] for i in range(0, len(files), 2)]
        readers = [read_image, cityscapes.read_label_ids]
    times = []
    for _ in range(rounds):
        for group in per_sample:
            t0 = time.perf_counter()
            for reader, path in zip(readers, group, strict=True):
                reader(path)
            times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def bench_task(task: str, root: Path, args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    t0 = time.perf_counter()
    dataset, files, info = BUILDERS[task](root, args)
    info["setup_seconds"] = round(time.perf_counter() - t0, 2)
    # The loader the DataModules use for training (EpochSampler, shuffled), in this process.
    loader = epoch_loader(dataset, args.batch_size, train=True, seed=0, num_workers=0)
    samples = args.samples or (args.pose_samples if task == "pose" else args.seg_samples)
    if args.warmup:
        time_samples(loader, args.warmup)
    rates = []
    for r in range(args.repeats):
        seconds, drawn = time_samples(loader, samples, first_epoch=1000 * (r + 1))
        rates.append(drawn / seconds)
        log(f"  {task} repeat {r + 1}/{args.repeats}: {rates[-1]:.1f} samples/s")
    rate = statistics.median(rates)
    target = args.pose_target if task == "pose" else args.seg_target
    return {
        **info,
        "samples_per_repeat": samples,
        "samples_per_s": round(rate, 2),
        "samples_per_s_min": round(min(rates), 2),
        "samples_per_s_max": round(max(rates), 2),
        "ms_per_sample": round(1000.0 / rate, 3),
        "decode_ms_per_sample": round(decode_ms(task, files), 3),
        "repeat_samples_per_s": [round(v, 2) for v in rates],
        "target_samples_per_s": target,
        "meets_target": rate >= target,
    }


def canonical_command(args: argparse.Namespace) -> str:
    parts = [
        "hrnet", "bench-data", "--tasks", *args.tasks,
        "--batch-size", str(args.batch_size), "--threads", str(args.threads),
        "--warmup", str(args.warmup), "--repeats", str(args.repeats),
        "--pose-images", str(args.pose_images),
        "--pose-image-size", *map(str, args.pose_image_size),
        "--pose-input-size", *map(str, args.pose_input_size),
        "--pose-samples", str(args.pose_samples),
        "--seg-images", str(args.seg_images),
        "--seg-image-size", *map(str, args.seg_image_size),
        "--seg-crop-size", *map(str, args.seg_crop_size),
        "--seg-scale-range", *map(str, args.seg_scale_range),
        "--seg-samples", str(args.seg_samples),
    ]  # fmt: skip
    if args.seg_png_level is not None:
        parts += ["--seg-png-level", str(args.seg_png_level)]
    if args.seg_png_decoder != "auto":
        parts += ["--seg-png-decoder", args.seg_png_decoder]
    if args.samples:
        parts += ["--samples", str(args.samples)]
    if args.data_dir:
        parts += ["--data-dir", str(args.data_dir)]
    if args.out:
        parts += ["--out", str(args.out)]
    return shlex.join(parts)


@contextlib.contextmanager
def _attribute(owner: Any, name: str, value: Any) -> Iterator[None]:
    previous = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, previous)


def benchmark(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    import cv2

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    started = utc_now()
    machine = {**machine_info(), "opencv_threads": cv2.getNumThreads(), "opencv": cv2.__version__}
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if args.seg_png_decoder == "opencv":
            from hrnet.data import images

            stack.enter_context(_attribute(images, "pyspng", None))
        base = args.data_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="hrnet-bench-data-"))
        )
        for task in args.tasks:
            log(f"{task}: generating / loading synthetic data under {base / task}")
            results[task] = bench_task(task, Path(base) / task, args, log)
    return make_report(
        "hrnet bench-data",
        canonical_command(args),
        started,
        machine,
        config={
            "workers": "1 (epoch_loader / DataLoader num_workers=0, this process)",
            "batch_size": args.batch_size,
            "threads": args.threads,
            "warmup_samples": args.warmup,
            "repeats": args.repeats,
        },
        results=results,
    )


def format_table(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"one worker (num_workers=0, {m['torch_threads']} torch / {m['opencv_threads']} OpenCV thread(s)) on "
        f"{m['cpu']}, batch {report['config']['batch_size']}, median of {report['config']['repeats']}",
    ]
    header = ("pipeline", "source", "output", "samples/s", "ms/sample", "decode ms", "target", "met")
    rows = [header]
    for task, r in report["results"].items():
        if task == "pose":
            source = "JPEG {}x{}".format(*r["image_size_wh"])
            output = "{}x{} + heatmaps {}x{}".format(*r["input_size_hw"], *r["heatmap_size_hw"])
        else:
            source = "PNG {}x{} (zlib {}, {}) + label".format(*r["image_size_wh"], r["png_level"],
                                                                r.get("png_decoder", "opencv"))  # fmt: skip
            output = "crop {}x{}".format(*r["crop_size_hw"])
        rows.append((task, source, output, f"{r['samples_per_s']:.1f}", f"{r['ms_per_sample']:.2f}",
                     f"{r['decode_ms_per_sample']:.2f}", f">= {r['target_samples_per_s']:g}",
                     "yes" if r["meets_target"] else "NO"))  # fmt: skip
    return "\n".join(lines + align_rows(rows, left_columns=3))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hrnet bench-data``."""
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--tasks", nargs="+", default=list(BUILDERS), choices=list(BUILDERS))
    parser.add_argument("--batch-size", type=int, default=8, help="DataLoader batch (collation included)")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    parser.add_argument("--warmup", type=int, default=8, help="untimed samples per pipeline")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--samples", type=int, default=0, help="samples per repeat for every task (0: per task)"
    )
    parser.add_argument("--pose-images", type=int, default=24, help="synthetic JPEGs to generate")
    parser.add_argument("--pose-image-size", nargs=2, type=int, default=(640, 480), metavar=("W", "H"))
    parser.add_argument("--pose-input-size", nargs=2, type=int, default=(256, 192), metavar=("H", "W"))
    parser.add_argument("--pose-samples", type=int, default=200, help="pose samples per repeat")
    parser.add_argument("--pose-target", type=float, default=150.0, help=argparse.SUPPRESS)
    parser.add_argument("--seg-images", type=int, default=4, help="synthetic scenes to generate")
    parser.add_argument("--seg-image-size", nargs=2, type=int, default=(2048, 1024), metavar=("W", "H"))
    parser.add_argument("--seg-crop-size", nargs=2, type=int, default=(512, 1024), metavar=("H", "W"))
    parser.add_argument("--seg-scale-range", nargs=2, type=float, default=(0.5, 2.0), metavar=("MIN", "MAX"))
    parser.add_argument("--seg-samples", type=int, default=24, help="segmentation samples per repeat")
    parser.add_argument(
        "--seg-png-level",
        type=int,
        default=None,
        choices=range(10),
        metavar="0-9",
        help="re-encode the generated RGB PNGs at this zlib level first (default: as generated, level 1)",
    )
    parser.add_argument(
        "--seg-png-decoder",
        default="auto",
        choices=["auto", "opencv"],
        help="auto: pyspng when installed (as training does), else OpenCV; opencv: OpenCV only",
    )
    parser.add_argument("--seg-target", type=float, default=20.0, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep / reuse the generated data here")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: benchmarks/results/)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")


def run(args: argparse.Namespace) -> int:
    """Run ``hrnet bench-data``; returns the process exit code."""
    if min(args.batch_size, args.repeats, args.threads, args.pose_images, args.seg_images) < 1:
        raise InputError("--batch-size, --repeats, --threads, --pose-images and --seg-images must be >= 1")
    report = benchmark(args, log=progress_log(args.json))
    out = args.out or RESULTS_DIR / "bench_data_{}.json".format("_".join(args.tasks))
    write_and_print(report, out, format_table, args.json)
    return 0
