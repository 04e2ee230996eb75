"""The library stands on its own: `pip install .` pulls in no pipeline tool, and using it imports none."""

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


@pytest.mark.slow  # a fresh interpreter building three task models
def test_building_and_running_every_task_model_imports_no_pipeline_tool():
    code = """
import sys
import torch
import hrnet
from hrnet.tasks.pose import PoseEstimationModule
from hrnet.tasks.segmentation import SegmentationModule
from hrnet.tasks.detection import DetectionModule
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
