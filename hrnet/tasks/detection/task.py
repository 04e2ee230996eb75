"""Object detection: COCO instances in, COCO box AP out (the task contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrnet.tasks.base import SearchDefaults, SearchDimension, Task
from hrnet.tasks.detection.config import DetectionConfig, DetectionTestConfig, SyntheticDetectionConfig


class DetectionTask(Task):
    name = "detection"
    default_head = "v2p"
    sources = ("coco",)
    config = DetectionConfig
    test_config = DetectionTestConfig
    synthetic_config = SyntheticDetectionConfig
    moved_keys = {
        "pyramid_channels": ("model.pyramid_channels", "it serves every task"),
        "score_threshold": ("evaluate.detection.score_threshold", "a test-time setting"),
    }
    search = SearchDefaults(
        "val/AP",
        "max",
        (
            SearchDimension("detection.lr", "loguniform", 3e-4, 3e-3),
            SearchDimension("detection.anchor_scale", "choice", values=(3.0, 4.0, 6.0)),
        ),
    )

    def generate_synthetic(self, out_dir: Path, seed: int, config: Any) -> dict[str, Any]:
        from hrnet.data.synthetic.coco_instances import generate_coco_detection

        return generate_coco_detection(out_dir, seed=seed, **vars(config))

    def prepare(self, params: Any, out_dir: Path, issues: Any) -> None:
        from hrnet.tasks.detection.prepare import prepare

        prepare(params, out_dir, issues)

    def module_class(self) -> type:
        from hrnet.tasks.detection.module import DetectionModule

        return DetectionModule

    def build_module(self, params: Any, prepared_dir: Path) -> Any:
        from hrnet.tasks.detection.stages import build_module

        return build_module(params, prepared_dir)

    def build_datamodule(self, params: Any, prepared_dir: Path) -> Any:
        from hrnet.tasks.detection.stages import build_datamodule

        return build_datamodule(params, prepared_dir)

    def evaluate(self, module: Any, params: Any, prepared_dir: Path, out_dir: Path) -> dict[str, Any] | None:
        from hrnet.tasks.detection.stages import evaluate

        return evaluate(module, params, prepared_dir, out_dir)

    def package_meta(self, params: Any, prepared_dir: Path) -> dict[str, Any]:
        from hrnet.tasks.detection.stages import package_meta

        return package_meta(params, prepared_dir)

    def check_inputs(self, params: Any, prepared_dir: Path, model: Any, count: int) -> Any:
        from hrnet.tasks.detection.stages import check_inputs

        return check_inputs(params, prepared_dir, model, count)

    def configure_test(self, module: Any, params: Any) -> None:
        module.configure_test(params.evaluate.detection)

    def inference(self) -> Any:
        from hrnet.tasks.detection.inference import INFERENCE

        return INFERENCE

    def run_name(self, params: Any) -> str:
        return f"_{params.detection.min_size}"


TASK = DetectionTask()
