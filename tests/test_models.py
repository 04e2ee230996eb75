"""HRNet model family: configs, parameter counts, official key names, heads x tasks, fusion."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from hrnet.models import (
    MODEL_CONFIGS,
    HighResolutionModule,
    HighResolutionNet,
    create_backbone,
    create_model,
    get_config,
    list_models,
)
from hrnet.models.factory import dense_tasks
from hrnet.models.registries import NECKS

SMALL = "hrnet_w18_small"


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_list_models_has_all_variants() -> None:
    expected = {
        "hrnet_w18_small",
        "hrnet_w18_small_v2",
        "hrnet_w18",
        "hrnet_w30",
        "hrnet_w32",
        "hrnet_w40",
        "hrnet_w44",
        "hrnet_w48",
        "hrnet_w64",
    }
    assert set(list_models()) == expected
    assert list_models() == sorted(expected)


def test_configs_are_frozen_data() -> None:
    cfg = get_config("hrnet_w32")
    assert cfg.width == 32 and cfg.branch_channels == (32, 64, 128, 256)
    assert [s.num_modules for s in cfg.stages] == [1, 1, 4, 3]
    assert [s.block for s in cfg.stages] == ["bottleneck", "basic", "basic", "basic"]
    assert [s.num_branches for s in cfg.stages] == [1, 2, 3, 4]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.stem_width = 32  # type: ignore[misc]
    assert MODEL_CONFIGS["hrnet_w18_small_v2"].stages[3].num_modules == 2


@pytest.mark.parametrize(
    ("name", "task", "head", "outputs", "expected_m", "exact"),
    [
        ("hrnet_w32", "pose", "v1", 17, 28.5, 28_536_113),
        ("hrnet_w48", "pose", "v1", 17, 63.6, None),
        ("hrnet_w48", "segmentation", "v2", 19, 65.9, None),
        ("hrnet_w18_small_v2", "segmentation", "v2", 19, 3.9, None),
        ("hrnet_w18_small", "segmentation", "v2", 19, 1.5, None),
    ],
)
def test_parameter_counts_match_paper(name, task, head, outputs, expected_m, exact) -> None:
    with torch.device("meta"):  # no memory, no init cost
        model = create_model(name, task=task, head=head, num_outputs=outputs)
    count = n_params(model)
    assert round(count / 1e6, 1) == expected_m
    if exact is not None:
        assert count == exact


def test_state_dict_names_mirror_official_code() -> None:
    with torch.device("meta"):
        v1 = create_model("hrnet_w32").state_dict()
        v2 = create_model("hrnet_w32", head="v2").state_dict()
    for key in (
        "backbone.conv1.weight",
        "backbone.bn2.running_var",
        "backbone.layer1.0.downsample.0.weight",
        "backbone.layer1.3.conv3.weight",
        "backbone.transition1.0.0.weight",
        "backbone.transition1.1.0.0.weight",
        "backbone.transition3.3.0.0.weight",
        "backbone.stage2.0.branches.1.3.bn2.bias",
        "backbone.stage3.3.fuse_layers.2.0.1.0.weight",
        "backbone.stage4.2.fuse_layers.0.3.0.weight",
        "final_layer.weight",
    ):
        assert key in v1, key
    # pose V1: the last module fuses into branch 0 only; V2 keeps every output
    assert "backbone.stage4.2.fuse_layers.1.0.0.0.weight" not in v1
    assert "backbone.stage4.2.fuse_layers.3.2.0.0.weight" in v2


def test_backbone_feature_info_and_outputs() -> None:
    backbone = create_backbone(SMALL, head=None).eval()
    assert isinstance(backbone, HighResolutionNet)
    assert backbone.out_channels == [16, 32, 64, 128]
    assert [f["reduction"] for f in backbone.feature_info] == [4, 8, 16, 32]
    assert [f["num_chs"] for f in backbone.feature_info] == backbone.out_channels
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 16, 16), (1, 32, 8, 8), (1, 64, 4, 4), (1, 128, 2, 2)]
    single = HighResolutionNet(get_config(SMALL), multi_scale_output=False)
    assert single.out_channels == [16] and len(single.feature_info) == 1


@pytest.mark.parametrize("task", dense_tasks())  # detection: tests/test_detection_module.py
@pytest.mark.parametrize("head", NECKS.names())
def test_every_head_serves_every_task(task: str, head: str) -> None:
    model = create_model(SMALL, task=task, head=head, num_outputs=5).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 48))
    assert out.shape == (2, 5, 16, 12)
    assert hasattr(model, "backbone") and hasattr(model, "neck")
    assert hasattr(model, "final_layer" if task == "pose" else "last_layer")


def test_segmentation_head_layout_and_channels() -> None:
    model = create_model(SMALL, task="segmentation", head="v2", num_outputs=19)
    keys = model.state_dict().keys()
    assert {"last_layer.0.weight", "last_layer.1.running_mean", "last_layer.3.bias"} <= set(keys)
    assert model.neck.out_channels == 15 * 16  # C + 2C + 4C + 8C


def test_training_step_backward_runs() -> None:
    """In-place additions in blocks and fusion must be autograd-safe."""
    for head in ("v1", "v2"):
        model = create_model(SMALL, head=head).train()
        out = model(torch.randn(2, 3, 64, 64))
        out.square().mean().backward()
        assert all(p.grad is not None for p in model.backbone.parameters())


@pytest.mark.parametrize("head", NECKS.names())
def test_create_backbone_returns_torchvision_style_features(head: str) -> None:
    model = create_backbone(SMALL, head=head).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 128, 96))
    assert isinstance(feats, OrderedDict)
    assert list(feats) == [str(i) for i in range(len(model.strides))]
    for (_, f), stride in zip(feats.items(), model.strides, strict=True):
        assert f.shape == (1, model.out_channels, -(-128 // stride), -(-96 // stride))  # ceil
    if head == "v2p":
        assert model.out_channels == 256 and model.strides == (4, 8, 16, 32, 64)
    else:
        assert model.strides == (4,)
        assert model.out_channels == (16 if head == "v1" else 240)


def test_v2p_is_default_detection_backbone() -> None:
    model = create_backbone(SMALL)
    assert model.out_channels == 256 and len(model.strides) == 5


def test_v2p_pyramid_width_is_configurable() -> None:
    model = create_backbone(SMALL, head="v2p", pyramid_channels=64).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 64))
    assert model.out_channels == 64 and all(f.shape[1] == 64 for f in feats.values())
    assert create_backbone(SMALL, head="v2", pyramid_channels=64).out_channels == 240  # v2p only


def _naive_fusion(module: HighResolutionModule, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    xs = [branch(x) for branch, x in zip(module.branches, xs, strict=True)]
    outs = []
    for i, paths in enumerate(module.fuse_layers):
        total = torch.zeros_like(xs[i])
        for j, path in enumerate(paths):
            y = path(xs[j])
            if j > i:
                y = F.interpolate(y, scale_factor=2 ** (j - i), mode="nearest")
            total = total + y
        outs.append(F.relu(total))
    return outs


def test_fusion_matches_naive_sum_and_leaves_inputs_alone() -> None:
    torch.manual_seed(0)
    stage = get_config(SMALL).stages[3]
    module = HighResolutionModule([16, 32, 64, 128], stage).eval()
    xs = [torch.randn(2, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate((16, 32, 64, 128))]
    before = [x.clone() for x in xs]
    with torch.no_grad():
        fast = module(list(xs))
        ref = _naive_fusion(module, list(xs))
    for a, b in zip(fast, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for x, x0 in zip(xs, before, strict=True):
        assert torch.equal(x, x0)


def test_upsample_mode_override_and_odd_input_sizes() -> None:
    model = create_model(SMALL, upsample_mode="bilinear", head="v2").eval()
    assert model.backbone.config.upsample_mode == "bilinear"
    assert model.backbone.stage2[0].upsample_mode == "bilinear"
    with torch.no_grad():
        out = model(torch.randn(1, 3, 70, 50))  # not a multiple of 32: sizes come from the target map
    assert out.shape == (1, 17, 18, 13)


def test_unknown_names_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="hrnet_w32") as exc:
        create_model("hrnet_w33")
    assert "hrnet_w18_small_v2" in str(exc.value)
    with pytest.raises(ValueError, match="pose, segmentation, detection"):
        create_model(SMALL, task="keypoints")
    with pytest.raises(ValueError, match="v1, v2, v2p"):
        create_model(SMALL, head="v3")
    with pytest.raises(ValueError, match="v1, v2, v2p"):
        create_backbone(SMALL, head="fpn")
    with pytest.raises(TypeError, match="upsample_mode"):
        create_model(SMALL, upsampling="nearest")
    with pytest.raises(ValueError, match="upsample_mode"):
        create_model(SMALL, upsample_mode="bicubic")
