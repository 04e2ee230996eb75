"""Profile one training step of each task's default model on a device, to find why detection's
train stage took 4x the other tasks' on the H200 (benchmarks/RESULTS.md, "GPU").

Each case runs in its own process (deterministic mode and torch.compile caches are global): the
params.yaml defaults' model, batch and input size, an AdamW step, under bf16 autocast on CUDA as
``scripts/gpu_check.sh`` trains. Per case: the first step (compilation, cuDNN plans), the median of
the next steps, the host syncs of a step and the source lines that made them
(``torch.cuda.set_sync_debug_mode``), peak memory, and the profiler's costliest ops. Detection runs
with ``torch.use_deterministic_algorithms(True, warn_only=True)`` (what Lightning's
``deterministic="warn"`` sets) and without it.

    python scripts/profile_train_step.py --device cuda --out profile.json
    python scripts/profile_train_step.py --device cpu --threads 1 --steps 5 --cases detection_faster_rcnn

On CPU there is no autocast and no sync count; ``top_ops`` ranks the ops by self CPU time.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {
    "pose_v1": {"task": "pose", "deterministic": True},
    "segmentation_v2": {"task": "segmentation", "deterministic": True},
    "detection_faster_rcnn_deterministic": {"task": "detection", "deterministic": True},
    "detection_faster_rcnn": {"task": "detection", "deterministic": False},
}
for _name in ("fcos", "cascade_rcnn", "centernet", "mask_rcnn", "cascade_mask_rcnn", "htc"):
    CASES[f"detection_{_name}"] = {"task": "detection", "deterministic": False, "detector": _name}


def build(task: str, device, detector: str = "faster_rcnn"):  # noqa: ANN001, ANN201
    import torch

    from hrnet.models import create_model
    from hrnet.models.detection import build_detector, detector_produces_masks, small_settings

    g = torch.Generator().manual_seed(0)
    if task == "detection":  # params.yaml: w18-small v2p, 64-channel levels, 128 px, batch 8, 1-4 boxes
        model = build_detector(
            "hrnet_w18_small", "v2p", 4, detector, 128, 128, anchor_scale=4.0, pyramid_channels=64,
            **small_settings(detector),
        )  # fmt: skip
        images, targets = [], []
        for i in range(8):
            images.append(torch.rand(3, 128, 128, generator=g).to(device))
            n = 1 + i % 4
            corner = torch.rand(n, 2, generator=g) * 80
            boxes = torch.cat([corner, corner + 16 + torch.rand(n, 2, generator=g) * 30], 1)
            target = {"boxes": boxes.to(device), "labels": torch.randint(1, 5, (n,), generator=g).to(device)}
            if detector_produces_masks(detector):  # each box filled as its mask
                filled = torch.zeros(n, 128, 128, dtype=torch.uint8)
                for k, (x0, y0, x1, y1) in enumerate(boxes.round().int().tolist()):
                    filled[k, y0:y1, x0:x1] = 1
                target["masks"] = filled.to(device)
            targets.append(target)

        def loss_fn():  # noqa: ANN202
            return sum(model(images, targets).values())
    else:
        if task == "pose":  # 96x128 input, batch 32, 17 heatmaps at 1/4
            model = create_model("hrnet_w18_small", "pose", "v1", 17)
            x, target = torch.rand(32, 3, 128, 96, generator=g), torch.rand(32, 17, 32, 24, generator=g)
        else:  # 256x128 crops, batch 8, 19 classes at 1/4
            model = create_model("hrnet_w18_small", "segmentation", "v2", 19)
            x, target = (
                torch.rand(8, 3, 128, 256, generator=g),
                torch.randint(0, 19, (8, 32, 64), generator=g),
            )
        x, target = x.to(device), target.to(device)

        def loss_fn():  # noqa: ANN202
            out = model(x)
            if task == "pose":
                return torch.nn.functional.mse_loss(out.float(), target)
            return torch.nn.functional.cross_entropy(out.float(), target)

    model.to(device).train()
    return model, loss_fn


def run_case(name: str, device_name: str, steps: int, threads: int = 0) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    case = CASES[name]
    device = torch.device(device_name)
    if case["deterministic"]:
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(0)
    model, loss_fn = build(case["task"], device, case.get("detector", "faster_rcnn"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cuda = device.type == "cuda"

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def timed() -> float:
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    first = timed()
    times = [timed() for _ in range(steps)]
    syncs: collections.Counter[str] = collections.Counter()
    if cuda:
        torch.cuda.set_sync_debug_mode("warn")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step()
        torch.cuda.set_sync_debug_mode(0)
        for w in caught:
            if "synchroniz" in str(w.message):
                syncs[f"{Path(w.filename).parent.name}/{Path(w.filename).name}:{w.lineno}"] += 1
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step()
        if cuda:
            torch.cuda.synchronize()
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    averages = prof.key_averages()
    table = averages.table(sort_by=sort, row_limit=12, max_name_column_width=50)
    cpu_top = averages.table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=50)
    top_ops = _top_ops(averages, "self_device_time_total" if cuda else "self_cpu_time_total")
    outputs = {}
    if case["task"] == "detection":  # one eval pass: the detections' keys and shapes on this device
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            found = model([torch.rand(3, 96, 128, device=device)])[0]
        outputs = {key: list(value.shape) for key, value in found.items()}
        model.train()
    return {
        "case": name,
        "eval_outputs": outputs,
        "task": case["task"],
        "deterministic": case["deterministic"],
        "threads": torch.get_num_threads(),
        "first_step_s": round(first, 3),
        "step_ms_median": round(1000 * statistics.median(times), 2),
        "step_ms_all": [round(1000 * t, 2) for t in times],
        "host_syncs_per_step": sum(syncs.values()),
        "sync_sources": syncs.most_common(15),
        "peak_mib": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
        "top_ops": top_ops,
        "profile_by_device_time": table,
        "profile_by_cpu_time": cpu_top,
    }


def _top_ops(averages, attribute: str, count: int = 8) -> list[dict]:  # noqa: ANN001
    """The ``count`` ops with the most self time (``attribute``), each with its share of the total."""
    total = sum(getattr(event, attribute) for event in averages) or 1.0
    ranked = sorted(averages, key=lambda event: -getattr(event, attribute))[:count]
    return [
        {
            "op": event.key,
            "self_ms": round(getattr(event, attribute) / 1000, 2),
            "share": round(getattr(event, attribute) / total, 3),
        }
        for event in ranked
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--case", help=argparse.SUPPRESS)  # the child process's one case
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.device, args.steps, args.threads)))
        return 0
    rows = []
    for name in args.cases:
        command = [
            sys.executable,
            __file__,
            "--case",
            name,
            "--device",
            args.device,
            "--steps",
            str(args.steps),
            "--threads",
            str(args.threads),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            rows.append({"case": name, "error": done.stderr.strip().splitlines()[-1:]})
        else:
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = rows[-1]
        print(json.dumps({k: v for k, v in row.items() if not k.startswith("profile")}), flush=True)
    print(f"\n{'case':<40}{'first s':>9}{'step ms':>10}{'syncs':>7}{'peak MiB':>10}  costliest op (share)")
    for row in rows:
        top = row.get("top_ops") or [{"op": "-", "share": 0.0}]
        print(
            f"{row['case']:<40}{row.get('first_step_s', '-'):>9}{row.get('step_ms_median', '-'):>10}"
            f"{row.get('host_syncs_per_step', '-'):>7}{row.get('peak_mib') or '-':>10}"
            f"  {top[0]['op']} ({top[0]['share']:.0%})"
        )
    for row in rows:
        if "profile_by_device_time" in row:
            print(f"\n== {row['case']}\n{row['profile_by_device_time']}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
