"""Detector assembly for every HRNet head, one real training step and a scored validation pass."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from hrnet.data.detection_dataset import DetectionDataModule
from hrnet.data.synthetic.coco_instances import CATEGORIES, generate_coco_detection
from hrnet.models.detection import SMALL_IMAGE_SETTINGS, build_detector, small_settings
from hrnet.models.registries import DETECTORS
from hrnet.tasks.detection import module as detection
from hrnet.tasks.detection.config import DetectionTestConfig
from hrnet.tasks.detection.module import DetectionModule, gather_predictions
from hrnet.tasks.optim import warmup_lambda

torch.set_num_threads(1)

SMALL = {**SMALL_IMAGE_SETTINGS, "representation_size": 64, "rpn_post_nms_top_n_test": 50}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_detection")
    generate_coco_detection(root, 2, 2, seed=0)
    return root


@pytest.mark.parametrize(
    ("head", "kind"), [("v1", "faster_rcnn"), ("v2", "faster_rcnn"), ("v2p", "faster_rcnn"), ("v2", "fcos")]
)
def test_head_trains_one_step_and_validates(tiny_root: Path, head: str, kind: str) -> None:
    pl.seed_everything(0)
    dm = DetectionDataModule(tiny_root, batch_size=2)
    kwargs = SMALL if kind == "faster_rcnn" else {"topk_candidates": 50}
    module = DetectionModule(
        head=head, num_classes=len(CATEGORIES), detector=kind, min_size=128, max_size=128, anchor_scale=4,
        detector_kwargs=kwargs, warmup_steps=1,
    )  # fmt: skip
    # parameters only: BatchNorm running statistics change on any training-mode forward pass
    before = {k: v.detach().clone() for k, v in module.model.named_parameters()}
    trainer = pl.Trainer(
        max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=1,
    )  # fmt: skip
    trainer.fit(module, dm)
    assert trainer.global_step == 1
    metrics = trainer.callback_metrics
    assert math.isfinite(float(metrics["train/loss_step"]))
    assert 0.0 <= float(metrics["val/AP"]) <= 1.0 and "val/AR100" in metrics
    assert any(not torch.equal(v, before[k]) for k, v in module.model.named_parameters())


def test_feature_levels_and_roi_levels() -> None:
    model = build_detector(head="v2p", num_classes=3, min_size=128, max_size=128, anchor_scale=4)
    assert model.roi_heads.box_roi_pool.featmap_names == ["0", "1", "2", "3"]
    assert model.rpn.anchor_generator.sizes == ((16,), (32,), (64,), (128,), (256,))
    assert model.roi_heads.box_predictor.cls_score.out_features == 4  # background + 3
    single = build_detector(head="v1", num_classes=3, min_size=128, max_size=128)
    assert single.roi_heads.box_roi_pool.featmap_names == ["0"]
    assert single.rpn.anchor_generator.sizes == ((32, 64, 128, 256, 512),)
    fcos = build_detector(head="v1", num_classes=3, detector="fcos", min_size=128, max_size=128)
    assert fcos.backbone.out_channels == 256 and fcos.anchor_generator.sizes == ((4,),)
    with pytest.raises(ValueError, match="unknown detector"):
        build_detector(detector="yolo")


def _pred(image_id: int) -> detection.Prediction:
    return image_id, np.zeros((1, 4)), np.ones(1), np.ones(1, dtype=np.int64)


def test_gather_predictions_dedupes_sampler_padding(monkeypatch) -> None:
    assert [p[0] for p in gather_predictions([_pred(3), _pred(1), _pred(3)])] == [1, 3]
    # two ranks; the distributed sampler padded rank 1 with image 1 again
    ranks = [[_pred(1), _pred(3)], [_pred(2), _pred(1)]]

    def all_gather_object(out: list, obj: list) -> None:
        out[:] = ranks

    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    monkeypatch.setattr(torch.distributed, "all_gather_object", all_gather_object)
    assert [p[0] for p in gather_predictions(ranks[0])] == [1, 2, 3]


def test_lr_schedules() -> None:
    step = warmup_lambda(100, 10, 0.001, "step", (0.5, 0.8), 0.1)
    assert step(0) == pytest.approx(0.001) and step(10) == 1.0 and step(50) == pytest.approx(0.1)
    assert step(85) == pytest.approx(0.01)
    cosine = warmup_lambda(110, 10, 0.1, "cosine", (), 0.1)
    assert (
        cosine(10) == pytest.approx(1.0)
        and cosine(60) == pytest.approx(0.5)
        and cosine(110) == pytest.approx(0.0)
    )


def test_create_model_builds_the_detector_torchvision_style():
    import hrnet

    model = hrnet.create_model(
        "hrnet_w18_small", task="detection", head="v2p", num_outputs=3, pyramid_channels=32,
        detector="fcos", min_size=128, max_size=160, fusion="final",
    )  # fmt: skip
    assert type(model).__name__ == "FCOS" and model.backbone.out_channels == 32
    assert model.backbone.backbone.config.fusion == "final"  # an architecture option reaches the backbone
    model.eval()
    [out] = model([torch.rand(3, 128, 160)])
    assert set(out) == {"boxes", "scores", "labels"}


@pytest.mark.parametrize("detector", list(DETECTORS.names()))
def test_max_per_image_caps_every_frameworks_detections(detector: str) -> None:
    """``evaluate.detection.max_per_image`` reaches where each framework keeps its count (the R-CNNs'
    and FCOS's detections_per_img, the cascades' last stage, CenterNet's top-K); null keeps its own."""
    torch.manual_seed(0)
    module = DetectionModule(
        head="v1", num_classes=2, detector=detector, min_size=64, max_size=64, pyramid_channels=16,
        detector_kwargs={**small_settings(detector), "representation_size": 32},
    ).eval()  # fmt: skip
    image = [torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1))]

    def count(**test: Any) -> int:
        module.configure_test(DetectionTestConfig(score_threshold=0.0, **test))
        with torch.no_grad():
            return len(module.model(image)[0]["boxes"])

    own = count()  # untrained, nothing filtered: the framework's own cap is reached or nearly
    assert own > 3
    assert count(max_per_image=3) == 3
    assert count(max_per_image=None) == 3  # null leaves what was set (a module is configured once)
