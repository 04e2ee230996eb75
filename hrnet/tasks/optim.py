"""The optimizers and learning-rate schedules of every task, in one place.

Each task picks by name (``sgd``, ``adam``, ``adamw``); an unknown name is refused, never replaced.
Schedules are multipliers of the base learning rate for ``torch.optim.lr_scheduler.LambdaLR``:

- ``multistep_lambda``: ``factor ** (number of milestones passed)``; pose steps it per epoch, as the
  official pose code's ``MultiStepLR``;
- ``poly_lambda``: ``(1 - step / total) ** power`` per step, as the official segmentation code;
- ``warmup_lambda``: linear warmup, then step decay at fractions of training or cosine, per step, as
  detection recipes (MMDetection, torchvision) do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch

OPTIMIZERS = ("sgd", "adam", "adamw")


def build_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter],
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """``sgd`` (with ``momentum`` and ``nesterov``), ``adam`` or ``adamw``."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")


def multistep_lambda(milestones: Sequence[int], factor: float) -> Callable[[int], float]:
    """``factor ** k`` once ``k`` milestones are passed."""
    return lambda step: factor ** sum(step >= m for m in milestones)


def poly_lambda(total_steps: int, power: float = 0.9) -> Callable[[int], float]:
    """LR multiplier ``(1 - step / total_steps) ** power`` (0 from ``total_steps`` on)."""
    total = max(int(total_steps), 1)
    return lambda step: max(1.0 - step / total, 0.0) ** power


def warmup_lambda(
    total_steps: int,
    warmup_steps: int,
    warmup_factor: float,
    schedule: str,
    lr_steps: Sequence[float],
    lr_factor: float,
) -> Callable[[int], float]:
    """Per-step LR multiplier: linear warmup, then step decay (at fractions of training) or cosine."""
    if schedule not in ("step", "cosine"):
        raise ValueError(f"unknown schedule {schedule!r}; valid: step, cosine")
    decay = multistep_lambda([int(f * total_steps) for f in lr_steps], lr_factor)

    def factor(step: int) -> float:
        scale = 1.0
        if step < warmup_steps:
            alpha = step / max(warmup_steps, 1)
            scale = warmup_factor * (1 - alpha) + alpha
        if schedule == "cosine":
            progress = min(max(step - warmup_steps, 0) / max(total_steps - warmup_steps, 1), 1.0)
            return scale * 0.5 * (1 + math.cos(math.pi * progress))
        return scale * decay(step)

    return factor


def lambda_scheduler(optimizer: torch.optim.Optimizer, factor: Callable[[int], float], interval: str) -> dict:
    """What ``configure_optimizers`` returns: the optimizer and its LambdaLR, stepped per ``interval``."""
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}
