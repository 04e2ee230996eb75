"""HRNet: high-resolution representation learning for pose, segmentation and detection."""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "create_backbone", "create_model", "list_models", "load_package", "load_pretrained"]

# imported on first use: the data stages never load torch, training never loads the packaging code
_LAZY = {
    "create_backbone": "hrnet.models",
    "create_model": "hrnet.models",
    "list_models": "hrnet.models",
    "load_pretrained": "hrnet.models",
    "load_package": "hrnet.package",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hrnet' has no attribute {name!r}")
