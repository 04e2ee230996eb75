"""Each stage's DVC deps cover exactly the project code it runs, and the resume fingerprint hashes
the train stage's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, copy_project, imported_modules, project_env, tiny_params

from pipeline.common import TRAIN_CODE

STAGES = ("synthesize", "prepare", "train", "evaluate", "package")
# Imported by the task modules (hrnet/tasks/<task>/stages.py) for the later stages, never run by the data
# stages: a change there cannot change generated or prepared data, so they are not its deps.
MODEL_CODE = ("hrnet/__init__.py", "hrnet/models", "hrnet/tasks", "hrnet/codecs", "hrnet/evaluation",
              "hrnet/viz.py", "pipeline/__init__.py")  # fmt: skip


def stage_deps(stage: str) -> list[str]:
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return [dep for dep in pipeline[stage]["deps"] if dep.startswith(("hrnet", "pipeline"))]


def module_file(project: Path, module: str) -> str:
    path = project / Path(*module.split("."))
    return (
        (path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).relative_to(project).as_posix()
    )


def covered(file: str, deps: list[str]) -> bool:
    return any(file == dep or file.startswith(dep.rstrip("/") + "/") for dep in deps)


def test_the_train_fingerprint_hashes_what_the_train_stage_depends_on():
    assert stage_deps("train") == list(TRAIN_CODE)
    sweep = yaml.safe_load((ROOT / "sweep" / "dvc.yaml").read_text())["stages"]["tune"]["do"]["deps"]
    assert set(TRAIN_CODE) <= set(sweep)


@pytest.mark.slow
def test_every_module_a_stage_imports_is_one_of_its_deps(tmp_path):
    project = copy_project(tmp_path / "project")
    params = tiny_params(train={"epochs": 1, "num_workers": 0, "limit_train_batches": 1})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in STAGES:
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", f"pipeline.{stage}"],
            cwd=project, env=project_env(), capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        imported = {m for m in imported_modules(result.stderr) if m.split(".")[0] in ("hrnet", "pipeline")}
        files = sorted(module_file(project, module) for module in imported)
        deps = stage_deps(stage)
        if stage in ("synthesize", "prepare"):
            deps = [*deps, *MODEL_CODE]
        missing = [file for file in files if not covered(file, deps)]
        assert not missing, f"{stage} runs {missing} but dvc.yaml does not list them as deps"
        assert not any(f.startswith("hrnet/benchmarks") for f in files)
        if stage != "package":
            assert "hrnet/package.py" not in files
