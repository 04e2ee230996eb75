"""The paper's architecture ablations as options (fusion, fusion_downsample, fusion_op, streams),
the pose resolution study (read_branch), V2p for dense tasks and align_corners."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch
import yaml
from conftest import ROOT, project_env, tiny_params

from hrnet.models import CheckpointError, create_backbone, create_model, load_pretrained
from hrnet.models.summary import count_macs, count_parameters
from hrnet.tasks.segmentation.module import SegmentationModule
from pipeline.params import ConfigError, parse_params

SMALL = "hrnet_w18_small"  # 1 + 1 + 1 modules
X = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _build(name: str = SMALL, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, **options).eval()


@pytest.mark.parametrize(
    ("name", "fusion", "units"),
    [
        ("hrnet_w32", "full", 8),  # 1 + 4 + 3, the paper's "8 fusions"
        ("hrnet_w32", "across_stage", 3),
        ("hrnet_w32", "final", 1),
        (SMALL, "across_stage", 3),
        (SMALL, "final", 1),
    ],
)
def test_number_of_fusion_units(name: str, fusion: str, units: int) -> None:
    with torch.device("meta"):
        model = create_model(name, head="v2", fusion=fusion)
    assert model.backbone.num_fusion_units == units
    fused = [m for m in model.backbone.modules() if getattr(m, "fuse_layers", None) is not None]
    assert len(fused) == units


@pytest.mark.parametrize(
    ("name", "count_macs_too"), [(SMALL, True), ("hrnet_w18_small_v2", True), ("hrnet_w32", False)]
)
def test_parallel_streams_match_complexity(name: str, count_macs_too: bool) -> None:
    with torch.device("meta"):
        progressive = create_model(name, head="v2")
        parallel = create_model(name, head="v2", streams="parallel")
    # four streams from stage 2 on, the same number of blocks in every stream
    assert [len(stage[0].branches) for stage in (parallel.backbone.stage2, parallel.backbone.stage4)] == [
        4,
        4,
    ]
    depths = {len(branch) for m in parallel.backbone.stage2 for branch in m.branches}
    assert len(depths) == 1
    assert parallel.backbone.num_fusion_units == progressive.backbone.num_fusion_units
    # the backbones are matched; a task head sized by the concatenated width (pose V2's 1x1 mix) is not
    progressive, parallel = progressive.backbone, parallel.backbone
    p0, p1 = count_parameters(progressive), count_parameters(parallel)
    assert abs(p1 / p0 - 1) <= 0.10, (p0, p1)
    if count_macs_too:  # W32's count takes minutes on a loaded 2-core runner; its layout is searched alike
        m0, m1 = count_macs(progressive, (128, 96)), count_macs(parallel, (128, 96))
        assert abs(m1 / m0 - 1) <= 0.10, (m0, m1)


def test_multiply_changes_the_output_with_the_same_weights() -> None:
    summed, multiplied = _build(), _build(fusion_op="multiply")
    state = summed.state_dict()
    assert state.keys() == multiplied.state_dict().keys()
    multiplied.load_state_dict(state)
    with torch.no_grad():
        a, b = summed(X), multiplied(X)
    assert a.shape == b.shape == (1, 17, 16, 16)
    assert not torch.allclose(a, b)


def test_bilinear_downsampling_has_no_strided_fusion_convs() -> None:
    model = _build(fusion_downsample="bilinear")
    fuse_convs = [
        m for n, m in model.backbone.named_modules() if "fuse_layers" in n and isinstance(m, torch.nn.Conv2d)
    ]
    assert fuse_convs and all(m.stride == (1, 1) and m.kernel_size == (1, 1) for m in fuse_convs)
    with torch.no_grad():
        assert model(X).shape == (1, 17, 16, 16)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"fusion": "across_stage"},
        {"fusion": "final"},
        {"fusion_downsample": "bilinear"},
        {"fusion_op": "multiply"},
        {"streams": "parallel"},
    ],
)
@pytest.mark.parametrize(("task", "head", "channels"), [("pose", "v1", 17), ("segmentation", "v2", 19)])
def test_every_variant_gives_the_task_shapes(options: dict, task: str, head: str, channels: int) -> None:
    model = _build(task=task, head=head, num_outputs=channels, **options)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 96))
    assert out.shape == (2, channels, 16, 24)
    assert torch.isfinite(out).all()


def test_read_branch_reads_a_coarser_branch_at_the_target_size() -> None:
    outputs = []
    for branch in range(4):
        model = _build(read_branch=branch)
        assert model.neck.strides == (4 * 2**branch,)
        with torch.no_grad():
            outputs.append(model(X))
        assert outputs[-1].shape == (1, 17, 16, 16)
    assert not torch.allclose(outputs[0], outputs[3])
    with pytest.raises(ValueError, match="read_branch=2 needs a heatmap model \\(pose\\) with head 'v1'"):
        create_model(SMALL, head="v2", read_branch=2)
    with pytest.raises(ValueError, match="read_branch must be in 0..3"):
        create_model(SMALL, read_branch=4)


def test_dense_v2p_computes_only_the_finest_level() -> None:
    model = _build(head="v2p", pyramid_channels=32)
    assert len(model.neck.fpn_convs) == 1 and model.neck.out_channels == 32
    with torch.no_grad():
        assert model(X).shape == (1, 17, 16, 16)
    assert len(create_backbone(SMALL, head="v2p", pyramid_channels=32).neck.fpn_convs) == 5


def test_official_checkpoints_load_only_into_the_official_architecture(tmp_path) -> None:
    path = tmp_path / "official.pth"
    torch.save(_build().state_dict(), path)
    assert load_pretrained(_build(), path).loaded
    for options, named in [
        ({"fusion_op": "multiply"}, "fusion_op=multiply"),
        ({"fusion": "final"}, "fusion=final"),
    ]:
        with pytest.raises(CheckpointError) as info:
            load_pretrained(_build(**options), path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message and named in message
        assert "load only into the official architecture" in message


def test_align_corners_governs_v2_concat_and_the_segmentation_logits(monkeypatch) -> None:
    modules = {}
    for align in (False, True):
        module = SegmentationModule(SMALL, head="v2", num_classes=3, model_options={"align_corners": align})
        modules[align] = module.eval()
        assert module.align_corners is align and module.model.backbone.config.align_corners is align
    modules[True].load_state_dict(modules[False].state_dict())
    with torch.no_grad():
        features = modules[False].model.backbone(X)  # the same features into both necks: the V2 concat
        concat = {align: m.model.neck(features)["0"] for align, m in modules.items()}
        assert not torch.allclose(concat[False], concat[True])
        logits = torch.randn(1, 3, 16, 16)
        upsampled = {}
        for align, module in modules.items():  # the same logits: the upsampling for loss and metrics
            monkeypatch.setattr(module, "forward", lambda images: logits)
            upsampled[align] = module.logits_at(X, (64, 64))
        assert not torch.allclose(upsampled[False], upsampled[True])


def _params(**model) -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["model"].update(model)
    return raw


def test_params_schema_takes_the_variants() -> None:
    params = parse_params(
        _params(fusion="final", fusion_op="multiply", streams="parallel", pyramid_channels=32)
    )
    options = params.model.architecture()
    assert options == {
        "pyramid_channels": 32,
        "align_corners": False,
        "fusion": "final",
        "fusion_downsample": "strided_conv",
        "fusion_op": "multiply",
        "streams": "parallel",
    }
    with pytest.raises(ConfigError, match="model.fusion: Input should be 'full', 'across_stage' or 'final'"):
        parse_params(_params(fusion="none"))
    moved = _params()
    moved["detection"]["pyramid_channels"] = 256
    with pytest.raises(ConfigError, match="detection.pyramid_channels is now 'model.pyramid_channels'"):
        parse_params(moved)
    branch = _params(head="v2p")
    branch["pose"]["read_branch"] = 2
    with pytest.raises(ConfigError, match="pose.read_branch: 2 reads one branch, which needs model.head v1"):
        parse_params(branch)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "overrides"),
    [
        (
            "pose",
            ["model.fusion=final", "model.fusion_downsample=bilinear", "model.fusion_op=multiply"]
            + ["model.streams=parallel", "pose.read_branch=1"],
        ),
        ("segmentation", ["model.head=v2p", "model.align_corners=true", "model.fusion=across_stage"]),
    ],
)
def test_variants_train_and_evaluate_through_dvc(project, task: str, overrides: list[str]) -> None:
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params(task=task), sort_keys=False))
    subprocess.run(["git", "commit", "-qam", "tiny"], cwd=project, check=True, env=project_env())
    command = ["dvc", "exp", "run", *(arg for o in overrides for arg in ("-S", o))]
    result = subprocess.run(
        command, cwd=project, env=project_env(), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["task"] == task
    assert 0.0 <= metrics["AP" if task == "pose" else "mIoU"] <= 1.0
