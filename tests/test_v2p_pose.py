"""Why V2p pose trained worse than V1, and what the fix does (issue 14, point 3).

The HRFPN level is linear (1x1 + 3x3 conv, no norm or activation). Fed straight to the 1x1 heatmap
predictor, its large zero-mean values let one Adam step (every predictor weight moved by about
``lr``) move the heatmaps ~10x more than on V1. Pose V2p normalises the level first
(``level_norm``: BatchNorm + ReLU); detection's V2p stays the official HRFPN.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hrnet.models import create_backbone, create_model
from hrnet.models.summary import count_macs

SMALL = "hrnet_w18_small"
CHANNELS = 64  # params.yaml's model.pyramid_channels


def _predictor_input(task: str, head: str, predictor: str) -> torch.Tensor:
    """What the 1x1 predictor reads, at init, in training mode (BatchNorm on batch statistics)."""
    torch.manual_seed(0)
    model = create_model(SMALL, task=task, head=head, pyramid_channels=CHANNELS).train()
    seen: list[torch.Tensor] = []
    model.get_submodule(predictor).register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        model(torch.randn(4, 3, 128, 96, generator=torch.Generator().manual_seed(0)))
    return seen[0]


def _step_reach(features: torch.Tensor) -> float:
    """How far one heatmap value moves per unit sign step on every predictor weight: mean L1 over channels."""
    return float(features.abs().sum(1).mean())


def test_pose_v2p_predictor_reads_a_normalised_level_as_v1_does() -> None:
    v1 = _step_reach(_predictor_input("pose", "v1", "final_layer"))
    v2p = _predictor_input("pose", "v2p", "final_layer")
    assert float(v2p.min()) >= 0.0  # ReLU'd, like V1's branch map
    # without level_norm this ratio is ~10 (the raw level: std ~8, zero mean, 64 channels)
    assert _step_reach(v2p) < 2.0 * v1
    # the raw level itself: still the unnormalised HRFPN output, several times the backbone's scale
    raw = _predictor_input("pose", "v2p", "level_norm")
    assert _step_reach(raw) > 5.0 * v1


def test_pose_v2_mixes_and_normalises_the_concatenation_before_the_predictor() -> None:
    """The same mechanism on V2: 240 concatenated channels reach ~11x V1's; the official V2 head's
    1x1 conv + BN + ReLU brings it to ~2.7x."""
    v1 = _step_reach(_predictor_input("pose", "v1", "final_layer"))
    raw = _step_reach(_predictor_input("pose", "v2", "level_norm"))
    v2 = _predictor_input("pose", "v2", "final_layer")
    assert raw > 8.0 * v1
    assert float(v2.min()) >= 0.0 and _step_reach(v2) < 3.0 * v1


def test_segmentation_v2p_already_normalises_in_its_head() -> None:
    v2 = _step_reach(_predictor_input("segmentation", "v2", "last_layer.3"))
    v2p = _step_reach(_predictor_input("segmentation", "v2p", "last_layer.3"))
    assert v2p < 2.0 * v2  # last_layer's conv + BN + ReLU already rescales the level


def test_pose_v2p_computes_one_level_and_detection_keeps_hrfpn() -> None:
    with torch.device("meta"):  # shapes only: count_macs runs on meta
        pose = create_model(SMALL, head="v2p", pyramid_channels=CHANNELS)
        v2 = create_model(SMALL, head="v2")
        v1_keys = create_model(SMALL, head="v1").state_dict()
        detection = create_backbone(SMALL, head="v2p", pyramid_channels=CHANNELS)
    assert len(pose.neck.fpn_convs) == 1
    # every multiply-add beyond V2 is the 1x1 reduction and one 3x3 conv at stride 4 (no other
    # level) and the predictor's input width, less V2's own 1x1 mix; BatchNorm and ReLU count none
    h, w = 64 // 4, 48 // 4
    concat = pose.neck.reduction_conv.in_channels
    extra = h * w * (concat * CHANNELS + 9 * CHANNELS * CHANNELS + 17 * (CHANNELS - concat) - concat * concat)
    assert count_macs(pose, (64, 48)) - count_macs(v2, (64, 48)) == extra
    assert isinstance(pose.level_norm[0], nn.BatchNorm2d) and isinstance(pose.level_norm[1], nn.ReLU)
    assert not any(k.startswith("level_norm") for k in v1_keys)
    assert sorted({k.rsplit(".", 1)[0] for k in detection.state_dict() if k.startswith("neck.")}) == [
        "neck.fpn_convs.0", "neck.fpn_convs.1", "neck.fpn_convs.2", "neck.fpn_convs.3", "neck.fpn_convs.4",
        "neck.reduction_conv",
    ]  # fmt: skip
    assert not any(isinstance(m, nn.BatchNorm2d) for m in detection.neck.modules())


@pytest.mark.parametrize("head", ["v1", "v2", "v2p"])
def test_pose_heads_start_at_a_similar_heatmap_scale(head: str) -> None:
    torch.manual_seed(0)
    model = create_model(SMALL, head=head, pyramid_channels=CHANNELS).train()
    with torch.no_grad():
        out = model(torch.randn(4, 3, 128, 96, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (4, 17, 32, 24)
    assert float(out.std()) < 0.05  # the unnormalised V2p level started ~5x V1's 0.01
