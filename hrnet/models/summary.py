"""Parameter and multiply-add counts, and the ``hrnet summary`` command.

MACs are counted with :class:`torch.utils.flop_counter.FlopCounterMode` over every convolution
and matrix multiplication of one forward pass (MACs = FLOPs / 2). The model is built and run on
the ``meta`` device, so no memory is allocated and no arithmetic is done.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from .configs import VARIANT_CHOICES
from .factory import create_model, dense_tasks
from .registries import NECKS, TASK_MODELS

PAPER_NOTE = (
    "The count covers the whole network: every convolution and matrix multiplication, including all "
    "fusion layers, transitions and the task head. It therefore differs from the paper's figures "
    "(e.g. 7.1G for pose W32 and 14.6G for W48 at 256x192, versus about 7.65G and 15.69G here) "
    "because the paper's counter left part of the network out."
)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: torch.nn.Module, input_size: tuple[int, int], device: str = "meta") -> int:
    """Multiply-adds of one forward pass of ``model`` on a (1, 3, H, W) input."""
    model.eval()
    x = torch.zeros(1, 3, *input_size, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops() // 2


def summarize(
    name: str,
    task: str = "pose",
    head: str = "v1",
    input_size: tuple[int, int] = (256, 192),
    num_outputs: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Parameters and MACs of ``create_model(name, task, head, num_outputs, **options)`` at ``input_size``.

    ``input_size`` is (H, W); ``options`` are create_model's architecture options (``fusion``,
    ``fusion_downsample``, ``fusion_op``, ``streams``, ``pyramid_channels``, ...).
    """
    if task not in dense_tasks():
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(dense_tasks())}")
    outputs = TASK_MODELS.get(task).default_outputs if num_outputs is None else num_outputs
    height, width = (int(v) for v in input_size)
    with torch.device("meta"):
        model = create_model(name, task=task, head=head, num_outputs=outputs, **options)
    params = count_parameters(model)
    macs = count_macs(model, (height, width))
    return {
        "model": name,
        "task": task,
        "head": head,
        "input_size": [height, width],
        "num_outputs": outputs,
        "variant": model.backbone.config.variant or "official",
        "params": params,
        "params_m": round(params / 1e6, 2),
        "macs": macs,
        "gmacs": round(macs / 1e9, 2),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hrnet summary``."""
    parser.description = "Print the parameter count and multiply-adds (MACs) of an HRNet model. " + PAPER_NOTE
    parser.add_argument("--model", default="hrnet_w32", help="variant name (see list_models())")
    parser.add_argument("--task", default="pose", choices=dense_tasks())
    parser.add_argument("--head", default="v1", choices=NECKS.names(), help="representation head")
    parser.add_argument(
        "--input-size",
        nargs=2,
        type=int,
        default=(256, 192),
        metavar=("H", "W"),
        help="input height and width",
    )
    parser.add_argument(
        "--num-outputs",
        type=int,
        default=None,
        help="keypoints / classes (default: 17 pose, 19 segmentation)",
    )
    for option, choices in VARIANT_CHOICES.items():
        parser.add_argument(
            f"--{option.replace('_', '-')}",
            default=choices[0],
            choices=choices,
            help=f"default: {choices[0]}",
        )
    parser.add_argument(
        "--pyramid-channels", type=int, default=256, help="V2p width (default: 256, the paper)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def format_table(info: dict[str, Any]) -> str:
    rows = [
        ("model", info["model"]),
        ("task / head", f"{info['task']} / {info['head']}"),
        ("architecture", info.get("variant", "official")),
        ("input (H x W)", "{} x {}".format(*info["input_size"])),
        ("outputs", str(info["num_outputs"])),
        ("parameters", f"{info['params']:,} ({info['params'] / 1e6:.1f}M)"),
        ("multiply-adds", f"{info['macs']:,} ({info['macs'] / 1e9:.2f}G)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def run(args: argparse.Namespace) -> int:
    """Run ``hrnet summary``; returns the process exit code."""
    try:
        info = summarize(
            args.model,
            task=args.task,
            head=args.head,
            input_size=tuple(args.input_size),
            num_outputs=args.num_outputs,
            pyramid_channels=args.pyramid_channels,
            **{option: getattr(args, option) for option in VARIANT_CHOICES},
        )
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    print(json.dumps(info, indent=2) if args.json else format_table(info))
    return 0
