"""Detection packages: a torchvision detector as TorchScript (its NMS does not export), or with
``package.format: onnx`` the ONNX graphs of its networks decoded by torchvision's own code
(:mod:`hrnet.predict.onnx_detection`). Images of any size in, boxes in image pixels out.

A mask framework (its model class says ``produces_masks = True``: mask_rcnn, cascade_mask_rcnn, htc)
packages the same way; its package.json says ``produces_masks: true``, so predictions also carry
``masks`` (N, H, W) probabilities at the image's size (torchvision pastes them), results.json
carries them as COCO compressed RLE (``segmentation``) and the drawings fill them in."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hrnet.errors import PackageError
from hrnet.predict.export import check_record, fold_batchnorm
from hrnet.predict.export_detection import export_detector_onnx
from hrnet.predict.inference import (
    ONNX_FILE,
    SCRIPT_FILE,
    Package,
    TaskInference,
    chunks,
    enforce_check,
    unknown_format,
)


def script_detector(detector: nn.Module, input_size: tuple[int, int]) -> torch.jit.ScriptModule:
    """TorchScript of a torchvision detector whose ``backbone`` is traced (HRNet's loops don't script)."""
    width, height = input_size
    detector = copy.deepcopy(detector).eval()
    with torch.no_grad():
        detector.backbone = torch.jit.trace(detector.backbone, torch.rand(1, 3, height, width), strict=False)
    return torch.jit.script(detector)


@torch.no_grad()
def _largest_level_diff(backbone: nn.Module, traced: Any, images: torch.Tensor) -> float:
    """Largest absolute difference between two feature extractors' levels on ``images``."""
    expected, actual = backbone.eval()(images), traced(images)
    return max(float((expected[k] - actual[k]).abs().max()) for k in expected)


class DetectionsOnly(nn.Module):
    """A scripted torchvision detector returns ``(losses, detections)``; callers want detections."""

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.scripted = scripted

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return self.scripted(images)[1]


def produces_masks(model: nn.Module) -> bool:
    """Whether ``model`` is a mask framework (its class attribute, see hrnet.models.detectors.mask_rcnn)."""
    return bool(getattr(model, "produces_masks", False))


def predict_detection(
    detector: Any, images: Sequence[np.ndarray], batch_size: int = 8, masks: bool = False
) -> list[dict[str, Any]]:
    """Per image: ``boxes`` (M, 4) xyxy pixels, ``scores`` (M,), ``labels`` (M,) 1..C; with
    ``masks``, also ``masks`` (M, H, W) float32 probabilities at the image's own size.

    Only images of one size share a batch: torchvision pads a batch to its largest image, which
    would make an image's detections depend on its neighbours.
    """
    by_size: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_size.setdefault(image.shape, []).append(i)
    out: list[dict[str, Any]] = [{} for _ in images]
    for indices in by_size.values():
        for part in chunks(len(indices), batch_size):
            chosen = indices[part]
            tensors = [
                torch.from_numpy(np.ascontiguousarray(images[i])).permute(2, 0, 1) / 255.0 for i in chosen
            ]
            with torch.inference_mode():
                detections = detector(tensors)
            for i, d in zip(chosen, detections):
                keep = d["labels"] > 0  # class 0 is the background slot (see coco_boxes.foreground)
                out[i] = {k: d[k][keep].numpy() for k in ("boxes", "scores", "labels")}
                if masks:
                    height, width = images[i].shape[:2]
                    out[i]["masks"] = d["masks"][keep].reshape(-1, height, width).float().numpy()
    return out


MASK_OUTPUTS = (
    "boxes (xyxy, image pixels), labels, scores and masks ((N, 1, H, W) probabilities at the image's "
    "size; a pixel is in the instance at >= 0.5) per image (torchvision format)"
)


class DetectionInference(TaskInference):
    title = "HRNet-V2p detector"
    fp32_outside_graph = (
        "head.onnx",
        "box_head.onnx (the cascades: box_head_s0/s1/s2.onnx)",
        "mask_head.onnx (mask frameworks)",
        "anchors, box decoding, NMS, RoI pooling and mask pasting (torchvision), the cascades' stage "
        "loop and CenterNet's peak decoding (hrnet)",
    )
    bf16_refusal = "detection packages are TorchScript, not run under autocast; use fp32 or int8"
    program_is_whole_model = False  # int8 quantizes the backbone + neck graph only
    gives_boxes = True

    def export(
        self, tmp: Path, model: nn.Module, meta: dict[str, Any], fmt: str, images: Any, tolerance: float
    ) -> dict[str, Any]:
        """TorchScript of the whole detector, or with onnx the ONNX graphs of its networks; a mask
        framework's package.json also says ``produces_masks`` (predict reads it, not the model)."""
        size = tuple(meta["input_size"])
        masks: dict[str, Any] = {"produces_masks": produces_masks(model)}
        if masks["produces_masks"]:
            masks["outputs"] = MASK_OUTPUTS
        if fmt == "onnx":
            fields = export_detector_onnx(model, tmp, size, images, tolerance)
            enforce_check(fields, tolerance)
            return {**fields, **masks}
        if fmt != "torch_export":
            raise unknown_format(fmt)
        detector = copy.deepcopy(model).eval()
        detector.backbone = fold_batchnorm(detector.backbone)
        scripted = script_detector(detector, size)
        scripted.save(str(tmp / SCRIPT_FILE))
        fields = {"program": SCRIPT_FILE, "runtime": "torchscript", "batchnorm_folded": True, **masks}
        if images is not None:  # the traced part; the rest is the model's own torchvision code, scripted
            diff = _largest_level_diff(model.backbone, scripted.backbone, images)
            against = "the TorchScript backbone (traced, BatchNorm folded) vs the PyTorch detector's"
            fields["check"] = {
                **check_record(diff, tolerance, images, against),
                "per_graph": {"backbone": diff},
            }
            enforce_check(fields, tolerance)
        return fields

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        import torchvision  # noqa: F401  (registers the torchvision::nms op the scripted detector calls)

        if meta["program"] == SCRIPT_FILE:
            return DetectionsOnly(torch.jit.load(str(path / SCRIPT_FILE), map_location="cpu"))
        if meta["program"] == ONNX_FILE:
            from hrnet.predict.onnx_detection import load_detector

            if "onnx_graphs" not in meta:  # the features-only layout of earlier detection ONNX packages
                raise PackageError(f"{path / 'package.json'}: no onnx_graphs; re-run the package stage")
            return load_detector(path, meta)
        raise PackageError(f"{path / 'package.json'}: unknown program {meta['program']!r}")

    def input_description(self, meta: dict[str, Any]) -> str:
        width, height = meta["input_size"]
        resize = meta.get("resize") or {"min_size": height, "max_size": width}
        return (
            "a list of RGB images, each a (3, H, W) float tensor in [0, 1], of any size; the model "
            "normalises them and resizes each so that its shorter side is "
            f"{resize['min_size']} px and its longer side at most {resize['max_size']} px"
        )

    def model_call(self, meta: dict[str, Any]) -> str:
        return "detections = package.model([image])            # image: (3, H, W) RGB in [0, 1]"

    def usage(self, meta: dict[str, Any]) -> str:
        if meta.get("produces_masks"):
            return "detections = package.predict(image_rgb)  # boxes (xyxy), scores, labels, masks (N, H, W)"
        return "detections = package.predict(image_rgb)  # boxes (xyxy), scores, labels"

    def predict(self, package: Package, images: Sequence[np.ndarray], **options: Any) -> list[dict[str, Any]]:
        masks = bool(package.meta.get("produces_masks", False))
        return predict_detection(package.model, list(images), package.batch_size, masks=masks)

    def results(self, package: Package, prediction: Any, image_id: int, name: str) -> list[dict[str, Any]]:
        """COCO results; with masks each record also has ``segmentation``, its mask as compressed
        RLE at the image's size (thresholded at coco_masks.MASK_THRESHOLD, as the evaluate stage)."""
        categories = package.meta.get("category_ids")
        records = [
            {
                "image_id": image_id,
                "file_name": name,
                "category_id": int(categories[int(label) - 1]) if categories else int(label),
                "bbox": [round(float(v), 2) for v in (x1, y1, x2 - x1, y2 - y1)],
                "score": round(float(score), 5),
            }
            for (x1, y1, x2, y2), score, label in zip(
                prediction["boxes"], prediction["scores"], prediction["labels"]
            )
        ]
        if "masks" in prediction:
            from hrnet.data.coco_masks import encode_masks

            for record, rle in zip(records, encode_masks(prediction["masks"]), strict=True):
                record["segmentation"] = rle
        return records

    def draw(self, package: Package, image: np.ndarray, prediction: Any, threshold: float) -> np.ndarray:
        from hrnet.data.coco_masks import MASK_THRESHOLD
        from hrnet.evaluation.coco_boxes import draw_boxes

        captions = package.class_names or None
        masks = prediction["masks"] >= MASK_THRESHOLD if "masks" in prediction else None
        return draw_boxes(
            image, prediction["boxes"], prediction["labels"], prediction["scores"], captions, threshold, masks
        )


INFERENCE = DetectionInference()
