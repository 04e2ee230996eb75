"""One optimizer and schedule module for every task: unknown names are refused, schedules as documented."""

import pytest
import torch

from hrnet.tasks.optim import build_optimizer, multistep_lambda
from hrnet.tasks.pose.module import PoseEstimationModule


def test_an_unknown_optimizer_is_refused_not_replaced():
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'; valid: sgd, adam, adamw"):
        build_optimizer("lamb", [torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    pose = PoseEstimationModule(optimizer="lamb")  # pose used to fall back to SGD silently
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'"):
        pose.configure_optimizers()


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_each_optimizer_is_the_named_torch_class(name):
    optimizer = build_optimizer(name, [torch.nn.Parameter(torch.zeros(1))], lr=0.1, weight_decay=0.01)
    expected = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    assert type(optimizer) is expected and optimizer.defaults["weight_decay"] == 0.01


def test_pose_schedule_matches_torch_multisteplr_per_epoch():
    ours = build_optimizer("adam", [torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    theirs = build_optimizer("adam", [torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    ours_lr = torch.optim.lr_scheduler.LambdaLR(ours, multistep_lambda([3, 5], 0.1))
    theirs_lr = torch.optim.lr_scheduler.MultiStepLR(theirs, milestones=[3, 5], gamma=0.1)
    for _ in range(7):
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"])
        ours.step(), theirs.step(), ours_lr.step(), theirs_lr.step()
