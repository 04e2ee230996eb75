"""Confusion-matrix metrics (cross-checked against cityscapesscripts), inference and outputs."""

import copy
import math
import os
import shutil
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from hrnet.data.cityscapes import (
    CLASS_NAMES,
    IGNORE_INDEX,
    label_id_lut,
    read_label_ids,
)
from hrnet.data.formats.cityscapes import list_cityscapes_pairs
from hrnet.data.synthetic.cityscapes import generate_cityscapes
from hrnet.evaluation.segmentation import (
    colorize,
    confusion_matrix,
    iou_from_confusion,
    predict_multiscale,
    predict_sliding,
    predict_whole,
    sum_across_ranks,
    train_ids_to_label_ids,
    write_label_png,
    write_overlay,
)

torch.set_num_threads(1)
FIXTURE = Path(__file__).parent / "fixtures" / "cityscapes_tiny"


def test_confusion_accumulates_and_perfect_is_one():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 19, (4, 2, 12, 20), generator=gen)
    labels[:, :, :2] = IGNORE_INDEX
    preds = torch.where(
        torch.rand(labels.shape, generator=gen) < 0.3, torch.randint(0, 19, labels.shape), labels
    )
    preds[labels == IGNORE_INDEX] = 5
    acc = torch.zeros(19, 19, dtype=torch.int64)
    for p, lb in zip(preds, labels, strict=True):
        out = confusion_matrix(p, lb, out=acc)
        assert out is acc
    assert torch.equal(acc, confusion_matrix(preds, labels))
    assert int(acc.sum()) == int((labels != IGNORE_INDEX).sum())
    assert torch.equal(confusion_matrix(preds.numpy(), labels.numpy()), acc)

    perfect = iou_from_confusion(confusion_matrix(labels.clamp(max=18), labels))
    assert perfect["mIoU"] == 1.0 and perfect["pixel_accuracy"] == 1.0
    assert list(perfect["per_class_iou"]) == list(CLASS_NAMES)


def test_iou_hand_computed_and_nan_convention():
    label = torch.tensor([[0, 0, 1, 1, 255, 2]])
    pred = torch.tensor([[0, 1, 1, 1, 0, 3]])
    m = iou_from_confusion(confusion_matrix(pred, label, num_classes=5), ["a", "b", "c", "d", "e"])
    iou = m["per_class_iou"]
    assert iou["a"] == pytest.approx(1 / 2) and iou["b"] == pytest.approx(2 / 3)
    assert iou["c"] == 0.0 and iou["d"] == 0.0  # c missed, d predicted but absent from the ground truth
    assert math.isnan(iou["e"])  # neither present nor predicted: skipped in the mean
    assert m["mIoU"] == pytest.approx((1 / 2 + 2 / 3) / 4)
    assert m["pixel_accuracy"] == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(pred, label[:, :3])
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        confusion_matrix(pred + 5, label, num_classes=5)


SYNTHETIC_CLASSES = np.array([0, 1, 2, 5, 7, 8, 9, 10, 11, 13])  # train ids the noise draws from


def _perturb(train_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noisy prediction: some pixels swapped for common classes, a bicycle patch, a 1-px shift."""
    pred = train_ids.copy()
    ignored = pred == IGNORE_INDEX
    pred[ignored] = rng.choice(SYNTHETIC_CLASSES, int(ignored.sum()))
    noisy = rng.random(pred.shape) < 0.15
    pred[noisy] = rng.choice(SYNTHETIC_CLASSES, int(noisy.sum()))
    h, w = pred.shape
    pred[h // 3 : h // 2, w // 4 : w // 3] = 18  # bicycle: mostly where the ground truth has none
    return np.roll(pred, 1, axis=1)


def test_miou_matches_cityscapesscripts(tmp_path, monkeypatch):
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as cs_eval

    if not hasattr(np, "in1d"):  # removed in numpy 2.4; cityscapesscripts 2.3 still calls it
        monkeypatch.setattr(
            np, "in1d", lambda a, b, invert=False: np.isin(a, b, invert=invert).ravel(), raising=False
        )

    root = tmp_path / "cs"
    generate_cityscapes(root, 0, 3, image_size=(96, 48), seed=3)
    shutil.copytree(FIXTURE / "leftImg8bit" / "val", root / "leftImg8bit" / "val", dirs_exist_ok=True)
    shutil.copytree(FIXTURE / "gtFine" / "val", root / "gtFine" / "val", dirs_exist_ok=True)
    pairs = list_cityscapes_pairs(root, "val")
    assert len(pairs) == 5

    rng, lut = np.random.default_rng(0), label_id_lut()
    ours = torch.zeros(19, 19, dtype=torch.int64)
    predictions, ground_truth = [], []
    for _, label_path in pairs:
        gt_train = lut[read_label_ids(label_path)]
        pred = _perturb(gt_train, rng)
        out = tmp_path / "results" / label_path.name.replace("_gtFine_labelIds", "_pred")
        write_label_png(out, pred)
        written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(lut[written], pred)  # the PNG round-trips through label ids
        confusion_matrix(torch.from_numpy(pred), torch.from_numpy(gt_train), out=ours)
        predictions.append(str(out))
        ground_truth.append(str(label_path))

    args = copy.copy(cs_eval.args)
    args.groundTruthSearch = str(root / "gtFine" / "val" / "*" / "*_gtFine_labelIds.png")
    args.predictionPath = str(tmp_path / "results")
    args.evalInstLevelScore = False
    args.evalPixelAccuracy = True
    args.quiet = True
    args.JSONOutput = False
    args.exportFile = str(tmp_path / "cs_result.json")
    theirs = cs_eval.evaluateImgLists(predictions, ground_truth, args)

    metrics = iou_from_confusion(ours)
    for name in CLASS_NAMES:  # absent-and-unpredicted classes are NaN on both sides
        a, b = metrics["per_class_iou"][name], theirs["classScores"][name]
        assert (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-9, (name, a, b)
    assert sum(not math.isnan(v) for v in metrics["per_class_iou"].values()) == 19  # all in the fixture
    assert 0.0 <= metrics["per_class_iou"]["bicycle"] < 0.5
    assert abs(metrics["mIoU"] - theirs["averageScoreClasses"]) < 1e-6
    # pixel accuracy from their (label-id) confusion matrix over evaluated ground-truth rows
    cm = np.array(theirs["confMatrix"], dtype=np.float64)
    evaluated = [int(i) for i in np.flatnonzero(lut[: cm.shape[0]] != IGNORE_INDEX)]
    accuracy = cm[evaluated, evaluated].sum() / cm[evaluated].sum()
    assert abs(metrics["pixel_accuracy"] - accuracy) < 1e-9
    assert not os.path.exists(args.exportFile)


class _Pointwise(nn.Module):
    """A 1x1 conv: translation-equivariant and flip-equivariant, output at full resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 19, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_inference_helpers_agree_for_pointwise_model():
    torch.manual_seed(0)
    model = _Pointwise().eval()
    image = torch.randn(2, 3, 20, 30)
    whole = predict_whole(model, image)
    assert whole.shape == (2, 19, 20, 30)
    sliding = predict_sliding(model, image, crop_size=(16, 12), stride=(10, 8))
    assert torch.allclose(sliding, whole, atol=1e-5)
    small = predict_sliding(model, image[:, :, :8, :10], crop_size=(16, 12))  # padded path
    assert torch.allclose(small, whole[:, :, :8, :10], atol=1e-5)
    flipped = predict_multiscale(model, image, scales=(1.0,), flip=True, mode="logits")
    assert torch.allclose(flipped, whole, atol=1e-5)
    probs = predict_multiscale(model, image, scales=(1.0,), flip=True, crop_size=(16, 12))
    assert torch.allclose(probs, whole.softmax(1), atol=1e-5)

    # an HRNet-style model whose logits come out at 1/4 resolution is upsampled back
    quarter = nn.Sequential(nn.AvgPool2d(4), _Pointwise()).eval()
    assert predict_whole(quarter, torch.randn(1, 3, 32, 48)).shape == (1, 19, 32, 48)
    with pytest.raises(ValueError, match="mode"):
        predict_multiscale(model, image, mode="max")


class _ColumnAndHeight(nn.Module):
    """Logits that a wrong flip or scale handling changes: not flip-equivariant, size-dependent.

    Class 0 scores the column position 0..1 left to right (whatever the pixels); the class
    ``1 + input height // 10`` scores 10 everywhere, so each scale of a 20-pixel-high image
    votes for its own class.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        out = x.new_zeros(n, 19, h, w)
        out[:, 0] = torch.linspace(0, 1, w)
        out[:, 1 + h // 10] = 10.0
        return out


def test_flip_and_multiscale_average_what_they_should():
    model, image = _ColumnAndHeight(), torch.randn(1, 3, 20, 30)
    ramp = torch.linspace(0, 1, 30)

    # flip: the mirrored pass is mirrored back, so the column scores average to 0.5 everywhere
    plain = predict_multiscale(model, image, flip=False, mode="logits")
    assert torch.allclose(plain[0, 0], ramp.expand(20, 30))
    flipped = predict_multiscale(model, image, flip=True, mode="logits")
    assert torch.allclose(flipped[0, 0], torch.full((20, 30), 0.5), atol=1e-6)
    # softmax mode averages the two passes' probabilities, not their logits
    expected = (plain.softmax(1) + plain.flip(-1).softmax(1)) / 2
    assert torch.allclose(predict_multiscale(model, image, flip=True), expected, rtol=1e-4, atol=0)
    assert not torch.allclose(expected, flipped.softmax(1), rtol=1e-2, atol=0)

    # scales: heights 10, 20, 30 vote for classes 2, 3, 4, each with weight 1/3
    multi = predict_multiscale(model, image, scales=(0.5, 1.0, 1.5), mode="logits")
    assert multi.shape == (1, 19, 20, 30)
    assert torch.allclose(multi[0, 2:5], torch.full((3, 20, 30), 10 / 3), atol=1e-5)
    column = multi[0, 0]  # each scale resized back onto the image, not mirrored or shifted
    assert torch.allclose(column, ramp.expand(20, 30), atol=0.01) and (column.diff(dim=1) > 0).all()
    probs = predict_multiscale(model, image, scales=(0.5, 1.0, 1.5), flip=True)
    assert torch.allclose(probs.sum(1), torch.ones(1, 20, 30), atol=1e-5)
    assert torch.allclose(probs[0, 2:5].mean((1, 2)), probs[0, 2].mean().expand(3), atol=1e-5)
    assert probs[0, 2].mean() > 0.3 and probs[0, 5:].max() < 1e-3


def test_label_id_conversion_colours_and_overlay(tmp_path):
    pred = np.array([[0, 13, 255, 18], [10, 2, 11, 5]], np.uint8)
    assert train_ids_to_label_ids(pred).tolist() == [[7, 26, 0, 33], [23, 11, 24, 17]]
    assert train_ids_to_label_ids(torch.from_numpy(pred)).dtype == np.uint8
    colours = colorize(pred)
    assert colours.shape == (2, 4, 3)
    assert tuple(colours[0, 0]) == (128, 64, 128) and tuple(colours[0, 2]) == (0, 0, 0)
    assert tuple(colours[1, 0]) == (70, 130, 180)

    image = np.full((8, 16, 3), 100, np.uint8)
    ids = np.zeros((2, 4), np.uint8)  # smaller map: resized (nearest) onto the image
    write_overlay(tmp_path / "o.png", image, ids, alpha=1.0, label_map=np.full((8, 16), 13))
    out = cv2.imread(str(tmp_path / "o.png"))[..., ::-1]
    assert out.shape == (8, 32, 3)
    assert tuple(out[0, 0]) == (128, 64, 128) and tuple(out[0, 20]) == (0, 0, 142)
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]  # atomic write leaves no temp file


def _ddp_worker(rank: int, port: int, world: int, result) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        label = torch.full((4, 4), rank)  # rank r sees 16 pixels of class r
        local = confusion_matrix(label, label, num_classes=3)
        result[rank] = sum_across_ranks(local).tolist()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two gloo processes
def test_confusion_is_summed_across_ranks():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = mp.Manager().dict()
    mp.spawn(_ddp_worker, args=(port, 2, result), nprocs=2, join=True)
    expected = [[16, 0, 0], [0, 16, 0], [0, 0, 0]]
    assert result[0] == expected and result[1] == expected
    assert sum_across_ranks(torch.ones(2)).tolist() == [1.0, 1.0]  # no process group: unchanged copy
