"""What the dense tasks (one map per image: pose, segmentation) share for packaging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F


@torch.no_grad()
def first_val_inputs(
    task: Any, params: Any, prepared_dir: Path, count: int, size: tuple[int, int]
) -> torch.Tensor:
    """The first ``count`` val inputs of ``task``'s DataModule, resized to ``size`` (width, height)."""
    datamodule = task.build_datamodule(params, prepared_dir)
    datamodule.setup("validate")
    images: list[torch.Tensor] = []
    for batch in datamodule.val_dataloader():
        images += list(batch["image"])
        if len(images) >= count:
            break
    width, height = size
    return torch.stack(
        [
            image
            if image.shape[-2:] == (height, width)
            else F.interpolate(image[None], size=(height, width), mode="bilinear", align_corners=False)[0]
            for image in images[:count]
        ]
    )
