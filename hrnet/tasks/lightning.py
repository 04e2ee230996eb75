"""What every task's Lightning side shares: the evaluation Trainer and the network's keyword arguments."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


def evaluation_trainer(params: Any, callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    """The Trainer the evaluate stage validates with: ``evaluate.accelerator``, ``.devices`` and
    ``.precision`` (null: the train section's), on one node; more than one device runs DDP, each
    rank scoring its shard (the module's evaluators combine them)."""
    evaluate, train = params.evaluate, params.train
    accelerator = evaluate.accelerator or train.accelerator
    devices = train.devices if evaluate.devices is None else evaluate.devices
    return pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=1,
        strategy="auto" if devices in (1, "auto") else "ddp",
        precision=evaluate.precision or train.precision,
        deterministic=train.deterministic_mode(params.task, accelerator),
        use_distributed_sampler=False,  # the loaders shard with hrnet.data.sampling.EpochSampler
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def network_kwargs(params: Any) -> dict[str, Any]:
    """The ``model`` section as every task module's constructor takes it: the backbone's name, the
    head, the pretrained file and the architecture options."""
    model = params.model
    return {
        "model_name": model.name,
        "head": model.head,
        "pretrained": model.pretrained,
        "model_options": model.architecture(),
    }
