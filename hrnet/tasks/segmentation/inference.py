"""Segmentation packages predict what the evaluate stage predicted: the image resized so that its
long side is the package's ``base_size`` (as the val dataset does), normalised plane by plane, then
:func:`~hrnet.evaluation.segmentation.predict_multiscale` with the package's ``scales``, ``flip``
and sliding window (``mode``, windows of ``input_size``), resized back with the model's
``align_corners``. The program takes any height and width above 32 px (torch.export guards smaller
ones); a smaller side is zero-padded (the mean colour) to 64 px and the logits cropped back."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hrnet.data.images import normalise_planes
from hrnet.predict.export import check_record, export_graph, fold_batchnorm, max_abs_diff, run_onnx
from hrnet.predict.inference import (
    ONNX_FILE,
    PROGRAM_FILE,
    DenseInference,
    Package,
    enforce_check,
    unknown_format,
)
from hrnet.predict.runtime import TorchRunner

SMALLEST = 33  # the exported program's smallest height and width (the backbone's coarsest stride + 1)
PADDED = 64  # what a smaller side is padded to


def any_size() -> dict[int, Any]:
    """Dynamic batch, height and width of an exported segmentation network."""
    return {
        0: torch.export.Dim("batch", min=1, max=4096),
        2: torch.export.Dim("height", min=SMALLEST, max=8192),
        3: torch.export.Dim("width", min=SMALLEST, max=8192),
    }


# what a package that does not record its test-time settings (written before they were) predicts with
TEST_TIME_DEFAULTS = {
    "base_size": None, "mode": "whole", "scales": [1.0], "flip": False, "align_corners": False,
    "num_classes": 19,
}  # fmt: skip


class PaddedRunner:
    """The packaged network on any image size, and its ``align_corners`` for predict_multiscale."""

    def __init__(self, runner: Any, align_corners: bool) -> None:
        self.runner, self.align_corners = runner, align_corners

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        pad_h, pad_w = (
            max(PADDED - height, 0) if height < SMALLEST else 0,
            max(PADDED - width, 0) if width < SMALLEST else 0,
        )
        if not pad_h and not pad_w:
            return torch.as_tensor(self.runner(images))
        logits = torch.as_tensor(self.runner(F.pad(images, (0, pad_w, 0, pad_h))))
        scale = logits.shape[-1] / (width + pad_w)
        return logits[..., : round(height * scale), : round(width * scale)]


def package_table(package: Package) -> Any:
    """The class table the package records (``meta.class_table``); packages from before it was
    recorded are Cityscapes'."""
    from hrnet.data.class_table import ClassTable, cityscapes_table

    data = package.meta.get("class_table")
    return ClassTable.from_dict(data) if data else cityscapes_table()


class SegmentationInference(DenseInference):
    title = "HRNet semantic segmentation (train ids of the package's class table)"
    fp32_outside_graph = ("logit upsampling, test-time scales and flips, argmax",)

    def export(
        self, tmp: Path, model: nn.Module, meta: dict[str, Any], fmt: str, images: Any, tolerance: float
    ) -> dict[str, Any]:
        folded = fold_batchnorm(model).eval()
        width, height = meta["input_size"]
        example = torch.randn(2, 3, height, width)
        if fmt == "torch_export":
            program = torch.export.export(folded, (example,), dynamic_shapes=(any_size(),))
            torch.export.save(program, tmp / PROGRAM_FILE)
            fields: dict[str, Any] = {"program": PROGRAM_FILE, "runtime": "torch_export"}
            outputs = [TorchRunner(program.module())(images)] if images is not None else None
        elif fmt == "onnx":
            export_graph(folded, (example,), tmp / ONNX_FILE, (any_size(),))
            fields = {"program": ONNX_FILE, "runtime": "onnxruntime"}
            outputs = run_onnx(tmp / ONNX_FILE, images.numpy()) if images is not None else None
        else:
            raise unknown_format(fmt)
        if outputs is not None:
            diff = max_abs_diff(model, outputs, images)
            fields["check"] = check_record(
                diff, tolerance, images, f"{fields['runtime']} vs the PyTorch model"
            )
        enforce_check(fields, tolerance)
        return {**fields, "batchnorm_folded": True, "min_size": SMALLEST}

    def input_description(self, meta: dict[str, Any]) -> str:
        return (
            f"a batch (N, 3, H, W) of RGB images, H and W at least {SMALLEST}, scaled to [0, 1] and "
            "normalised with the ImageNet mean and std"
        )

    def model_call(self, meta: dict[str, Any]) -> str:
        return "logits = package.model(batch)                       # (N, C, H/4, W/4) train-id logits"

    def usage(self, meta: dict[str, Any]) -> str:
        return "train_ids = package.predict(image_rgb)  # (H, W) train ids of meta['class_table']"

    def predict(self, package: Package, images: Sequence[np.ndarray], **options: Any) -> list[np.ndarray]:
        """Per image: a (H, W) uint8 map of train ids at the image's own size."""
        from hrnet.evaluation.segmentation import predict_multiscale

        meta = {**TEST_TIME_DEFAULTS, **package.meta}  # packages from before these were recorded
        runner = PaddedRunner(package.model, bool(meta["align_corners"]))
        crop = tuple(meta["input_size"]) if meta["mode"] == "sliding" else None
        table = package_table(package)
        permutation = table.flip_permutation() if table.flip_pairs else None
        maps = []
        for image in images:
            height, width = image.shape[:2]
            resized = image
            base = meta.get("base_size")
            if base is not None and max(height, width) != base:
                s = base / max(height, width)
                size = (max(1, round(width * s)), max(1, round(height * s)))
                resized = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            with torch.inference_mode():
                probabilities = predict_multiscale(
                    runner, normalise_planes(resized)[None], scales=meta["scales"], flip=meta["flip"],
                    crop_size=crop, num_classes=int(meta["num_classes"]), flip_permutation=permutation,
                )  # fmt: skip
                full = F.interpolate(
                    probabilities, size=(height, width), mode="bilinear", align_corners=runner.align_corners
                )
            maps.append(full[0].argmax(0).to(torch.uint8).numpy())
        return maps

    def results(self, package: Package, prediction: Any, image_id: int, name: str) -> list[dict[str, Any]]:
        from hrnet.evaluation.segmentation import train_ids_to_label_ids
        from hrnet.predict.draw import rle_segments

        return rle_segments(train_ids_to_label_ids(prediction, package_table(package)), image_id, name)

    def draw(self, package: Package, image: np.ndarray, prediction: Any, threshold: float) -> np.ndarray:
        from hrnet.evaluation.segmentation import colorize

        return cv2.addWeighted(image, 0.5, colorize(prediction, package_table(package)), 0.5, 0.0)

    def write_extra(self, package: Package, out_dir: Path, name: str, prediction: Any) -> str | None:
        from hrnet.evaluation.segmentation import train_ids_to_label_ids

        stem = Path(name).stem
        values = train_ids_to_label_ids(prediction, package_table(package))
        cv2.imwrite(str(out_dir / f"{stem}_labelIds.png"), values)
        return f"{stem}_overlay.png"


INFERENCE = SegmentationInference()
