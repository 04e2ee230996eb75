"""ResNet-FPN detection backbones (model.name resnet18 | resnet50): their levels, every framework on
them, ImageNet weights from a file (and refusals of the wrong file), and the params that allow them."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torchvision
import yaml
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from hrnet.models import CheckpointError, create_backbone, create_model, list_models, load_pretrained
from hrnet.models.detection import build_detector
from hrnet.models.registries import DETECTORS
from hrnet.models.resnet_fpn import ResNetFPN, name_of_file
from pipeline.common import check_pretrained
from pipeline.params import ConfigError, parse_params

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
IMAGE = [torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))]


def _target() -> list[dict[str, torch.Tensor]]:
    masks = torch.zeros(1, 64, 64, dtype=torch.uint8)
    masks[0, 12:52, 8:40] = 1  # mask frameworks read it, the others ignore it
    return [{"boxes": torch.tensor([[8.0, 12.0, 40.0, 52.0]]), "labels": torch.tensor([1]), "masks": masks}]


def _imagenet_file(tmp_path: Path, name: str, seed: int = 0) -> Path:
    """A state dict laid out as torchvision saves its ImageNet weights (random values)."""
    torch.manual_seed(seed)
    path = tmp_path / f"{name}-imagenet.pth"
    torch.save(getattr(torchvision.models, name)(weights=None).state_dict(), path)
    return path


@pytest.mark.parametrize(("name", "bottleneck"), [("resnet18", False), ("resnet50", True)])
def test_levels_are_p2_to_p6_finest_first_at_the_pyramid_width(name: str, bottleneck: bool) -> None:
    features = create_backbone(name, pyramid_channels=32)
    assert isinstance(features, ResNetFPN) and features.out_channels == 32
    assert features.strides == (4, 8, 16, 32, 64)
    with torch.no_grad():
        levels = features(torch.zeros(1, 3, 64, 64))
    assert list(levels) == ["0", "1", "2", "3", "4"]
    assert [tuple(v.shape) for v in levels.values()] == [
        (1, 32, 64 // s, 64 // s) for s in (4, 8, 16, 32)
    ] + [(1, 32, 1, 1)]
    # layer1 is 64 wide in resnet18 (basic blocks), 256 in resnet50 (bottlenecks x4)
    assert features.fpn.inner_blocks[0][0].in_channels == (256 if bottleneck else 64)
    # from scratch: trainable BatchNorm everywhere, every parameter learns
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in features.modules())
    assert all(p.requires_grad for p in features.parameters())


@pytest.mark.parametrize("detector", list(DETECTORS.names()))
def test_every_framework_trains_on_resnet18(detector: str) -> None:
    torch.manual_seed(0)
    # 64 wide: FCOS's GroupNorm(32) on the 1x1 stride-64 level needs more than 32 channels
    model = build_detector("resnet18", num_classes=2, detector=detector, min_size=64, max_size=64,
                           pyramid_channels=64, representation_size=32)  # fmt: skip
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    totals = []
    for step in range(6):
        total = sum(model(IMAGE, _target()).values())
        # untrained: the losses sum well above 0.1 (measured 1.6-4.9)
        assert torch.isfinite(total) and float(total.detach()) > (0.1 if step == 0 else 0), totals
        optimizer.zero_grad()
        total.backward()
        if step == 0:  # the gradient reaches the ResNet's first conv
            assert float(model.backbone.body.conv1.weight.grad.abs().sum()) > 0
        optimizer.step()
        totals.append(float(total.detach()))
    assert totals[-1] < totals[0], totals  # six steps on one image lower the loss
    model.eval()
    with torch.no_grad():
        assert {"boxes", "scores", "labels"} <= set(model(IMAGE)[0])


def test_imagenet_file_loads_into_frozen_batchnorm_with_three_trainable_layers(tmp_path: Path) -> None:
    path = _imagenet_file(tmp_path, "resnet18")
    expected = torch.load(path, weights_only=True)
    model = build_detector("resnet18", num_classes=2, min_size=64, max_size=64, pretrained=path,
                           pyramid_channels=32)  # fmt: skip
    body = model.backbone.body.state_dict()
    loaded = [k for k in expected if not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
    assert len(loaded) == 100  # resnet18: 20 convs, 20 BN x 4 tensors
    for key in loaded:
        assert torch.equal(body[key], expected[key]), key
    assert isinstance(model.backbone.body.bn1, FrozenBatchNorm2d)
    trainable = {k.split(".")[0] for k, p in model.backbone.body.named_parameters() if p.requires_grad}
    assert trainable == {"layer2", "layer3", "layer4"}  # torchvision's trainable_layers=3
    assert all(p.requires_grad for p in model.backbone.fpn.parameters())


def test_a_checkpoint_of_this_projects_detector_loads_with_its_fpn(tmp_path: Path) -> None:
    torch.manual_seed(1)
    trained = build_detector("resnet18", num_classes=2, min_size=64, max_size=64, pyramid_channels=32)
    lightning = {"state_dict": {f"model.{k}": v for k, v in trained.state_dict().items()}, "epoch": 3}
    torch.save(lightning, tmp_path / "model.ckpt")
    torch.manual_seed(2)
    features = create_backbone("resnet18", pretrained=tmp_path / "model.ckpt", pyramid_channels=32)
    for key, value in features.state_dict().items():
        assert torch.equal(value, trained.backbone.state_dict()[key]), key
    # hrnet.load_pretrained dispatches a model holding a ResNet-FPN to the same loader
    model = build_detector("resnet18", num_classes=2, min_size=64, max_size=64, pyramid_channels=32)
    report = load_pretrained(model, tmp_path / "model.ckpt")
    assert "backbone.fpn.layer_blocks.0.0.weight" in report.loaded and report.model_name == "resnet18"
    assert torch.equal(
        model.backbone.fpn.layer_blocks[0][0].weight, trained.backbone.fpn.layer_blocks[0][0].weight
    )


def test_a_file_of_another_architecture_is_refused_in_one_line(tmp_path: Path) -> None:
    resnet50 = _imagenet_file(tmp_path, "resnet50")
    with pytest.raises(CheckpointError) as exc:
        create_backbone("resnet18", pretrained=resnet50)
    message = str(exc.value)
    assert "\n" not in message and str(resnet50) in message and "resnet18" in message
    assert "unexpected (first: body.layer1.0.bn3" in message and "resnet18-f37072fd.pth" in message
    hrnet = tmp_path / "hrnet.pth"
    torch.save(create_model("hrnet_w18_small", task="pose").state_dict(), hrnet)
    with pytest.raises(
        CheckpointError, match=r"is not a torchvision resnet50 state dict: ResNet keys \d+ missing"
    ):
        create_backbone("resnet50", pretrained=hrnet)
    # the pipeline's check before any work: the right file passes, the wrong one is one line naming the key
    right = {"task": "detection", "model": {"name": "resnet50", "pretrained": str(resnet50)}}
    assert check_pretrained(parse_params(right)) is None
    params = parse_params({"task": "detection", "model": {"name": "resnet18", "pretrained": str(resnet50)}})
    with pytest.raises(
        ConfigError,
        match=r"^model\.pretrained: checkpoint .*resnet50-imagenet\.pth is not a torchvision resnet18",
    ):
        check_pretrained(params)


def test_hrnet_only_options_and_heads_are_refused_on_a_resnet() -> None:
    with pytest.raises(ValueError, match="head 'v1' does not apply to resnet18"):
        create_backbone("resnet18", head="v1")
    with pytest.raises(
        ValueError, match="model option fusion='final' applies to HRNet only; resnet18 expects 'full'"
    ):
        build_detector("resnet18", model_options={"fusion": "final"})
    build_detector(
        "resnet18", min_size=64, max_size=64, model_options={"fusion": "full", "align_corners": False}
    )
    with pytest.raises(ValueError, match="resnet50 is a ResNet-FPN detection backbone"):
        create_model("resnet50", task="pose")
    assert list_models(task="detection")[-2:] == ["resnet18", "resnet50"]
    assert "resnet18" not in list_models()
    assert name_of_file("resnet50") == "resnet50-0676ba61.pth"


def _params(**changes: object) -> dict:
    raw = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[leaf] = value
    return raw


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"task": "pose"},
            "model.name: 'resnet50' is a ResNet-FPN detection backbone; task 'pose' expects an HRNet",
        ),
        ({"task": "segmentation"}, "task 'segmentation' expects an HRNet variant"),
        (
            {"model.head": "v2"},
            "model.head: resnet50 has its own FPN pyramid; expected null or v2p, got 'v2'",
        ),
        (
            {"model.streams": "parallel"},
            "model.streams: applies to HRNet only; resnet50 expects 'progressive'",
        ),
        ({"model.align_corners": True}, "model.align_corners: applies to HRNet only"),
    ],
)
def test_params_refuse_a_resnet_outside_detection_or_with_hrnet_options(changes: dict, expected: str) -> None:
    raw = _params(**{"task": "detection", "model.name": "resnet50", **changes})
    with pytest.raises(ConfigError) as exc:
        parse_params(raw)
    assert expected in str(exc.value) and "\n" not in str(exc.value)


def test_params_accept_a_resnet_for_detection() -> None:
    params = parse_params(_params(**{"task": "detection", "model.name": "resnet18"}))
    assert (params.model.name, params.model.head) == ("resnet18", "v2p")  # head null: the task's default
    assert params.model_name == "detection_resnet18_v2p_128"
    with pytest.raises(ConfigError, match="model.name: expected one of .*'resnet50'.*got 'resnet34'"):
        parse_params(_params(**{"task": "detection", "model.name": "resnet34"}))


def test_no_model_is_frozen_by_accident() -> None:
    """A resnet built without weights must learn all of it (the HRNet variants do too)."""
    model = build_detector("resnet50", min_size=64, max_size=64, pyramid_channels=16)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen == []
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.backbone.body.modules()) == 53


def test_a_resnet_fpn_detector_scripts_as_the_default_package_does() -> None:
    """package.format torch_export packages a detector as TorchScript with a traced backbone; ONNX
    export was checked by hand (graphs within 7e-6 of PyTorch) and is left to the slow package tests."""
    from hrnet.tasks.detection.inference import script_detector

    torch.manual_seed(0)
    model = build_detector("resnet18", num_classes=3, min_size=64, max_size=64, pyramid_channels=32,
                           score_threshold=0.0, representation_size=32).eval()  # fmt: skip
    with torch.no_grad():
        eager = model(IMAGE)[0]
        scripted = script_detector(model, (64, 64))(IMAGE)[1][0]
    assert len(eager["boxes"]) > 0 and torch.allclose(eager["boxes"], scripted["boxes"], atol=1e-4)
