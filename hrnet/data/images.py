"""The one image reader of every task's datasets (and of `hrnet predict`), and the one normalisation.

A missing, empty, corrupt or truncated file raises a one-line error naming it: OpenCV decodes a
truncated JPEG without complaint (grey rows at the bottom), so a JPEG must end with its end-of-image
marker. Dataset images are read with EXIF orientation ignored, as the official HRNet code and COCO's
annotations do (the stored pixels are what the boxes and keypoints refer to); `hrnet predict` applies
it, as a photo viewer would.

Every network input is RGB scaled by the ImageNet mean and std below (the pretrained backbones'
statistics): :func:`normalise` for pose crops, training and predicting, and segmentation predict; the
segmentation dataset applies the same constants plane by plane.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from hrnet.errors import DataError
from hrnet.io import read_bytes

try:  # libspng decodes a 2048x1024 Cityscapes frame ~20% faster than OpenCV's libpng (extra `fast`)
    import pyspng
except ImportError:  # pragma: no cover - depends on the environment
    pyspng = None

if TYPE_CHECKING:
    import torch

JPEG_SOI, JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
EOI_WINDOW = 4096  # the end marker must be within the file's last 4 KiB (trailing padding is allowed)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)  # RGB, of pixel values in [0, 1]
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def truncated_jpeg(data: bytes) -> bool:
    """A JPEG (by its start marker) without an end-of-image marker near its end."""
    return data[:2] == JPEG_SOI and JPEG_EOI not in data[-EOI_WINDOW:]


def read_image(path: str | Path, *, rgb: bool = True, exif_orientation: bool = False) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8, RGB (or BGR with ``rgb=False``)."""
    path = Path(path)
    data = read_bytes(path, "image file")
    if not data:
        raise DataError(f"{path}: image file is empty")
    if truncated_jpeg(data):
        raise DataError(f"{path}: truncated JPEG (no end-of-image marker)")
    if rgb and pyspng is not None and data[:8] == PNG_SIGNATURE:
        try:
            image = pyspng.load(data)
        except Exception:  # a corrupt or truncated PNG
            raise DataError(f"{path}: not a decodable image") from None
        if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
            return image
    flags = cv2.IMREAD_COLOR if exif_orientation else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise DataError(f"{path}: not a decodable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if rgb else image


def normalise_planes(image: np.ndarray) -> torch.Tensor:
    """One RGB uint8 (H, W, 3) image -> normalised (3, H, W) float32, a plane at a time: the
    segmentation dataset's (fast on large frames) and segmentation packages' path; the same
    constants as :func:`normalise`, rounded by a multiplication with the inverse std."""
    import torch

    mean = np.array(IMAGENET_MEAN, np.float32) * 255.0
    inv_std = 1.0 / (np.array(IMAGENET_STD, np.float32) * 255.0)
    out = np.empty((3, *image.shape[:2]), np.float32)
    for c, plane in enumerate(cv2.split(image)):
        out[c] = plane
        out[c] -= mean[c]
        out[c] *= inv_std[c]
    return torch.from_numpy(out)


def normalise(images: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) or (N, H, W, 3) -> float32 (3, H, W) or (N, 3, H, W), ImageNet-normalised."""
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or images.shape[-1] != 3:
        raise ValueError(f"expected RGB uint8 images (..., H, W, 3), got {images.dtype} {images.shape}")
    import torch  # here, not at the top: reading and checking images (the prepare stage) needs no torch

    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1) * 255.0
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1) * 255.0
    tensor = torch.from_numpy(np.ascontiguousarray(images)).movedim(-1, -3).contiguous().float()
    return tensor.sub_(mean).div_(std)
