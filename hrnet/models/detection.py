"""Detectors assembled from an HRNet backbone, torchvision style: the backbone returns an ordered dict
of feature maps with ``out_channels`` and ``strides``, and a framework of
:data:`~hrnet.models.registries.DETECTORS` (``hrnet/models/detectors/<name>.py``) is built on it.

``create_model(name, task="detection", head="v2p", num_outputs=<categories>)`` builds one, as
:func:`build_detector` does with every option.
"""

from __future__ import annotations

from collections import OrderedDict
from importlib import import_module
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from hrnet.models.configs import HRNetConfig
from hrnet.models.factory import TaskModel
from hrnet.models.features import create_backbone
from hrnet.models.registries import DETECTORS
from hrnet.registry import RegistryError

# Faster R-CNN settings for ~128-256 px images on a CPU (torchvision's defaults target 800 px COCO).
SMALL_IMAGE_SETTINGS: dict[str, int] = {
    "representation_size": 256,
    "rpn_pre_nms_top_n_train": 1000,
    "rpn_post_nms_top_n_train": 500,
    "rpn_pre_nms_top_n_test": 500,
    "rpn_post_nms_top_n_test": 200,
    "rpn_batch_size_per_image": 128,
    "box_batch_size_per_image": 64,
    "box_detections_per_img": 50,
}
# the small preset's mask head: 64 channels, not 256 (as its box head is 256 wide, not 1024); at 256 a
# W18-small V2p step on 4 images at 96 px took 2x Faster R-CNN's, an untrained val pass 10x
SMALL_MASK_SETTINGS: dict[str, int] = {"mask_channels": 64}


def detector_produces_masks(detector: str) -> bool:
    """Whether the registered framework ``detector`` is a mask framework: a model class in its module
    sets ``produces_masks`` (and ``registry_name`` to this name, where one module builds several)."""
    module = import_module(DETECTORS.get(detector).__module__)
    classes = [c for c in vars(module).values() if isinstance(c, type) and c.__module__ == module.__name__]
    named = [c for c in classes if getattr(c, "registry_name", None) == detector]
    return any(getattr(c, "produces_masks", False) for c in named or classes)


def small_settings(detector: str) -> dict[str, Any]:
    """The ``small`` preset's constructor options of ``detector``: a mask framework's mask head too."""
    masks = SMALL_MASK_SETTINGS if detector_produces_masks(detector) else {}
    return dict(SMALL_IMAGE_SETTINGS) | masks


class ProjectedFeatures(nn.Module):
    """Wraps a feature extractor and maps every level to ``out_channels`` with a shared 1x1 conv."""

    def __init__(self, features: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.features = features
        self.proj = nn.Conv2d(int(features.out_channels), out_channels, kernel_size=1)
        self.out_channels = out_channels
        self.strides = tuple(features.strides)

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return OrderedDict((k, self.proj(v)) for k, v in self.features(x).items())


def build_detector(
    name: str = "hrnet_w18_small",
    head: str = "v2p",
    num_classes: int = 80,
    detector: str = "faster_rcnn",
    min_size: int = 800,
    max_size: int = 1333,
    pretrained: str | Path | None = None,
    anchor_scale: float = 8.0,
    pyramid_channels: int = 256,
    proj_channels: int | None = None,
    representation_size: int = 1024,
    score_threshold: float = 0.05,
    model_options: dict[str, Any] | None = None,
    **detector_kwargs: Any,
) -> nn.Module:
    """A torchvision detector over ``create_backbone(name, head)``.

    Faster R-CNN: an RPN on every level (anchor ``anchor_scale * stride``, ratios 0.5/1/2) and
    ``MultiScaleRoIAlign`` over the finest four levels (FPN practice; the single level for v1/v2).
    FCOS: one point per location, anchor size = stride (FCOS's scale ranges derive from it).
    ``representation_size`` is the width of the two-FC box head (1024 in torchvision; smaller is
    much cheaper on a CPU). ``pyramid_channels`` is the width of the V2p levels (256 in the paper;
    the RPN and box heads scale with it). ``proj_channels`` adds a 1x1 conv to that width; FCOS
    needs a multiple of 32 (GroupNorm) and gets 256 when the backbone width is not one.
    ``score_threshold`` drops weaker detections (``box_score_thresh`` / FCOS ``score_thresh``).
    ``detector_kwargs`` go to the torchvision constructor (see ``SMALL_IMAGE_SETTINGS`` for small
    images).
    """
    try:
        framework = DETECTORS.get(detector)  # the module's build()
        multiple = import_module(framework.__module__).PROJECTION_MULTIPLE
    except RegistryError as exc:
        raise ValueError(str(exc)) from None
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1 (object categories), got {num_classes}")
    features: nn.Module = create_backbone(
        name, head=head, pretrained=pretrained, pyramid_channels=pyramid_channels, **(model_options or {})
    )
    if proj_channels is None and features.out_channels % multiple:
        proj_channels = 256
    if proj_channels is not None and proj_channels != features.out_channels:
        features = ProjectedFeatures(features, proj_channels)
    settings = {
        "min_size": min_size,
        "max_size": max_size,
        "anchor_scale": anchor_scale,
        "representation_size": representation_size,
        "score_threshold": score_threshold,
    }
    return framework(features, num_classes, settings, **detector_kwargs)


def _build_for_create_model(
    name: str,
    head: str,
    num_outputs: int,
    pretrained: str | Path | None,
    pyramid_channels: int,
    read_branch: int,
    overrides: dict[str, Any],
) -> nn.Module:
    """:func:`~hrnet.models.create_model`'s detection: architecture options to the backbone, the rest
    (``detector``, ``min_size``, ...) to :func:`build_detector`."""
    if read_branch:
        raise ValueError(f"read_branch={read_branch} needs a heatmap model (pose), not a detector")
    overrides = dict(overrides)
    architecture = {k: overrides.pop(k) for k in list(overrides) if k in HRNetConfig.field_names()}
    return build_detector(
        name, head, num_outputs, pretrained=pretrained, pyramid_channels=pyramid_channels,
        model_options=architecture, **overrides,
    )  # fmt: skip


DETECTION_MODEL = TaskModel(_build_for_create_model, dense=False, default_outputs=80)
