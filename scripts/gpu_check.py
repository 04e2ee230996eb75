"""Body of scripts/gpu_check.sh: train (DDP, all devices) + evaluate every task x head on tiny
synthetic data through the pipeline's own stage commands, then `hrnet bench`; one table."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hrnet.models.registries import NECKS  # noqa: E402  (light: no torch)

TASKS = ("pose", "segmentation", "detection")
METRIC = {"pose": "AP", "segmentation": "mIoU", "detection": "AP"}
TINY = {
    "data": {
        "synthetic": {
            "pose": {"num_train_images": 64, "num_val_images": 16},
            "segmentation": {"num_train_images": 32, "num_val_images": 8},
            "detection": {"num_train_images": 64, "num_val_images": 16},
        }
    },
    "train": {"epochs": 1, "limit_train_batches": 4},
}


def merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        base[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


# Outputs and environments never travel into a case's copy (used where git is not installed).
NOT_COPIED = (
    ".git", ".venv", ".dvc/cache", ".dvc/tmp", ".whl", ".pytest_cache", ".ruff_cache",
    "data", "models", "reports", "dvclive",
)  # fmt: skip


def project_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, check=True, capture_output=True,
        ).stdout.decode().split("\0")  # fmt: skip
        return [name for name in listed if name and not name.startswith(("reports/", "dvclive/"))]
    except (OSError, subprocess.CalledProcessError):  # no git, or not a checkout
        return [
            path.relative_to(ROOT).as_posix()
            for path in ROOT.rglob("*")
            if path.is_file()
            and not any(path.relative_to(ROOT).as_posix().startswith(f"{skip}/") for skip in NOT_COPIED)
            and "__pycache__" not in path.parts
        ]


def copy_project(dest: Path) -> None:
    for name in project_files():
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)


def run_case(task: str, head: str, args: argparse.Namespace, work: Path) -> dict:
    project = work / f"{task}_{head}"
    copy_project(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    trainer = {"accelerator": args.accelerator, "devices": args.devices, "precision": args.precision}
    merge(
        params, merge(json.loads(json.dumps(TINY)), {"task": task, "model": {"head": head}, "train": trainer})
    )
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    row = {"task": task, "head": head, "status": "ok"}
    start = time.monotonic()
    for stage in ("synthesize", "prepare", "train", "evaluate"):
        begun = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", f"pipeline.{stage}"], cwd=project, capture_output=True, text=True
        )
        row[f"{stage}_s"] = round(time.monotonic() - begun, 1)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["?"]
            row.update(status=f"{stage} failed", error=tail[0][:300])
            (work / f"{task}_{head}.{stage}.log").write_text(result.stdout + result.stderr)
            break
    row["total_s"] = round(time.monotonic() - start, 1)
    if row["status"] == "ok":
        row["metric"] = (
            f"{METRIC[task]} {json.loads((project / 'reports/metrics.json').read_text())[METRIC[task]]:.4f}"
        )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accelerator", default="gpu")
    parser.add_argument("--devices", default="-1", help="per node; -1: all")
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--heads", nargs="+", default=list(NECKS.names()), choices=NECKS.names())
    parser.add_argument("--no-bench", action="store_true")
    parser.add_argument("--work", help="keep each case's project and failure logs here (default: a temp dir)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_check.json"))
    args = parser.parse_args()
    args.devices = int(args.devices) if args.devices.lstrip("-").isdigit() else args.devices
    rows = []
    with contextlib.ExitStack() as stack:
        tmp = args.work or stack.enter_context(tempfile.TemporaryDirectory(prefix="gpu_check."))
        Path(tmp).mkdir(parents=True, exist_ok=True)
        for task in args.tasks:
            for head in args.heads:
                rows.append(run_case(task, head, args, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
        bench = None
        if not args.no_bench:
            report = Path(tmp) / "bench.json"
            device = "cuda" if args.accelerator in ("gpu", "cuda") else "cpu"
            command = [sys.executable, "-m", "hrnet.cli", "bench", "--device", device, "--out", str(report)]
            if args.precision == "bf16-mixed":
                command += ["--precision", "bf16-mixed"]
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            bench = {
                "returncode": result.returncode,
                "table": result.stdout[-4000:],
                "stderr": result.stderr[-2000:],
            }
    env = {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES",)}
    try:
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        env["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception as exc:  # the table is still worth printing
        env["torch_error"] = str(exc)
    print(f"\n{'task':<13}{'head':<6}{'status':<20}{'train s':>9}{'eval s':>9}  metric")
    for row in rows:
        print(
            f"{row['task']:<13}{row['head']:<6}{row['status']:<20}{row.get('train_s', '-'):>9}"
            f"{row.get('evaluate_s', '-'):>9}  {row.get('metric', row.get('error', ''))}"
        )
    if bench is not None:
        print("\nhrnet bench:\n" + bench["table"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.tmp")
    tmp_out.write_text(
        json.dumps({"argv": sys.argv, "environment": env, "runs": rows, "bench": bench}, indent=2)
    )
    os.replace(tmp_out, out)
    return (
        0 if all(row["status"] == "ok" for row in rows) and (bench is None or bench["returncode"] == 0) else 1
    )


if __name__ == "__main__":
    sys.exit(main())
