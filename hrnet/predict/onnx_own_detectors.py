"""The detectors written here (CenterNet, Cascade R-CNN, Cascade Mask R-CNN, HTC) rebuilt for ONNX
packages: their own Python code (decoding, the stage loop) around the ONNX graphs, as
:mod:`hrnet.predict.onnx_detection` does with torchvision's classes.

* CenterNet: ``head.onnx`` gives the three maps on the level the heads read; :func:`centernet.decode`
  (3x3 peaks, top-K) and the transform's ``postprocess`` run as in the model.
* The cascades: :class:`~hrnet.models.detectors.cascade_rcnn.CascadeRoIHeads` whose stage ``i`` is a
  torchvision ``RoIHeads`` with ``box_head_s<i>.onnx`` as box head + predictor and its own box coder
  weights; the stage loop (refine, rescore, mean class logits, the last stage's NMS) is the model's.
  ``mask_head.onnx`` maps the detections' RoI features to the logits of every mask branch at once
  (HTC's mask information flow is inside the graph), whose probabilities are averaged as in the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from hrnet.models.detectors.cascade_rcnn import CascadeRoIHeads
from hrnet.models.detectors.centernet import CenterNet
from hrnet.predict.onnx_slots import OnnxBoxPredictor, roi_pool, run_mask_graph
from hrnet.predict.runtime import OnnxRunner


class OnnxCenterNet(CenterNet):
    """:class:`~hrnet.models.detectors.centernet.CenterNet` (eval) whose backbone and heads are graphs.

    ``CenterNet.__init__`` is not called: it would build the heads the graph replaces."""

    def __init__(
        self, backbone: nn.Module, head: OnnxRunner, settings: dict[str, Any], transform: dict[str, Any]
    ) -> None:
        nn.Module.__init__(self)
        self.backbone = backbone
        self.transform = GeneralizedRCNNTransform(**transform)
        self.head = head
        for name in ("num_classes", "level", "stride", "score_thresh", "topk"):
            setattr(self, name, settings[name])

    def dense_maps(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        heat, size, offset = (torch.from_numpy(o) for o in self.head.run_many([x]))
        return heat, size, offset


class OnnxCascadeRoIHeads(CascadeRoIHeads):
    """:class:`CascadeRoIHeads` for inference with ``mask_head.onnx`` as every mask branch at once."""

    def __init__(
        self, stages: list[RoIHeads], mask_roi_pool: nn.Module | None, masks: OnnxRunner | None
    ) -> None:
        super().__init__(stages, (1.0,) * len(stages), mask_roi_pool)
        self.masks = masks

    def pooled_mask_logits(self, pooled: Tensor, upto: int, every: bool) -> list[Tensor]:
        if self.training or upto != len(self.stages) - 1 or not every:
            raise ValueError("an ONNX cascade predicts; it gives every mask branch's logits, not one stage's")
        return [] if self.masks is None else run_mask_graph(self.masks, pooled)


def onnx_cascade_heads(
    first: RoIHeads, settings: dict[str, Any], graphs: dict[str, str | Path]
) -> OnnxCascadeRoIHeads:
    """The cascade's stages: ``first`` (a ``FasterRCNN``'s ``RoIHeads`` on ``box_head_s0.onnx``) and one
    ``RoIHeads`` per later ``box_head_s<i>.onnx``, each with its box coder weights; every stage has
    the detection settings, the last one's postprocessing applies them."""
    stages = [first]
    for i, weights in enumerate(settings["stage_bbox_reg_weights"][1:], start=1):
        predictor = OnnxBoxPredictor(OnnxRunner(graphs[f"box_head_s{i}"]))
        stages.append(
            RoIHeads(
                box_roi_pool=first.box_roi_pool,
                box_head=nn.Identity(),  # the graph holds the box head and the predictor
                box_predictor=predictor,
                fg_iou_thresh=0.5,  # matching and sampling: training only
                bg_iou_thresh=0.5,
                batch_size_per_image=512,
                positive_fraction=0.25,
                bbox_reg_weights=tuple(weights),
                score_thresh=first.score_thresh,
                nms_thresh=first.nms_thresh,
                detections_per_img=first.detections_per_img,
            )
        )
    if "mask_head" not in graphs:
        return OnnxCascadeRoIHeads(stages, None, None)
    return OnnxCascadeRoIHeads(stages, roi_pool(settings["mask_roi_pool"]), OnnxRunner(graphs["mask_head"]))
