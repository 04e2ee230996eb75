"""A task of another installed package runs through the whole pipeline and ``hrnet predict``: the toy
task of tests/fixtures/toy_task, installed into a temporary virtualenv beside this project's, registers
through the ``hrnet.tasks`` entry-point group, and no code file of the project changes."""

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, project_env, tiny_project

pytestmark = pytest.mark.slow

TOY = ROOT / "tests" / "fixtures" / "toy_task"


def _venv(path: Path) -> Path:
    """A virtualenv that sees this interpreter's packages (the project, torch, DVC) through a .pth
    file, as a second install on the same machine would, plus the toy task installed by pip."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    (purelib,) = path.glob("lib/python*/site-packages")
    (purelib / "project.pth").write_text(f"import site; site.addsitedir({site.getsitepackages()[0]!r})\n")
    python = path / "bin" / "python"
    source = shutil.copytree(TOY, path.parent / "toy_task")  # pip builds in place: not in the checkout
    pip = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, str(source)], check=True, capture_output=True)
    return python


@pytest.mark.timeout(1200)
def test_a_task_of_another_package_runs_every_stage_and_predict(tmp_path):
    python = _venv(tmp_path / "venv")
    project = tiny_project(tmp_path / "project", commit=True)
    env = {**project_env(), "PATH": f"{python.parent}{os.pathsep}{project_env()['PATH']}"}
    code_before = subprocess.run(
        ["git", "ls-files", "-s"], cwd=project, capture_output=True, text=True
    ).stdout

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(python), *args], cwd=project, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    run(
        "-m", "dvc", "exp", "run", "-S", "task=toy", "-S", "+toy.lr=0.01", "-S", "+evaluate.toy.min_score=0.0"
    )
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert metrics["task"] == "toy" and 0 <= metrics["accuracy"] <= 1 and "baseline_majority" in metrics
    (package,) = (project / "dist").iterdir()
    meta = json.loads((package / "package.json").read_text())
    assert meta["task"] == "toy" and meta["classes"] == ["red", "green", "blue"] and meta["check"]
    out = tmp_path / "out"
    images = project / "data" / "synthetic" / "images" / "val"
    run("-m", "hrnet.cli", "predict", "--package", str(package), str(images), "--out", str(out))
    results = json.loads((out / "results.json").read_text())
    assert len(results) == len(list(images.iterdir())) and {r["colour"] for r in results} <= set(
        meta["classes"]
    )
    assert (out / "0000.png").is_file()
    # the code is the project's as it was: only params.yaml and dvc.lock changed
    code_after = subprocess.run(["git", "ls-files", "-s"], cwd=project, capture_output=True, text=True).stdout
    assert code_after == code_before
    changed = subprocess.run(["git", "diff", "--name-only"], cwd=project, capture_output=True, text=True)
    assert set(changed.stdout.split()) <= {"params.yaml", "dvc.lock"}
