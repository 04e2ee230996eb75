"""Two gloo ranks on CPU take optimizer steps through the train stage's ``build_trainer`` (devices: 2,
so strategy ddp with Lightning's subprocess launcher, as ``python -m pipeline.train`` runs it).

``python tests/ddp_probe.py OUT``: each rank fits a tiny linear model on batches of its own (rank-
dependent data, so the local gradients differ) for two steps of SGD with momentum and writes
``OUT/rank<r>.pt``: the initial weights, the batches it stepped on and its final weights. Used by
``tests/test_ddp_steps.py``; not a test itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml
from torch.utils.data import DataLoader, TensorDataset

from pipeline.common.fitting import build_trainer
from pipeline.params import parse_params

STEPS, BATCH, LR, MOMENTUM = 2, 4, 0.1, 0.9


def probe_data(rank: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(1000 + rank)  # other inputs and targets on each rank
    inputs = torch.randn(STEPS * BATCH, 3, generator=generator) + rank
    return TensorDataset(inputs, torch.randn(STEPS * BATCH, 2, generator=generator))


class Probe(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 2)
        self.initial = {k: v.clone() for k, v in self.state_dict().items()}
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        self.batches.append((inputs.clone(), targets.clone()))
        return torch.nn.functional.mse_loss(self.layer(inputs), targets)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=LR, momentum=MOMENTUM)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(probe_data(self.trainer.global_rank), batch_size=BATCH, shuffle=False)


def main(out: Path) -> None:
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["train"].update(devices=2, accelerator="cpu", epochs=1, num_workers=0)
    params = parse_params(raw)
    pl.seed_everything(params.seed, verbose=False)
    module = Probe()
    trainer = build_trainer(params, enable_progress_bar=False, limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(module)
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    torch.save(
        {"initial": module.initial, "batches": module.batches, "final": state, "world": trainer.world_size},
        out / f"rank{trainer.global_rank}.pt",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
