"""What the dense tasks (one map per image: pose, segmentation) share for packaging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F


@torch.no_grad()
def first_inputs(
    task: Any, params: Any, prepared_dir: Path, count: int, size: tuple[int, int], split: str = "val"
) -> torch.Tensor:
    """The first ``count`` inputs of ``split`` ("val" or "train") of ``task``'s DataModule, resized to
    ``size`` (width, height)."""
    datamodule = task.build_datamodule(params, prepared_dir)
    datamodule.setup("validate" if split == "val" else "fit")
    loader = datamodule.val_dataloader() if split == "val" else datamodule.train_dataloader()
    images: list[torch.Tensor] = []
    for batch in loader:
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
