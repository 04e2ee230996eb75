"""A NaN or infinite loss ends the train stage with one line naming epoch and step; the last good
checkpoint stays. In one process here; on one DDP rank of two in test_divergence_ddp.py."""

import math

import pytest
import torch
from conftest import tiny_project

from hrnet.data.pose_dataset import TopDownPoseDataset
from hrnet.data.sampling import sample_key
from hrnet.tasks.pose.module import PoseEstimationModule
from pipeline import train as train_stage
from pipeline.common import run_stage


def poison_from_epoch_one(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """From epoch 1 on: ``nan``, one NaN pixel in every training image (enough to poison the loss);
    ``inf``, an infinite loss."""
    if value == "nan":
        clean = TopDownPoseDataset.__getitem__

        def nan_pixel(self: TopDownPoseDataset, key) -> dict:
            item = clean(self, key)
            if self.train and sample_key(key, len(self.files))[0] >= 1:
                item["image"][0, 0, 0] = math.nan
            return item

        monkeypatch.setattr(TopDownPoseDataset, "__getitem__", nan_pixel)
    else:
        step = PoseEstimationModule.training_step

        def infinite(self: PoseEstimationModule, batch, batch_idx: int) -> torch.Tensor:
            loss = step(self, batch, batch_idx)
            return loss * math.inf if self.current_epoch >= 1 else loss

        monkeypatch.setattr(PoseEstimationModule, "training_step", infinite)


@pytest.mark.slow
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_non_finite_loss_in_epoch_one_stops_training_and_keeps_last_checkpoint(
    tmp_path, monkeypatch, capsys, value
):
    project = tiny_project(tmp_path / "p", prepared=True, train={"epochs": 2})
    monkeypatch.chdir(project)
    poison_from_epoch_one(monkeypatch, value)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_stage(train_stage.train)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]

    assert not (project / "models/model.ckpt").exists()  # no NaN weights handed to evaluate
    last = torch.load(project / "models/last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 0 and last["global_step"] > 0  # written when epoch 0 finished
    # the first batch of epoch 1 holds the NaN: its step number is epoch 0's step count
    step = last["global_step"]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: training diverged at epoch 1, step {step}: loss {value}"
    )
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
