"""Checkpoint loading: official pose / segmentation / ImageNet layouts, timm as executable reference."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import timm  # a dev dependency: missing, these tests fail rather than skip
import torch

from hrnet.models import CheckpointError, create_backbone, create_model, load_pretrained, read_state_dict

SMALL = "hrnet_w18_small"


class _Payload:
    """Any custom class: pickling it makes a checkpoint unsafe to load with weights_only=True."""

    def __init__(self) -> None:
        self.value = 3


def _calibrate_bn(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Give every BN layer non-trivial running statistics (one train-mode pass, cumulative average)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


def _official_pose_layout(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our pose model's state dict renamed to the flat keys of pose_hrnet_w32_256x192.pth."""
    return {k.removeprefix("backbone."): v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", ["hrnet_w18_small", pytest.param("hrnet_w32", marks=pytest.mark.slow)])
def test_timm_checkpoint_reproduces_timm_features(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    reference = timm.create_model(name, pretrained=False)  # ImageNet layout: incre/downsamp/final/classifier
    _calibrate_bn(reference, x)
    path = tmp_path / f"{name}_timm.pth"
    torch.save(reference.state_dict(), path)

    # timm features_only, plain branch outputs (the default feature_location="incre" would add incre modules)
    features = timm.create_model(name, pretrained=False, features_only=True, feature_location="")
    result = features.load_state_dict(reference.state_dict(), strict=False)
    assert not result.missing_keys
    features.eval()
    branch_idx = [i for i, r in enumerate(features.feature_info.reduction()) if r >= 4]
    assert [features.feature_info.reduction()[i] for i in branch_idx] == [4, 8, 16, 32]

    ours = create_backbone(name, head=None, pretrained=path).eval()
    pose = create_model(name, task="pose", head="v1", pretrained=path).eval()
    with torch.no_grad():
        expected = features(x)
        got = ours(x)
        got_v1 = pose.neck(pose.backbone(x))["0"]
    assert len(got) == 4
    for i, out in zip(branch_idx, got, strict=True):
        assert out.shape == expected[i].shape
        assert (out - expected[i]).abs().max().item() < 1e-5
    assert (got_v1 - expected[branch_idx[0]]).abs().max().item() < 1e-5


def test_timm_default_features_only_state_dict_loads(tmp_path: Path, caplog) -> None:
    feats = timm.create_model(SMALL, pretrained=False, features_only=True)  # has incre_modules.*
    assert any(k.startswith("incre_modules.") for k in feats.state_dict())
    path = tmp_path / "timm_features.pth"
    torch.save(feats.state_dict(), path)
    model = create_model(SMALL, task="segmentation", head="v2", num_outputs=3)
    with caplog.at_level(logging.WARNING, logger="hrnet.models.weights"):
        report = load_pretrained(model, path)
    assert report.ignored and all(k.startswith("incre_modules.") for k in report.ignored)
    assert all(k.startswith("last_layer.") for k in report.missing)
    assert sum(1 for r in caplog.records if r.name == "hrnet.models.weights") == 1  # one message
    assert "incre_modules" in caplog.text and "last_layer.3" in caplog.text


def test_imagenet_head_is_ignored_not_loaded_into_pose_head(tmp_path: Path) -> None:
    ref = timm.create_model(SMALL, pretrained=False)
    path = tmp_path / "imagenet.pth"
    torch.save(ref.state_dict(), path)
    model = create_model(SMALL)
    head_before = model.final_layer.weight.clone()
    report = load_pretrained(model, path)
    assert torch.equal(model.final_layer.weight, head_before)
    assert {"final_layer.0.weight", "classifier.weight", "downsamp_modules.0.0.weight"} <= set(report.ignored)
    assert set(report.missing) == {"final_layer.weight", "final_layer.bias"}
    # the V1 model lacks the last module's lower-branch fusion: those keys are ignored, not an error
    assert "stage4.0.fuse_layers.1.0.0.0.weight" in report.ignored
    assert torch.equal(model.backbone.conv1.weight, ref.conv1.weight)


def test_official_pose_layout_loads_with_no_unused_key(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = create_model(SMALL).eval()
    _calibrate_bn(source, torch.randn(2, 3, 64, 48))
    state = _official_pose_layout(source)
    assert (
        "conv1.weight" in state
        and "final_layer.weight" in state
        and "stage4.0.fuse_layers.0.1.0.weight" in state
    )
    path = tmp_path / "pose_hrnet_w18_small_256x192.pth"
    torch.save(state, path)
    target = create_model(SMALL, pretrained=path).eval()
    report = load_pretrained(target, path)
    assert report.clean and not report.ignored
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)


def test_pose_v1_checkpoint_into_v2_model_explains_itself(tmp_path: Path) -> None:
    path = tmp_path / "pose_v1.pth"
    torch.save(_official_pose_layout(create_model(SMALL)), path)
    with pytest.raises(CheckpointError, match="missing backbone keys") as exc:
        create_model(SMALL, head="v2", pretrained=path)
    assert "head='v1'" in str(exc.value)


@pytest.mark.slow  # > 10 s on 2 shared cores
def test_segmentation_layout_with_prefix_and_wrapper(tmp_path: Path) -> None:
    source = create_model(SMALL, task="segmentation", head="v2", num_outputs=19)
    state = {"model." + k.removeprefix("backbone."): v for k, v in source.state_dict().items()}
    state["loss.criterion.weight"] = torch.ones(19)
    path = tmp_path / "seg.pth"
    torch.save({"state_dict": state, "epoch": 3, "best_mIoU": 0.5}, path)
    target = create_model(SMALL, task="segmentation", head="v2", num_outputs=19, pretrained=path)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    report = load_pretrained(target, path)
    assert report.ignored == ["loss.criterion.weight"] and not report.missing

    other = create_model(SMALL, task="segmentation", head="v2", num_outputs=7)
    report = load_pretrained(other, path)  # classifier of another class count: skipped, rest loaded
    assert [s.split(" ")[0] for s in report.skipped] == ["last_layer.3.weight", "last_layer.3.bias"]
    assert torch.equal(other.last_layer[0].weight, source.last_layer[0].weight)


def test_own_v2p_checkpoint_and_mmdet_neck_names(tmp_path: Path) -> None:
    source = create_backbone(SMALL, head="v2p")
    mm = {}
    for k, v in source.state_dict().items():
        k = k.replace("neck.reduction_conv.", "neck.reduction_conv.conv.")
        for i in range(5):
            k = k.replace(f"neck.fpn_convs.{i}.", f"neck.fpn_convs.{i}.conv.")
        mm[k] = v
    path = tmp_path / "mmdet.pth"
    torch.save({"state_dict": mm}, path)
    target = create_backbone(SMALL, head="v2p")
    report = load_pretrained(target, path)
    assert report.clean
    assert torch.equal(target.neck.fpn_convs[4].weight, source.neck.fpn_convs[4].weight)


def test_wrong_width_names_both_widths(tmp_path: Path) -> None:
    path = tmp_path / "w16.pth"
    torch.save(create_model(SMALL).state_dict(), path)
    with pytest.raises(CheckpointError) as exc:
        create_model("hrnet_w18_small_v2", pretrained=path)
    message = str(exc.value)
    assert str(path) in message
    assert "HRNet-W16 (stage2 widths 16/32)" in message
    assert "hrnet_w18_small_v2 (18/36)" in message


def test_depth_mismatch_is_refused(tmp_path: Path) -> None:
    state = _official_pose_layout(create_model(SMALL))
    state["stage3.1.branches.0.0.conv1.weight"] = torch.zeros(16, 16, 3, 3)  # a module the model lacks
    del state["layer1.0.conv3.weight"]
    path = tmp_path / "deeper.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as exc:
        create_model(SMALL, pretrained=path)
    message = str(exc.value)
    assert "unexpected backbone keys" in message and "stage3.1.branches.0.0.conv1.weight" in message
    assert "missing backbone keys" in message and "layer1.0.conv3.weight" in message


def test_pickled_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"x": _Payload(), "conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="refusing to load") as exc:
        read_state_dict(path)
    assert str(path) in str(exc.value)
    with pytest.raises(CheckpointError, match="evil.pth"):
        create_model(SMALL, pretrained=path)


def test_missing_file_and_empty_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "nope.pth")
    path = tmp_path / "empty.pth"
    torch.save({"epoch": 1}, path)
    with pytest.raises(CheckpointError, match="no tensors"):
        read_state_dict(path)
