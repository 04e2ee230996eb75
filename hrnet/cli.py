"""The ``hrnet`` console command: ``summary``, ``predict``, ``bench`` and ``bench-data``.

Each command's module is imported only when that command runs (``hrnet predict`` must not pay for
the benchmark or training code).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from hrnet.errors import InputError, UserError
from hrnet.process import run_program

COMMANDS = ("summary", "predict", "bench", "bench-data")


def _predict(args: argparse.Namespace) -> int:
    import json

    from hrnet.package import load_package, task_inference

    meta_file = args.package / "package.json"
    if meta_file.is_file():  # a missing input is said before the slow load
        inference = task_inference(json.loads(meta_file.read_text()).get("task", ""))
        inference.check_options(None, {"boxes": args.boxes, "detector": args.detector})
    package = load_package(args.package, batch_size=args.batch_size)
    detector = load_package(args.detector, batch_size=args.batch_size) if args.detector else None
    if detector is not None and not detector.inference.gives_boxes:
        raise InputError(
            f"{args.detector}: --detector needs a detection package, this one is {detector.task}"
        )
    summary = package.predict_files(
        args.input,
        args.out,
        boxes=args.boxes,
        detector=detector,
        threshold=args.threshold,
        box_threshold=args.box_threshold,
        on_bad_image=args.on_bad_image,
    )
    skipped = f", {len(summary['skipped'])} skipped (listed in skipped.json)" if summary["skipped"] else ""
    print(
        f"{summary['images']} image(s), {summary['instances']} result(s) -> {args.out}/results.json{skipped}"
    )
    return 0


def _add_predict(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict",
        help="run a packaged model on an image, a folder of images or a video",
        description="Writes drawn pictures (or a drawn video) and results.json (COCO results) to --out.",
    )
    predict.add_argument("--package", required=True, type=Path, help="a dist/<model-name> folder")
    predict.add_argument("input", type=Path, help="an image, a folder of images or a video file")
    predict.add_argument("--out", required=True, type=Path, help="output folder (replaced)")
    predict.add_argument(
        "--boxes",
        type=Path,
        help='pose: person boxes, JSON [[x, y, w, h], ...] (one image) or {"<file name>": [...]} (folder)',
    )
    predict.add_argument("--detector", type=Path, help="pose: a detection package that finds the people")
    predict.add_argument("--batch-size", type=int, default=8, help="crops or images per forward pass")
    predict.add_argument("--threshold", type=float, default=0.2, help="joint (pose) or box score to draw")
    predict.add_argument(
        "--box-threshold", type=float, default=0.5, help="with --detector: person boxes scoring at least this"
    )
    predict.add_argument(
        "--on-bad-image",
        choices=("skip", "fail"),
        help="an image that does not decode: skip it, naming it on stderr and in OUTDIR/skipped.json "
        "(default for a folder or video), or stop with exit code 2 and write nothing (default for one image)",
    )
    predict.set_defaults(run=_predict)


def _add_module_command(commands: argparse._SubParsersAction, name: str) -> None:
    if name == "summary":
        from hrnet.models import summary as module

        help_text = "parameters and multiply-accumulates of a model"
    elif name == "bench":
        from hrnet.benchmarks import throughput as module

        help_text = "train/inference throughput and memory of a model, next to timm's HRNet"
    else:
        from hrnet.benchmarks import data_loading as module

        help_text = "samples/s of one data-loading worker (pose and segmentation)"
    sub = commands.add_parser(name, help=help_text, description=module.__doc__)
    module.add_arguments(sub)
    sub.set_defaults(run=module.run)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only`` just that command's sub-parser is built (and its module imported)."""
    parser = argparse.ArgumentParser(prog="hrnet", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS if only is None else (only,):
        if name == "predict":
            _add_predict(commands)
        else:
            _add_module_command(commands, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UserError as exc:  # one line, exit 2; any other error keeps its traceback
        print(f"hrnet {args.command}: error: {exc}", file=sys.stderr)
        return 2


def run() -> NoReturn:
    """The ``hrnet`` console script: :func:`main` in a process of its own (:mod:`hrnet.process`)."""
    run_program(main)


if __name__ == "__main__":
    run()
