"""Cascade R-CNN and CenterNet on tiny inputs: their parts as specified, losses that fall on one image,
Cascade's test-time score averaging, CenterNet's targets decoding back to the boxes they encode."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hrnet.models.detection import SMALL_IMAGE_SETTINGS, build_detector
from hrnet.models.detectors import cascade_rcnn, centernet

torch.set_num_threads(1)

SMALL = {**SMALL_IMAGE_SETTINGS, "representation_size": 32}
IMAGE = [torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))]
TARGET = [{"boxes": torch.tensor([[8.0, 12.0, 40.0, 52.0]]), "labels": torch.tensor([1])}]


def _tiny(detector: str, head: str = "v1", **kwargs) -> nn.Module:
    torch.manual_seed(0)
    options = SMALL if detector == "cascade_rcnn" else {}
    return build_detector(
        "hrnet_w18_small", head, 2, detector, 64, 64, pyramid_channels=16, **{**options, **kwargs}
    )


def test_cascade_stages_use_their_iou_thresholds_box_weights_and_loss_weights() -> None:
    model = _tiny("cascade_rcnn")
    heads = model.roi_heads
    assert isinstance(heads, cascade_rcnn.CascadeRoIHeads) and len(heads.stages) == 3
    for stage, iou, weights in zip(heads.stages, (0.5, 0.6, 0.7), cascade_rcnn.BOX_WEIGHTS, strict=True):
        assert stage.proposal_matcher.high_threshold == stage.proposal_matcher.low_threshold == iou
        assert stage.box_coder.weights == weights
        assert stage.box_predictor.bbox_pred.out_features == 4  # class-agnostic
    for std, weights in zip(cascade_rcnn.BOX_STDS, cascade_rcnn.BOX_WEIGHTS, strict=True):
        assert weights == pytest.approx([1 / s for s in std], rel=0.01)
    assert heads.stage_weights == [1.0, 0.5, 0.25]
    assert len({id(s.box_roi_pool) for s in heads.stages}) == 1  # one RoIAlign, three heads
    # the losses carry the stage weights: a zero weight zeroes that stage's losses
    heads.stage_weights = [1.0, 0.5, 0.0]
    losses = model(IMAGE, TARGET)
    assert float(losses["loss_classifier_s2"].detach()) == float(losses["loss_box_reg_s2"].detach()) == 0.0
    assert float(losses["loss_classifier_s1"].detach()) > 0
    heads.score_thresh = 0.3  # what DetectionModule.configure_test sets: the last stage filters
    assert heads.stages[2].score_thresh == 0.3


def test_cascade_scores_are_the_softmax_of_the_stages_mean_logits() -> None:
    model = _tiny("cascade_rcnn").eval()
    model.roi_heads.score_thresh = 0.0
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    for stage in model.roi_heads.stages:
        stage.box_predictor.register_forward_hook(lambda m, i, out: seen.append(out))
    with torch.no_grad():
        detections = model(IMAGE)[0]
    assert len(seen) == 3 and len(detections["boxes"]) > 0
    probabilities = torch.softmax(sum(logits for logits, _ in seen) / 3, -1)
    # every detection's score is one of the averaged class probabilities (foreground)
    assert torch.isin(detections["scores"], probabilities[:, 1:].flatten()).all()
    assert not torch.isin(detections["scores"], torch.softmax(seen[-1][0], -1)[:, 1:].flatten()).all()


@pytest.mark.parametrize(
    ("detector", "head"), [("cascade_rcnn", "v2p"), ("centernet", "v1"), ("centernet", "v2p")]
)
def test_losses_are_finite_and_fall_on_one_image(detector: str, head: str) -> None:
    model = _tiny(detector, head)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    totals = []
    for _ in range(6):
        losses = model(IMAGE, TARGET)
        total = sum(losses.values())
        assert all(math.isfinite(float(v.detach())) for v in losses.values()), losses
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(float(total))
    assert totals[-1] < totals[0], totals
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 48, 80)])[0]  # another size: boxes come back in its coordinates
    assert set(out) == {"boxes", "scores", "labels"}
    if len(out["boxes"]):
        assert out["boxes"][:, 2].max() <= 80 and out["boxes"][:, 3].max() <= 48
        assert out["labels"].min() >= 1


def test_centernet_reads_the_finest_map_and_follows_the_focal_loss_definition() -> None:
    model = _tiny("centernet", "v2p", topk=7)
    assert model.stride == 4 and model.level == "0" and model.topk == 7
    logits = torch.tensor([[[[0.0, 2.0]]]])
    target = torch.tensor([[[[1.0, 0.5]]]])
    p = torch.sigmoid(logits)
    expected = -(
        torch.log(p[..., 0]) * (1 - p[..., 0]) ** 2 + torch.log(1 - p[..., 1]) * p[..., 1] ** 2 * 0.5**4
    )
    assert float(centernet.focal_loss(logits, target)) == pytest.approx(float(expected.sum()), rel=1e-4)
    assert centernet.gaussian_radius(10, 10) == pytest.approx(2.7, abs=0.3)  # CenterNet's value: 2.73


def reference_heat(boxes: torch.Tensor, labels: torch.Tensor, classes: int, size: int, stride: int):
    """CenterNet's heatmap drawn object by object in Python floats, as its reference code draws it."""

    def radius(h: float, w: float, overlap: float = 0.7) -> float:
        b1, c1 = h + w, w * h * (1 - overlap) / (1 + overlap)
        b2, c2 = 2 * (h + w), (1 - overlap) * w * h
        a3, b3, c3 = 4 * overlap, -2 * overlap * (h + w), (overlap - 1) * w * h
        return min(
            (b1 + math.sqrt(b1**2 - 4 * c1)) / 2,
            (b2 + math.sqrt(b2**2 - 16 * c2)) / 2,
            (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2,
        )

    heat = torch.zeros(classes, size, size)
    for (x0, y0, x1, y1), label in zip((boxes / stride).tolist(), labels.tolist()):
        cx = min(max(math.floor((x0 + x1) / 2), 0), size - 1)
        cy = min(max(math.floor((y0 + y1) / 2), 0), size - 1)
        r = max(0, int(radius(math.ceil(y1 - y0), math.ceil(x1 - x0))))
        sigma = (2 * r + 1) / 6
        for y in range(max(cy - r, 0), min(cy + r, size - 1) + 1):
            for x in range(max(cx - r, 0), min(cx + r, size - 1) + 1):
                value = math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
                heat[label - 1, y, x] = max(float(heat[label - 1, y, x]), value)
    return heat


def test_centernet_heatmap_equals_the_object_by_object_drawing() -> None:
    g = torch.Generator().manual_seed(3)
    corners = torch.rand(12, 2, generator=g) * 100
    boxes = torch.cat([corners, corners + 2 + torch.rand(12, 2, generator=g) * 40], 1)  # some overlap
    labels = torch.randint(1, 4, (12,), generator=g)
    heat, *_ = centernet.encode(boxes, labels, 3, (32, 32), 4)
    torch.testing.assert_close(heat, reference_heat(boxes, labels, 3, 32, 4), atol=1e-6, rtol=0)


def test_centernet_targets_decode_back_to_their_boxes() -> None:
    boxes = torch.tensor([[5.0, 6.0, 37.0, 30.0], [60.0, 40.0, 90.0, 120.0], [100.0, 8.0, 126.0, 20.0]])
    labels = torch.tensor([2, 1, 2])
    heat, sizes, offsets, index = centernet.encode(boxes, labels, 3, (32, 32), 4)
    assert heat.shape == (3, 32, 32) and heat.max() == 1 and int(heat.eq(1).sum()) == 3
    assert heat[2].sum() == 0  # no object of class 3
    size_map, offset_map = torch.zeros(1, 2, 32 * 32), torch.zeros(1, 2, 32 * 32)
    size_map[0, :, index], offset_map[0, :, index] = sizes.T, offsets.T
    logits = torch.logit(heat.clamp(1e-6, 1 - 1e-6))[None]
    shape = (1, 2, 32, 32)
    found = centernet.decode(
        logits, size_map.reshape(shape), offset_map.reshape(shape), 4, 100, 0.5, [(128, 128)]
    )[0]
    order = found["boxes"][:, 0].argsort()
    torch.testing.assert_close(found["boxes"][order], boxes, atol=1e-4, rtol=0)
    assert found["labels"][order].tolist() == labels.tolist()
    assert centernet.decode(
        logits, size_map.reshape(shape), offset_map.reshape(shape), 4, 2, 0.5, [(128, 128)]
    )[0]["boxes"].shape == (2, 4)  # top-K
