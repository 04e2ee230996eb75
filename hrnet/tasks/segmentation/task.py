"""Semantic segmentation: Cityscapes-layout labels in, mIoU out (the task contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrnet.tasks.base import SearchDefaults, SearchDimension, Task
from hrnet.tasks.segmentation.config import (
    SegmentationConfig,
    SegmentationTestConfig,
    SyntheticSegmentationConfig,
)


class SegmentationTask(Task):
    name = "segmentation"
    default_head = "v2"
    sources = ("cityscapes",)
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

    def generate_synthetic(self, out_dir: Path, seed: int, config: Any) -> dict[str, Any]:
        from hrnet.data.synthetic.cityscapes import generate_cityscapes

        return generate_cityscapes(out_dir, seed=seed, **vars(config))

    def prepare(self, params: Any, out_dir: Path, issues: Any) -> None:
        from hrnet.tasks.segmentation.prepare import prepare

        prepare(params, out_dir, issues)

    def module_class(self) -> type:
        from hrnet.tasks.segmentation.module import SegmentationModule

        return SegmentationModule

    def build_module(self, params: Any, prepared_dir: Path) -> Any:
        from hrnet.tasks.segmentation.stages import build_module

        return build_module(params, prepared_dir)

    def build_datamodule(self, params: Any, prepared_dir: Path) -> Any:
        from hrnet.tasks.segmentation.stages import build_datamodule

        return build_datamodule(params, prepared_dir)

    def evaluate(self, module: Any, params: Any, prepared_dir: Path, out_dir: Path) -> dict[str, Any] | None:
        from hrnet.tasks.segmentation.stages import evaluate

        return evaluate(module, params, prepared_dir, out_dir)

    def package_meta(self, params: Any, prepared_dir: Path) -> dict[str, Any]:
        from hrnet.tasks.segmentation.stages import package_meta

        return package_meta(params, prepared_dir)

    def check_inputs(self, params: Any, prepared_dir: Path, model: Any, count: int) -> Any:
        from hrnet.tasks.dense import first_val_inputs

        # the program's input size: segmentation validates on whole images, not crops
        return first_val_inputs(self, params, prepared_dir, count, params.segmentation.crop_size)

    def configure_test(self, module: Any, params: Any) -> None:
        module.configure_test(params.evaluate.segmentation, params.segmentation.crop_size)

    def inference(self) -> Any:
        from hrnet.tasks.segmentation.inference import INFERENCE

        return INFERENCE

    def run_name(self, params: Any) -> str:
        width, height = params.segmentation.crop_size
        return f"_{height}x{width}"


TASK = SegmentationTask()
