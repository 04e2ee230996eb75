"""Semantic segmentation: label PNGs in one of the layouts of ``sources``, mIoU out (the task contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrnet.tasks.base import ModularTask, SearchDefaults, SearchDimension
from hrnet.tasks.segmentation.config import (
    SegmentationConfig,
    SegmentationTestConfig,
    SyntheticSegmentationConfig,
)


class SegmentationTask(ModularTask):
    name = "segmentation"
    prepare_module = "hrnet.tasks.segmentation.prepare"
    stages_module = "hrnet.tasks.segmentation.stages"
    inference_module = "hrnet.tasks.segmentation.inference"
    module_path = "hrnet.tasks.segmentation.module:SegmentationModule"
    synthetic_path = "hrnet.data.synthetic.seg_layouts:generate_segmentation"
    metric = "mIoU"
    default_head = "v2"
    synthetic_layouts = ("cityscapes", "pascal_context", "lip", "folder")
    sources = ("cityscapes", "pascal_context", "lip", "folder")
    config = SegmentationConfig
    test_config = SegmentationTestConfig
    synthetic_config = SyntheticSegmentationConfig
    moved_keys = {
        "eval_mode": ("evaluate.segmentation.mode", "a test-time setting"),
        "eval_scales": ("evaluate.segmentation.scales", "a test-time setting"),
        "eval_flip": ("evaluate.segmentation.flip", "a test-time setting"),
    }
    search = SearchDefaults(
        "val/mIoU",
        "max",
        (
            SearchDimension("segmentation.lr", "loguniform", 0.01, 0.1),
            SearchDimension("segmentation.weight_decay", "loguniform", 1e-5, 1e-3),
        ),
    )

    def check_inputs(
        self, params: Any, prepared_dir: Path, model: Any, count: int, split: str = "val"
    ) -> Any:
        from hrnet.tasks.dense import first_inputs

        # the program's input size: segmentation validates on whole images, not crops
        return first_inputs(self, params, prepared_dir, count, params.segmentation.crop_size, split)

    def configure_test(self, module: Any, params: Any) -> None:
        module.configure_test(params.evaluate.segmentation, params.segmentation.crop_size)

    def run_name(self, params: Any) -> str:
        width, height = params.segmentation.crop_size
        return f"_{height}x{width}"


TASK = SegmentationTask()
