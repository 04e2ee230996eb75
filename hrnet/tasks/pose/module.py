"""Top-down human pose estimation as a LightningModule (heatmap regression)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import nn

from hrnet.codecs.heatmap import MSRAHeatmapCodec
from hrnet.data.keypoint_meta import COCO_PERSON, KeypointMeta, same_keypoints
from hrnet.evaluation.coco_keypoints import REPORTED_STATS
from hrnet.evaluation.distributed import RunningMean
from hrnet.evaluation.evaluators import KeypointEvaluator
from hrnet.models import create_model
from hrnet.tasks.optim import build_optimizer, lambda_scheduler, multistep_lambda
from hrnet.tasks.pose.config import PoseConfig, PoseTestConfig


class JointsMSELoss(nn.Module):
    """MSE between predicted and target heatmaps, each joint weighted by its target weight.

    Matches the official loss: ``0.5 * mean((w * pred - w * target) ** 2)`` averaged over joints.
    """

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        weight = weight.reshape(weight.shape[0], weight.shape[1], 1, 1)
        return 0.5 * torch.mean((pred * weight - target * weight) ** 2)


def val_annotation_file(datamodule: Any) -> Path | None:
    """The COCO keypoint file of a datamodule's val split: its ``val_ann_file``, else the one its
    prepared index names (``meta["ann_file"]``, relative to the index); None when it has neither."""
    found = getattr(datamodule, "val_ann_file", None)
    index = getattr(datamodule, "val_index", None)
    if found is None and index is not None and index.meta.get("ann_file"):
        found = Path(datamodule.index_dir) / index.meta["ann_file"]  # the index's folder
    return None if found is None else Path(found)


class PoseEstimationModule(pl.LightningModule):
    """HRNet + representation head + 1x1 heatmap predictor, trained with joint-weighted MSE.

    Validation logs ``val/loss`` (weighted by samples over every rank) and the COCO keypoint stats
    ``val/AP``, ``val/AP50``, ... (:class:`~hrnet.evaluation.evaluators.KeypointEvaluator`), with
    the test-time path of the datamodule's codec unless :meth:`use_evaluator` gives another;
    ``last_val_metrics`` keeps the stats. ``keypoints`` is the data's keypoint set
    (:meth:`KeypointMeta.to_dict`; None: COCO's person): it sets ``num_joints``, travels in the
    checkpoint, and a checkpoint of another set refuses to resume.
    """

    def __init__(
        self,
        model_name: str = "hrnet_w18_small",
        head: str = "v1",
        num_joints: int = 17,
        pretrained: str | None = None,
        optimizer: str = PoseConfig.optimizer,
        lr: float = PoseConfig.lr,
        weight_decay: float = PoseConfig.weight_decay,
        momentum: float = PoseConfig.momentum,
        lr_milestones: tuple[int, ...] = PoseConfig.lr_milestones,
        lr_factor: float = PoseConfig.lr_factor,
        read_branch: int = PoseConfig.read_branch,
        model_options: dict[str, Any] | None = None,
        keypoints: dict[str, Any] | None = None,
    ) -> None:
        if keypoints is not None:
            num_joints = len(keypoints["names"])
        super().__init__()
        # the trained weights are all in the checkpoint: loading it never reads `pretrained` again
        self.save_hyperparameters(ignore=["pretrained"])
        self.model = create_model(
            model_name, task="pose", head=head, num_outputs=num_joints, pretrained=pretrained,
            read_branch=read_branch, **(model_options or {}),
        )  # fmt: skip
        self.criterion = JointsMSELoss()
        self.val_loss = RunningMean()
        self.evaluator: KeypointEvaluator | None = None  # use_evaluator's, else built per validation
        self.test = PoseTestConfig()
        self._codec_source: MSRAHeatmapCodec | None = None
        self._active: KeypointEvaluator | None = None
        self.last_val_metrics: dict[str, float] = {}

    @property
    def keypoint_meta(self) -> KeypointMeta:
        stored = self.hparams.get("keypoints")
        return COCO_PERSON if stored is None else KeypointMeta.from_dict(stored)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        stored = checkpoint.get("hyper_parameters", {}).get("keypoints")
        found = COCO_PERSON if stored is None else KeypointMeta.from_dict(stored)
        same_keypoints(self.keypoint_meta, found, "the checkpoint", "this run's prepared data")

    def configure_test(self, test: PoseTestConfig) -> None:
        """The test-time settings (``evaluate.pose``) that validation and the evaluate stage use: the
        codec's flip test and shift, the keypoint threshold and the OKS-NMS of the evaluator."""
        self.test = test

    def use_evaluator(
        self, evaluator: KeypointEvaluator | None, codec: MSRAHeatmapCodec | None = None
    ) -> None:
        """Validation scores into ``evaluator`` (e.g. people at detected boxes, with their box scores)
        with the crops of ``codec`` (a dataset's, when validating without the datamodule); None: the
        datamodule's val file and codec. Test-time settings are :meth:`configure_test`'s either way."""
        self.evaluator, self._codec_source = evaluator, codec

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.criterion(self(batch["image"]), batch["target"], batch["target_weight"])
        n = batch["image"].shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        return loss

    def _codec(self) -> MSRAHeatmapCodec:
        codec = self.trainer.datamodule.codec if self._codec_source is None else self._codec_source
        return codec.with_test(flip_test=self.test.flip_test, shift_heatmap=self.test.shift_heatmap)

    def on_validation_epoch_start(self) -> None:
        self.val_loss.reset()
        self._active = self.evaluator
        if self._active is None:
            ann_file = val_annotation_file(getattr(self.trainer, "datamodule", None))
            if ann_file is None:
                rank_zero_warn("the datamodule names no val annotation file: validation logs val/loss only")
            else:
                test = self.test
                self._active = KeypointEvaluator(
                    ann_file, None, test.keypoint_score_threshold, test.oks_nms_threshold, test.soft_nms,
                    self.keypoint_meta,
                )  # fmt: skip
        if self._active is not None:
            self._active.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        images, meta = batch["image"], batch["meta"]
        heatmaps = self(images)
        loss = self.criterion(heatmaps, batch["target"], batch["target_weight"])
        self.val_loss.update(loss.detach(), images.shape[0])
        if self._active is not None:
            centers, scales = meta["center"].cpu().numpy(), meta["scale"].cpu().numpy()
            keypoints, scores = self._codec().predict(self, images, centers, scales, heatmaps=heatmaps)
            self._active.update(meta["index"], meta["image_id"], keypoints, scores, scales)
        return loss

    def on_validation_epoch_end(self) -> None:
        # every rank holds the same reduced values: no further sync
        self.log("val/loss", self.val_loss.compute(self.device), prog_bar=True)
        if self._active is not None:
            self.last_val_metrics = self._active.compute()
            for name in REPORTED_STATS:
                self.log(f"val/{name}", self.last_val_metrics[name], prog_bar=name == "AP")

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = build_optimizer(
            hp.optimizer, self.model.parameters(), hp.lr, hp.weight_decay, hp.momentum, nesterov=True
        )
        return lambda_scheduler(optimizer, multistep_lambda(hp.lr_milestones, hp.lr_factor), interval="epoch")
