"""The model family's registries, readable without torch: the task models ``create_model`` builds,
the representation heads ("necks": V1, V2, V2p) and the detection frameworks, each entry defined in
its own module and loaded on first use. The params schema takes its ``model.head`` and
``detection.detector`` values from here."""

from __future__ import annotations

from hrnet.registry import Registry

NECKS: Registry = Registry("head", group="hrnet.necks")
NECKS.register("v1", "hrnet.models.necks:V1Neck")
NECKS.register("v2", "hrnet.models.necks:V2Neck")
NECKS.register("v2p", "hrnet.models.necks:V2pNeck")

DETECTORS: Registry = Registry("detector", group="hrnet.detectors")
DETECTORS.register("faster_rcnn", "hrnet.models.detectors.faster_rcnn:build")
DETECTORS.register("fcos", "hrnet.models.detectors.fcos:build")
DETECTORS.register("cascade_rcnn", "hrnet.models.detectors.cascade_rcnn:build")
DETECTORS.register("centernet", "hrnet.models.detectors.centernet:build")
DETECTORS.register("mask_rcnn", "hrnet.models.detectors.mask_rcnn:build")
DETECTORS.register("cascade_mask_rcnn", "hrnet.models.detectors.cascade_mask_rcnn:build")
DETECTORS.register("htc", "hrnet.models.detectors.htc:build")

# torchvision ResNets under an FPN (hrnet.models.resnet_fpn): detection backbones besides the HRNet variants
RESNET_FPN_MODELS: tuple[str, ...] = ("resnet18", "resnet50")

TASK_MODELS: Registry = Registry("task model", group="hrnet.task_models")
TASK_MODELS.register("pose", "hrnet.models.factory:POSE_MODEL")
TASK_MODELS.register("segmentation", "hrnet.models.factory:SEGMENTATION_MODEL")
TASK_MODELS.register("detection", "hrnet.models.detection:DETECTION_MODEL")
