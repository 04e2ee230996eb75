"""Stops training on the first NaN or infinite loss, before it reaches the weights.

Without it a diverged run trains on to the end and writes NaN weights over ``models/model.ckpt``.
Checked before ``backward`` so the optimizer never steps on a non-finite loss; the epoch
checkpoint (``models/last.ckpt``) written at the end of the last finished epoch is left as it is.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from hrnet.errors import UserError


class DivergenceError(UserError, ValueError):
    """A non-finite training loss: a stage reports it as one line and exits 2 (lower the learning rate)."""


class StopOnDivergence(Callback):
    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        # every DDP rank sees every rank's loss, so all decide together and no rank is left waiting in
        # the next collective; rank 0 alone says so (one line, naming the first rank that diverged)
        # and the other ranks leave quietly with the same exit code
        losses = trainer.strategy.all_gather(loss.detach().float().sum().reshape(1)).reshape(-1)
        bad = (~torch.isfinite(losses)).nonzero().flatten().tolist()
        if not bad:
            return
        if trainer.global_rank != 0:
            raise SystemExit(2)
        where = f" on rank {bad[0]}" if trainer.world_size > 1 else ""
        raise DivergenceError(
            f"training diverged at epoch {trainer.current_epoch}, step {trainer.global_step}: "
            f"loss {losses[bad[0]].item()}{where}; nothing after the last finished epoch was saved "
            "(lower the learning rate or check the data)"
        )
