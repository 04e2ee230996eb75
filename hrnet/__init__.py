"""HRNet: high-resolution representation learning for pose, segmentation and detection."""

from typing import Any

from hrnet.models import create_backbone, create_model, list_models, load_pretrained

__version__ = "0.1.0"

__all__ = ["__version__", "create_backbone", "create_model", "list_models", "load_package", "load_pretrained"]


def __getattr__(name: str) -> Any:
    # imported on first use: training and evaluation never load the packaging code
    if name == "load_package":
        from hrnet.package import load_package

        return load_package
    raise AttributeError(f"module 'hrnet' has no attribute {name!r}")
