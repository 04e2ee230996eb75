"""Top-down human pose estimation as a LightningModule (heatmap regression)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from hrnet.models import create_model
from hrnet.tasks.optim import build_optimizer, lambda_scheduler, multistep_lambda


class JointsMSELoss(nn.Module):
    """MSE between predicted and target heatmaps, each joint weighted by its target weight.

    Matches the official loss: ``0.5 * mean((w * pred - w * target) ** 2)`` averaged over joints.
    """

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        weight = weight.reshape(weight.shape[0], weight.shape[1], 1, 1)
        return 0.5 * torch.mean((pred * weight - target * weight) ** 2)


class PoseEstimationModule(pl.LightningModule):
    """HRNet + representation head + 1x1 heatmap predictor, trained with joint-weighted MSE."""

    def __init__(
        self,
        model_name: str = "hrnet_w18_small",
        head: str = "v1",
        num_joints: int = 17,
        pretrained: str | None = None,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        lr_milestones: tuple[int, ...] = (170, 200),
        lr_factor: float = 0.1,
        read_branch: int = 0,
        model_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        # the trained weights are all in the checkpoint: loading it never reads `pretrained` again
        self.save_hyperparameters(ignore=["pretrained"])
        self.model = create_model(
            model_name, task="pose", head=head, num_outputs=num_joints, pretrained=pretrained,
            read_branch=read_branch, **(model_options or {}),
        )  # fmt: skip
        self.criterion = JointsMSELoss()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def _step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        heatmaps = self(batch["image"])
        loss = self.criterion(heatmaps, batch["target"], batch["target_weight"])
        self.log(
            f"{stage}/loss",
            loss,
            on_step=stage == "train",
            on_epoch=True,
            prog_bar=True,
            batch_size=batch["image"].shape[0],
            sync_dist=stage != "train",
        )
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = build_optimizer(
            hp.optimizer, self.model.parameters(), hp.lr, hp.weight_decay, hp.momentum, nesterov=True
        )
        return lambda_scheduler(optimizer, multistep_lambda(hp.lr_milestones, hp.lr_factor), interval="epoch")
