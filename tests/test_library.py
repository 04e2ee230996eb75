"""The library stands on its own: `pip install .` pulls in no pipeline tool, and using it imports none."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_ONLY = ("dvc", "dvclive", "ray", "pydantic")


def test_the_library_requires_no_pipeline_tool_and_the_pipeline_extra_adds_them():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {Requirement(r).name for r in project["dependencies"]}
    assert not core & set(PIPELINE_ONLY), core
    assert set(PIPELINE_ONLY) <= {Requirement(r).name for r in project["optional-dependencies"]["pipeline"]}
    assert "pipeline" in (ROOT / "scripts" / "install.sh").read_text()  # the README's commands install it


def _imported_packages(file: Path) -> set[str]:
    """Top-level packages of the absolute imports in ``file``, lazy ones inside functions included."""
    names = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_library_module_imports_a_pipeline_tool_or_the_pipeline():
    # the params schema (pydantic) is the pipeline's: it lives in pipeline/params, not under hrnet/
    forbidden = {*PIPELINE_ONLY, "pipeline"}
    found = {file: _imported_packages(file) & forbidden for file in sorted((ROOT / "hrnet").rglob("*.py"))}
    assert not {file.relative_to(ROOT).as_posix(): sorted(names) for file, names in found.items() if names}


@pytest.mark.slow  # a fresh interpreter building three task models
def test_building_and_running_every_task_model_imports_no_pipeline_tool():
    code = """
import sys
import torch
import hrnet
from hrnet.tasks.pose.module import PoseEstimationModule
from hrnet.tasks.segmentation.module import SegmentationModule
from hrnet.tasks.detection.module import DetectionModule
from hrnet.evaluation import oks_nms
import hrnet.data, hrnet.codecs, hrnet.evaluation.coco_keypoints, hrnet.evaluation.segmentation

hrnet.create_model("hrnet_w18_small", task="pose")(torch.zeros(1, 3, 64, 48))
SegmentationModule(num_classes=3)
DetectionModule(num_classes=3, min_size=64, max_size=64).eval()([torch.zeros(3, 64, 64)])
print(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:])))
"""
    done = subprocess.run(
        [sys.executable, "-c", code, *PIPELINE_ONLY], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
