"""HRNet model family: configs, backbone, representation heads, task models and weights."""

from .backbone import HighResolutionModule, HighResolutionNet
from .blocks import BasicBlock, Bottleneck
from .configs import MODEL_CONFIGS, HRNetConfig, StageConfig, get_config
from .factory import (
    DENSE_TASKS,
    HEADS,
    TASKS,
    HRNetFeatures,
    PoseModel,
    SegmentationModel,
    create_backbone,
    create_model,
    list_models,
)
from .necks import V1Neck, V2Neck, V2pNeck
from .weights import CheckpointError, LoadReport, load_pretrained, read_state_dict

__all__ = [
    "HEADS",
    "MODEL_CONFIGS",
    "DENSE_TASKS",
    "TASKS",
    "BasicBlock",
    "Bottleneck",
    "CheckpointError",
    "HRNetConfig",
    "HRNetFeatures",
    "HighResolutionModule",
    "HighResolutionNet",
    "LoadReport",
    "PoseModel",
    "SegmentationModel",
    "StageConfig",
    "V1Neck",
    "V2Neck",
    "V2pNeck",
    "create_backbone",
    "create_model",
    "get_config",
    "list_models",
    "load_pretrained",
    "read_state_dict",
]
