"""A NaN loss ends the train stage with one line naming epoch and step; the last good checkpoint stays."""

import json
import math

import pytest
import torch
from conftest import tiny_params

from hrnet.data.pose_dataset import TopDownPoseDataset
from hrnet.data.sampling import sample_key
from pipeline import train as train_stage
from pipeline.common import run_stage
from pipeline.prepare import prepare
from pipeline.synthesize import synthesize


@pytest.mark.slow
def test_nan_batch_in_epoch_one_stops_training_and_keeps_last_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(json.dumps(tiny_params(train={"epochs": 3})))
    run_stage(synthesize)
    run_stage(prepare)

    clean = TopDownPoseDataset.__getitem__

    def nan_from_epoch_one(self: TopDownPoseDataset, key) -> dict:
        item = clean(self, key)
        if self.train and sample_key(key, len(self.files))[0] >= 1:
            item["image"][0, 0, 0] = math.nan  # one bad pixel: enough to poison the loss
        return item

    monkeypatch.setattr(TopDownPoseDataset, "__getitem__", nan_from_epoch_one)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_stage(train_stage.train)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]

    assert not (tmp_path / "models/model.ckpt").exists()  # no NaN weights handed to evaluate
    last = torch.load(tmp_path / "models/last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 0 and last["global_step"] > 0  # written when epoch 0 finished
    # the first batch of epoch 1 holds the NaN: its step number is epoch 0's step count
    step = last["global_step"]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: training diverged at epoch 1, step {step}: loss nan"
    )
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
