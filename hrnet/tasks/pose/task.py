"""Top-down human pose: COCO keypoints in, COCO keypoint AP out (the task contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrnet.tasks.base import SearchDefaults, SearchDimension, Task
from hrnet.tasks.pose.config import PoseConfig, PoseTestConfig, SyntheticPoseConfig


class PoseTask(Task):
    name = "pose"
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

    def generate_synthetic(self, out_dir: Path, seed: int, config: Any) -> dict[str, Any]:
        from hrnet.data.synthetic.coco_keypoints import generate_coco_keypoints

        return generate_coco_keypoints(out_dir, seed=seed, **vars(config))

    def prepare(self, params: Any, out_dir: Path, issues: Any) -> None:
        from hrnet.tasks.pose.prepare import prepare

        prepare(params, out_dir, issues)

    def module_class(self) -> type:
        from hrnet.tasks.pose.module import PoseEstimationModule

        return PoseEstimationModule

    def build_module(self, params: Any, prepared_dir: Path) -> Any:
        from hrnet.tasks.pose.stages import build_module

        return build_module(params, prepared_dir)

    def build_datamodule(self, params: Any, prepared_dir: Path) -> Any:
        from hrnet.tasks.pose.stages import build_datamodule

        return build_datamodule(params, prepared_dir)

    def evaluate(self, module: Any, params: Any, prepared_dir: Path, out_dir: Path) -> dict[str, Any] | None:
        from hrnet.tasks.pose.stages import evaluate

        return evaluate(module, params, prepared_dir, out_dir)

    def package_meta(self, params: Any, prepared_dir: Path) -> dict[str, Any]:
        from hrnet.tasks.pose.stages import package_meta

        return package_meta(params, prepared_dir)

    def check_inputs(self, params: Any, prepared_dir: Path, model: Any, count: int) -> Any:
        from hrnet.tasks.dense import first_val_inputs

        return first_val_inputs(self, params, prepared_dir, count, params.pose.input_size)

    def configure_test(self, module: Any, params: Any) -> None:
        module.configure_test(params.evaluate.pose)

    def inference(self) -> Any:
        from hrnet.tasks.pose.inference import INFERENCE

        return INFERENCE

    def run_name(self, params: Any) -> str:
        width, height = params.pose.input_size
        return f"_{height}x{width}"


TASK = PoseTask()
