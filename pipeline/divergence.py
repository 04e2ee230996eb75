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
        finite = bool(torch.isfinite(loss.detach()).all())
        # every DDP rank decides together, so no rank is left waiting in the next collective
        if trainer.strategy.reduce_boolean_decision(finite, all=True):
            return
        value = f"{loss.detach().float().sum().item()}" if not finite else "non-finite on another rank"
        raise DivergenceError(
            f"training diverged at epoch {trainer.current_epoch}, step {trainer.global_step}: loss {value}; "
            "nothing after the last finished epoch was saved (lower the learning rate or check the data)"
        )
