"""Detection ONNX packages: the network in onnxruntime, box decoding and NMS in torchvision.

What a detector's ONNX package holds (``package.json`` ``onnx_graphs`` names the files):

* ``model.onnx``: backbone + neck, a padded image batch ``(N, 3, H, W)`` -> the pyramid levels;
* ``head.onnx``: the dense head on those levels, its raw outputs. FCOS: ``cls_logits`` (N, HW, C+1),
  ``bbox_regression`` (N, HW, 4), ``bbox_ctrness`` (N, HW, 1), levels concatenated; Faster R-CNN:
  the RPN head's objectness (N, A, H_l, W_l) and box deltas (N, 4A, H_l, W_l) per level;
* ``box_head.onnx`` (Faster R-CNN, Mask R-CNN): RoI-pooled features (K, C, 7, 7) -> the box head's
  class logits (K, C+1) and per-class box deltas (K, 4(C+1));
* ``mask_head.onnx`` (Mask R-CNN only): RoI-pooled features (K, C, 14, 14) at the detected boxes ->
  the mask head's per-class mask logits (K, C+1, 28, 28).

Everything between and after these graphs is data dependent (how many boxes survive) and runs in
Python, in torchvision's own code: :func:`build_detector` rebuilds the torchvision detector class
the model was trained as (``FCOS``, ``FasterRCNN`` or ``MaskRCNN``) from ``package.json``
``detector`` settings, with the ONNX graphs in its backbone / head / box (and mask) predictor slots,
and calls its ``forward``. So:

* resizing, normalising and padding: ``GeneralizedRCNNTransform``, and mapping the boxes back to
  the image's pixels: its ``postprocess``;
* anchors: ``AnchorGenerator`` (FCOS: one point per location, size = stride; Faster R-CNN: the
  trained sizes and ratios 0.5/1/2);
* FCOS decoding: per level, the ``topk_candidates`` best (location, class) pairs whose
  ``sqrt(sigmoid(cls) * sigmoid(ctrness))`` passes ``score_thresh``, their boxes decoded by
  ``BoxLinearCoder`` (distances to the four sides, normalised by the anchor size), clipped to the
  image, then class-wise NMS (``batched_nms``, IoU ``nms_thresh``) and the best
  ``detections_per_img`` (``FCOS.postprocess_detections``);
* Faster R-CNN: RPN deltas decoded by ``BoxCoder`` (weights 1, 1, 1, 1) on the anchors, the top
  ``pre_nms_top_n`` per level, clipped, small and low-score boxes dropped, NMS per level at
  ``rpn nms_thresh``, the top ``post_nms_top_n`` proposals (``RegionProposalNetwork.filter_proposals``);
  ``MultiScaleRoIAlign`` pools them into ``box_head.onnx``; its deltas decoded by ``BoxCoder``
  (weights 10, 10, 5, 5) per class, softmax scores, boxes under ``score_thresh`` or empty dropped,
  class-wise NMS at ``nms_thresh``, the best ``detections_per_img``
  (``RoIHeads.postprocess_detections``);
* Mask R-CNN, after that: ``MultiScaleRoIAlign`` pools the detected boxes into ``mask_head.onnx``,
  the detected label's logits go through a sigmoid (``maskrcnn_inference``), and ``postprocess``
  pastes each 28x28 mask into its box at the image's size (``paste_masks_in_image``).

The same torchvision code runs in the torch package (inside its TorchScript), so both packages
give the same detections up to the float differences of the graphs, which the packaging check
bounds.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hrnet.predict.runtime import OnnxRunner

BACKBONE_GRAPH, HEAD_GRAPH, BOX_HEAD_GRAPH = "model.onnx", "head.onnx", "box_head.onnx"
MASK_HEAD_GRAPH = "mask_head.onnx"


def detector_settings(model: nn.Module) -> dict[str, Any]:
    """What :func:`build_detector` needs to rebuild ``model``'s pre/post-processing (JSON-able)."""
    transform = model.transform
    anchors = model.rpn.anchor_generator if hasattr(model, "rpn") else model.anchor_generator
    settings: dict[str, Any] = {
        "min_size": list(transform.min_size),
        "max_size": transform.max_size,
        "image_mean": list(transform.image_mean),
        "image_std": list(transform.image_std),
        "size_divisible": transform.size_divisible,
        "fixed_size": transform.fixed_size,
        "out_channels": int(model.backbone.out_channels),
    }
    if hasattr(model, "rpn"):
        rpn, roi = model.rpn, model.roi_heads
        pool = roi.box_roi_pool
        settings.update(
            detector="mask_rcnn" if roi.has_mask() else "faster_rcnn",
            rpn_pre_nms_top_n_test=rpn._pre_nms_top_n["testing"],
            rpn_post_nms_top_n_test=rpn._post_nms_top_n["testing"],
            rpn_nms_thresh=rpn.nms_thresh,
            rpn_score_thresh=rpn.score_thresh,
            box_score_thresh=roi.score_thresh,
            box_nms_thresh=roi.nms_thresh,
            box_detections_per_img=roi.detections_per_img,
            bbox_reg_weights=list(roi.box_coder.weights),
            roi_pool=_pool_settings(pool),
        )
        if roi.has_mask():
            settings["mask_roi_pool"] = _pool_settings(roi.mask_roi_pool)
    else:
        settings.update(
            detector="fcos",
            num_classes=model.head.classification_head.num_classes,
            score_thresh=model.score_thresh,
            nms_thresh=model.nms_thresh,
            detections_per_img=model.detections_per_img,
            topk_candidates=model.topk_candidates,
        )
    settings["anchor_sizes"] = [list(s) for s in anchors.sizes]
    settings["aspect_ratios"] = [list(r) for r in anchors.aspect_ratios]
    return settings


def _pool_settings(pool: nn.Module) -> dict[str, Any]:
    return {
        "featmap_names": list(pool.featmap_names),
        "output_size": list(pool.output_size),
        "sampling_ratio": pool.sampling_ratio,
        "canonical_scale": pool.canonical_scale,
        "canonical_level": pool.canonical_level,
    }


def _roi_pool(settings: dict[str, Any]) -> nn.Module:
    from torchvision.ops import MultiScaleRoIAlign

    return MultiScaleRoIAlign(
        settings["featmap_names"], settings["output_size"], settings["sampling_ratio"],
        canonical_scale=settings["canonical_scale"], canonical_level=settings["canonical_level"],
    )  # fmt: skip


class OnnxBackbone(nn.Module):
    """``model.onnx`` in a detector's backbone slot: image batch -> OrderedDict of levels."""

    def __init__(self, runner: OnnxRunner, out_channels: int) -> None:
        super().__init__()
        self.runner, self.out_channels = runner, out_channels

    def forward(self, images: Tensor) -> OrderedDict[str, Tensor]:
        levels = self.runner.run_many([images])
        return OrderedDict((str(i), torch.from_numpy(level)) for i, level in enumerate(levels))


class OnnxFcosHead(nn.Module):
    """``head.onnx`` in FCOS's head slot: levels -> the FCOSHead output dict."""

    def __init__(self, runner: OnnxRunner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, levels: list[Tensor]) -> dict[str, Tensor]:
        cls_logits, regression, ctrness = self.runner.run_many(levels)
        return {
            "cls_logits": torch.from_numpy(cls_logits),
            "bbox_regression": torch.from_numpy(regression),
            "bbox_ctrness": torch.from_numpy(ctrness),
        }


class OnnxRpnHead(nn.Module):
    """``head.onnx`` in the RPN's head slot: levels -> (objectness per level, deltas per level)."""

    def __init__(self, runner: OnnxRunner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, levels: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        outputs = [torch.from_numpy(o) for o in self.runner.run_many(levels)]
        return outputs[: len(levels)], outputs[len(levels) :]


class OnnxBoxPredictor(nn.Module):
    """``box_head.onnx`` (box head + predictor) in the RoI heads' predictor slot."""

    def __init__(self, runner: OnnxRunner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        if len(pooled) == 0:  # no proposal survived: the graph's output widths from a dummy row
            logits, deltas = self.runner.run_many([torch.zeros(1, *pooled.shape[1:])])
            return torch.from_numpy(logits[:0]), torch.from_numpy(deltas[:0])
        logits, deltas = self.runner.run_many([pooled])
        return torch.from_numpy(logits), torch.from_numpy(deltas)


class OnnxMaskPredictor(nn.Module):
    """``mask_head.onnx`` (mask head + predictor) in the RoI heads' mask predictor slot."""

    def __init__(self, runner: OnnxRunner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, pooled: Tensor) -> Tensor:
        if len(pooled) == 0:  # no detection: the graph's output shape from a dummy row
            (logits,) = self.runner.run_many([torch.zeros(1, *pooled.shape[1:])])
            return torch.from_numpy(logits[:0])
        (logits,) = self.runner.run_many([pooled])
        return torch.from_numpy(logits)


def build_detector(settings: dict[str, Any], graphs: dict[str, str | Path]) -> nn.Module:
    """torchvision's FCOS / FasterRCNN / MaskRCNN, eval mode, with the ONNX ``graphs`` as its networks."""
    from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    s = settings
    anchors = AnchorGenerator(
        tuple(tuple(x) for x in s["anchor_sizes"]), tuple(tuple(x) for x in s["aspect_ratios"])
    )
    backbone = OnnxBackbone(OnnxRunner(graphs["backbone"]), s["out_channels"])
    transform = {
        "min_size": tuple(s["min_size"]), "max_size": s["max_size"], "image_mean": s["image_mean"],
        "image_std": s["image_std"], "size_divisible": s["size_divisible"], "fixed_size": s["fixed_size"],
    }  # fmt: skip
    if s["detector"] == "fcos":
        head = OnnxFcosHead(OnnxRunner(graphs["head"]))
        model: nn.Module = FCOS(
            backbone, s["num_classes"], anchor_generator=anchors, head=head,
            score_thresh=s["score_thresh"], nms_thresh=s["nms_thresh"],
            detections_per_img=s["detections_per_img"], topk_candidates=s["topk_candidates"], **transform,
        )  # fmt: skip
    elif s["detector"] in ("faster_rcnn", "mask_rcnn"):
        masks: dict[str, Any] = {}
        if s["detector"] == "mask_rcnn":  # mask_head.onnx holds the mask head and its predictor
            masks = {
                "mask_roi_pool": _roi_pool(s["mask_roi_pool"]),
                "mask_head": nn.Identity(),
                "mask_predictor": OnnxMaskPredictor(OnnxRunner(graphs["mask_head"])),
            }
        model = (MaskRCNN if masks else FasterRCNN)(
            backbone,
            rpn_anchor_generator=anchors,
            rpn_head=OnnxRpnHead(OnnxRunner(graphs["head"])),
            rpn_pre_nms_top_n_test=s["rpn_pre_nms_top_n_test"],
            rpn_post_nms_top_n_test=s["rpn_post_nms_top_n_test"],
            rpn_nms_thresh=s["rpn_nms_thresh"],
            rpn_score_thresh=s["rpn_score_thresh"],
            box_roi_pool=_roi_pool(s["roi_pool"]),
            box_head=nn.Identity(),  # box_head.onnx holds the box head and the predictor
            box_predictor=OnnxBoxPredictor(OnnxRunner(graphs["box_head"])),
            box_score_thresh=s["box_score_thresh"],
            box_nms_thresh=s["box_nms_thresh"],
            box_detections_per_img=s["box_detections_per_img"],
            bbox_reg_weights=tuple(s["bbox_reg_weights"]),
            **masks,
            **transform,
        )
    else:
        raise ValueError(f"detector {s['detector']!r}: expected fcos, faster_rcnn or mask_rcnn")
    return model.eval()


def load_detector(path: Path, meta: dict[str, Any]) -> nn.Module:
    """The detector of the ONNX package at ``path`` (``package.json`` already read into ``meta``)."""
    return build_detector(meta["detector"], {k: path / v for k, v in meta["onnx_graphs"].items()})
