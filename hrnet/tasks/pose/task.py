"""Top-down human pose: COCO keypoints in, COCO keypoint AP out (the task contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrnet.tasks.base import ModularTask, SearchDefaults, SearchDimension
from hrnet.tasks.pose.config import PoseConfig, PoseTestConfig, SyntheticPoseConfig


class PoseTask(ModularTask):
    name = "pose"
    prepare_module = "hrnet.tasks.pose.prepare"
    stages_module = "hrnet.tasks.pose.stages"
    inference_module = "hrnet.tasks.pose.inference"
    module_path = "hrnet.tasks.pose.module:PoseEstimationModule"
    synthetic_path = "hrnet.data.synthetic.coco_keypoints:generate_coco_keypoints"
    metric = "AP"
    default_head = "v1"
    sources = ("coco",)
    config = PoseConfig
    test_config = PoseTestConfig
    synthetic_config = SyntheticPoseConfig
    # keypoint AP, not val/loss: the sweep varies pose.sigma, and an MSE against Gaussians of other
    # widths does not compare
    moved_keys = {
        "flip_test": ("evaluate.pose.flip_test", "a test-time setting"),
        "shift_heatmap": ("evaluate.pose.shift_heatmap", "a test-time setting"),
        "keypoint_score_threshold": ("evaluate.pose.keypoint_score_threshold", "a test-time setting"),
    }
    search = SearchDefaults(
        "val/AP",
        "max",
        (
            SearchDimension("pose.lr", "loguniform", 3e-4, 3e-3),
            SearchDimension("pose.weight_decay", "loguniform", 1e-6, 1e-3),
            SearchDimension("pose.sigma", "uniform", 1.5, 3.0),
            SearchDimension("pose.batch_size", "choice", values=(16, 32)),
        ),
    )

    def check_inputs(
        self, params: Any, prepared_dir: Path, model: Any, count: int, split: str = "val"
    ) -> Any:
        from hrnet.tasks.dense import first_inputs

        return first_inputs(self, params, prepared_dir, count, params.pose.input_size, split)

    def configure_test(self, module: Any, params: Any) -> None:
        module.configure_test(params.evaluate.pose)

    def run_name(self, params: Any) -> str:
        width, height = params.pose.input_size
        return f"_{height}x{width}"


TASK = PoseTask()
