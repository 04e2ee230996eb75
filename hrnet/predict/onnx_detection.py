"""Detection ONNX packages: the network in onnxruntime, box decoding and NMS in torchvision.

What a detector's ONNX package holds (``package.json`` ``onnx_graphs`` names the files; they are
written by :mod:`hrnet.predict.export_detection`):

* ``model.onnx``: backbone + neck, a padded image batch ``(N, 3, H, W)`` -> the pyramid levels;
* ``head.onnx``: the dense head on those levels, its raw outputs. FCOS: ``cls_logits`` (N, HW, C+1),
  ``bbox_regression`` (N, HW, 4), ``bbox_ctrness`` (N, HW, 1), levels concatenated; the R-CNNs:
  the RPN head's objectness (N, A, H_l, W_l) and box deltas (N, 4A, H_l, W_l) per level; CenterNet:
  on the one level its heads read, the heatmap logits (N, C, h, w), size and offset (N, 2, h, w);
* ``box_head.onnx`` (Faster R-CNN, Mask R-CNN): RoI-pooled features (K, C, 7, 7) -> the box head's
  class logits (K, C+1) and per-class box deltas (K, 4(C+1)); the cascades have one per stage,
  ``box_head_s0/_s1/_s2.onnx``, with class-agnostic deltas (K, 4);
* ``mask_head.onnx`` (mask frameworks): RoI-pooled features (K, C, 14, 14) at the detected boxes ->
  per mask branch its per-class mask logits (K, C+1, 28, 28): one for Mask R-CNN and Cascade Mask
  R-CNN, three for HTC (its mask information flow runs inside the graph).

Everything between and after these graphs is data dependent (how many boxes survive) and runs in
Python, in torchvision's own code: :func:`build_detector` rebuilds the torchvision detector class
the model was trained as (``FCOS``, ``FasterRCNN`` or ``MaskRCNN``) from ``package.json``
``detector`` settings, with the ONNX graphs in its backbone / head / box (and mask) predictor slots,
and calls its ``forward``. CenterNet and the cascades, written here, are rebuilt the same way around
their own Python code (:mod:`hrnet.predict.onnx_own_detectors`). So:

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

from pathlib import Path
from typing import Any

from torch import nn

from hrnet.predict.onnx_slots import (
    OnnxBackbone,
    OnnxBoxPredictor,
    OnnxFcosHead,
    OnnxMaskPredictor,
    OnnxRpnHead,
    roi_pool,
)
from hrnet.predict.runtime import OnnxRunner

CASCADES = ("cascade_rcnn", "cascade_mask_rcnn", "htc")


def detector_settings(model: nn.Module) -> dict[str, Any]:
    """What :func:`build_detector` needs to rebuild ``model``'s pre/post-processing (JSON-able)."""
    transform = model.transform
    settings: dict[str, Any] = {
        "min_size": list(transform.min_size),
        "max_size": transform.max_size,
        "image_mean": list(transform.image_mean),
        "image_std": list(transform.image_std),
        "size_divisible": transform.size_divisible,
        "fixed_size": transform.fixed_size,
        "out_channels": int(model.backbone.out_channels),
    }
    if hasattr(model, "dense_maps"):  # CenterNet: no anchors
        return settings | {
            "detector": "centernet", "num_classes": model.num_classes, "level": model.level,
            "stride": model.stride, "score_thresh": model.score_thresh, "topk": model.topk,
        }  # fmt: skip
    anchors = model.rpn.anchor_generator if hasattr(model, "rpn") else model.anchor_generator
    if hasattr(model, "rpn"):
        rpn, roi = model.rpn, model.roi_heads
        stages = list(roi.stages) if hasattr(roi, "stages") else [roi]
        first, last = stages[0], stages[-1]  # the last stage's postprocessing gives the detections
        masked = any(stage.has_mask() for stage in stages)
        settings.update(
            detector=getattr(model, "registry_name", "mask_rcnn" if masked else "faster_rcnn"),
            rpn_pre_nms_top_n_test=rpn._pre_nms_top_n["testing"],
            rpn_post_nms_top_n_test=rpn._post_nms_top_n["testing"],
            rpn_nms_thresh=rpn.nms_thresh,
            rpn_score_thresh=rpn.score_thresh,
            box_score_thresh=last.score_thresh,
            box_nms_thresh=last.nms_thresh,
            box_detections_per_img=last.detections_per_img,
            bbox_reg_weights=list(first.box_coder.weights),
            roi_pool=_pool_settings(first.box_roi_pool),
        )
        if len(stages) > 1:
            settings["stage_bbox_reg_weights"] = [list(stage.box_coder.weights) for stage in stages]
        if masked:
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


RCNNS = ("faster_rcnn", "mask_rcnn", *CASCADES)


def build_detector(settings: dict[str, Any], graphs: dict[str, str | Path]) -> nn.Module:
    """The detector ``settings["detector"]`` names, eval mode, with the ONNX ``graphs`` as its networks:
    torchvision's FCOS / FasterRCNN / MaskRCNN, or (:mod:`hrnet.predict.onnx_own_detectors`) our
    CenterNet and cascades around the same graph slots."""
    from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    s = settings
    backbone = OnnxBackbone(OnnxRunner(graphs["backbone"]), s["out_channels"])
    transform = {
        "min_size": tuple(s["min_size"]), "max_size": s["max_size"], "image_mean": s["image_mean"],
        "image_std": s["image_std"], "size_divisible": s["size_divisible"], "fixed_size": s["fixed_size"],
    }  # fmt: skip
    if s["detector"] == "centernet":
        from hrnet.predict.onnx_own_detectors import OnnxCenterNet

        return OnnxCenterNet(backbone, OnnxRunner(graphs["head"]), s, transform).eval()
    if s["detector"] not in ("fcos", *RCNNS):
        raise ValueError(f"detector {s['detector']!r}: expected centernet, fcos or one of {', '.join(RCNNS)}")
    anchors = AnchorGenerator(
        tuple(tuple(x) for x in s["anchor_sizes"]), tuple(tuple(x) for x in s["aspect_ratios"])
    )
    if s["detector"] == "fcos":
        head = OnnxFcosHead(OnnxRunner(graphs["head"]))
        return FCOS(
            backbone, s["num_classes"], anchor_generator=anchors, head=head,
            score_thresh=s["score_thresh"], nms_thresh=s["nms_thresh"],
            detections_per_img=s["detections_per_img"], topk_candidates=s["topk_candidates"], **transform,
        ).eval()  # fmt: skip
    cascade = s["detector"] in CASCADES
    masks: dict[str, Any] = {}
    if s["detector"] == "mask_rcnn":  # mask_head.onnx holds the mask head and its predictor
        masks = {
            "mask_roi_pool": roi_pool(s["mask_roi_pool"]),
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
        box_roi_pool=roi_pool(s["roi_pool"]),
        box_head=nn.Identity(),  # box_head.onnx holds the box head and the predictor
        box_predictor=OnnxBoxPredictor(OnnxRunner(graphs["box_head_s0" if cascade else "box_head"])),
        box_score_thresh=s["box_score_thresh"],
        box_nms_thresh=s["box_nms_thresh"],
        box_detections_per_img=s["box_detections_per_img"],
        bbox_reg_weights=tuple(s["bbox_reg_weights"]),
        **masks,
        **transform,
    )
    if cascade:
        from hrnet.predict.onnx_own_detectors import onnx_cascade_heads

        model.roi_heads = onnx_cascade_heads(model.roi_heads, s, graphs)
    return model.eval()


def load_detector(path: Path, meta: dict[str, Any]) -> nn.Module:
    """The detector of the ONNX package at ``path`` (``package.json`` already read into ``meta``)."""
    return build_detector(meta["detector"], {k: path / v for k, v in meta["onnx_graphs"].items()})
