"""HRNet: high-resolution representation learning for pose, segmentation and detection."""

from hrnet.models import create_backbone, create_model, list_models, load_pretrained
from hrnet.package import load_package

__version__ = "0.1.0"

__all__ = ["__version__", "create_backbone", "create_model", "list_models", "load_package", "load_pretrained"]
