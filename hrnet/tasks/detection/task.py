"""Object detection: COCO instances in, COCO box AP (a mask framework: segm AP too) out: the task contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrnet.tasks.base import ModularTask, SearchDefaults, SearchDimension
from hrnet.tasks.detection.config import DetectionConfig, DetectionTestConfig, SyntheticDetectionConfig


class DetectionTask(ModularTask):
    name = "detection"
    prepare_module = "hrnet.tasks.detection.prepare"
    stages_module = "hrnet.tasks.detection.stages"
    inference_module = "hrnet.tasks.detection.inference"
    module_path = "hrnet.tasks.detection.module:DetectionModule"
    synthetic_path = "hrnet.data.synthetic.coco_instances:generate_coco_detection"
    metric = "AP"
    default_head = "v2p"
    # Under deterministic mode torchvision swaps RoIAlign's CUDA kernel for a torch.compile'd Python
    # version: on an H200, 91 s of compilation, then 1.6x per step and 3.2x memory (RESULTS.md)
    deterministic_on_accelerators = False
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

    def check_inputs(
        self, params: Any, prepared_dir: Path, model: Any, count: int, split: str = "val"
    ) -> Any:
        from hrnet.tasks.detection.stages import check_inputs

        return check_inputs(params, prepared_dir, model, count, split)

    def configure_test(self, module: Any, params: Any) -> None:
        module.configure_test(params.evaluate.detection)

    def run_name(self, params: Any) -> str:
        return f"_{params.detection.min_size}"


TASK = DetectionTask()
