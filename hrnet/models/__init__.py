"""HRNet model family: configs, backbone, representation heads, task models and weights.

Names are imported on first use, so that reading the configs (``hrnet.models.configs``, what the
params schema checks ``model.name`` against) loads no torch.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "HighResolutionModule": "backbone",
    "HighResolutionNet": "backbone",
    "BasicBlock": "blocks",
    "Bottleneck": "blocks",
    "MODEL_CONFIGS": "configs",
    "HRNetConfig": "configs",
    "StageConfig": "configs",
    "get_config": "configs",
    "dense_tasks": "factory",
    "TASK_MODELS": "registries",
    "HRNetFeatures": "features",
    "PoseModel": "factory",
    "SegmentationModel": "factory",
    "create_backbone": "features",
    "create_model": "factory",
    "list_models": "factory",
    "NECKS": "registries",
    "DETECTORS": "registries",
    "V1Neck": "necks",
    "V2Neck": "necks",
    "V2pNeck": "necks",
    "build_neck": "necks",
    "CheckpointError": "weights",
    "LoadReport": "weights",
    "load_pretrained": "weights",
    "read_state_dict": "weights",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"hrnet.models.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'hrnet.models' has no attribute {name!r}")
