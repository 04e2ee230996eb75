"""The ``hrnet`` console command: ``summary``, ``predict``, ``bench`` and ``bench-data``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def _read_boxes(path: Path) -> list[list[float]]:
    """Boxes as ``[[x, y, w, h], ...]`` or COCO-style ``[{"bbox": [...]}, ...]``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read boxes ({exc})") from None
    boxes = [item["bbox"] if isinstance(item, dict) else item for item in data]
    for i, box in enumerate(boxes):
        if len(box) != 4 or box[2] <= 0 or box[3] <= 0:
            raise ValueError(f"{path}: box {i} is {box}; expected [x, y, w, h] with w, h > 0")
    return [[float(v) for v in box] for box in boxes]


def _predict(args: argparse.Namespace) -> int:
    import cv2

    from hrnet.io import atomic_path
    from hrnet.package import load_package
    from hrnet.viz import draw_skeletons

    package = load_package(args.package)
    image_bgr = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
    if image_bgr is None:
        raise ValueError(f"{args.image}: not a readable image")
    image = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    boxes = _read_boxes(args.boxes) if args.boxes else None
    keypoints, scores = package.predict(image, boxes)
    drawn = draw_skeletons(image, keypoints, scores, args.threshold)
    with atomic_path(args.out) as tmp:
        ok, encoded = cv2.imencode(Path(args.out).suffix or ".png", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"{args.out}: unsupported image extension")
        tmp.write_bytes(encoded.tobytes())
    print(f"{len(keypoints)} person(s) drawn to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from hrnet.models import summary

    parser = argparse.ArgumentParser(prog="hrnet", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    summary_parser = commands.add_parser(
        "summary", help="parameters and multiply-accumulates of a model", description=summary.__doc__
    )
    summary.add_arguments(summary_parser)
    summary_parser.set_defaults(run=summary.run)

    predict = commands.add_parser("predict", help="draw predicted skeletons with a packaged model")
    predict.add_argument("--package", required=True, type=Path, help="a dist/<model-name> folder")
    predict.add_argument("image", type=Path)
    predict.add_argument("--boxes", type=Path, help="JSON list of [x, y, w, h] person boxes")
    predict.add_argument("--out", required=True, type=Path, help="output image (.png or .jpg)")
    predict.add_argument("--threshold", type=float, default=0.2, help="joint score to draw")
    predict.set_defaults(run=_predict)

    from hrnet.benchmarks import data_loading, throughput

    for name, module, help_text in (
        ("bench", throughput, "train/inference throughput and memory of a model, next to timm's HRNet"),
        ("bench-data", data_loading, "samples/s of one data-loading worker (pose and segmentation)"),
    ):
        sub = commands.add_parser(name, help=help_text)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from hrnet.package import PackageError

    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (PackageError, ValueError, FileNotFoundError) as exc:
        print(f"hrnet {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
