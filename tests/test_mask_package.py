"""Mask framework packages (mask_rcnn here; any model class with ``produces_masks``): the torch and
ONNX packages give the in-process model's boxes and masks at the image's own size, ``hrnet predict``
writes the masks as COCO RLE and fills them in its drawings, int8 keeps them.

The model is untrained (score threshold 0, so it detects): its mask logits reach hundreds, so most
pixels are far from the 0.5 threshold, but some lie at it; a binarised pixel may therefore differ
only where the model's probability is within ``BAND`` of 0.5 (the packaging check bounds the
ONNX probabilities' difference by package.tolerance, 1e-3; we measured ~1e-4)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import hrnet
from hrnet.cli import main
from hrnet.data.coco_masks import MASK_THRESHOLD, decode_segmentation
from hrnet.evaluation.coco_boxes import draw_boxes
from hrnet.models.detection import SMALL_IMAGE_SETTINGS, build_detector
from hrnet.package import write_package

BAND = 1e-3  # a binarised pixel may differ where the model's probability is within this of 0.5
SIZES = [(70, 90), (96, 64)]  # (height, width): neither is the traced 64x64 square
META = {
    "name": "mask", "task": "detection", "model": "hrnet_w18_small", "head": "v2p", "data": "test",
    "input_size": [64, 64], "resize": {"min_size": 64, "max_size": 96},
    "categories": ["disc", "star"], "category_ids": [3, 5],
}  # fmt: skip


def _images() -> list[np.ndarray]:
    """Noise with a filled disc and a rectangle: something for the masks to cover."""
    rng = np.random.default_rng(0)
    images = []
    for height, width in SIZES:
        image = (rng.random((height, width, 3)) * 120).astype(np.uint8)
        cv2.circle(image, (width // 3, height // 2), min(height, width) // 5, (250, 60, 40), -1)
        cv2.rectangle(image, (width // 2, 5), (width - 5, height // 2), (40, 220, 90), -1)
        images.append(image)
    return images


def _detector() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_detector(
        "hrnet_w18_small", "v2p", num_classes=2, detector="mask_rcnn", min_size=64, max_size=96,
        anchor_scale=4.0, pyramid_channels=32, score_threshold=0.0, **SMALL_IMAGE_SETTINGS,
    ).eval()  # fmt: skip


@torch.no_grad()
def _in_process(model: torch.nn.Module, image: np.ndarray) -> dict[str, np.ndarray]:
    (out,) = model([torch.from_numpy(image).permute(2, 0, 1) / 255.0])
    return {k: v.numpy() for k, v in out.items()}


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("dist")
    model = _detector()
    check = model.transform([torch.from_numpy(i).permute(2, 0, 1) / 255.0 for i in _images()[:1]])[0]
    for fmt in ("torch_export", "onnx"):
        write_package(root / fmt, model, META, "", {}, fmt=fmt, check_images=check.tensors)
    folder = root / "images"
    folder.mkdir()
    for i, image in enumerate(_images()):
        cv2.imwrite(str(folder / f"img{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return {"root": root, "model": model, "folder": folder}


def _match(actual: dict, expected: dict) -> list[int]:
    """For each expected detection, the index of its own actual one: same label, box within 0.01 px,
    score within 1e-4 (near-equal scores of an untrained head may swap places)."""
    unused, found = set(range(len(actual["boxes"]))), []
    for box, score, label in zip(expected["boxes"], expected["scores"], expected["labels"]):
        j = next(
            (
                j
                for j in sorted(unused)
                if actual["labels"][j] == label
                and abs(actual["scores"][j] - score) <= 1e-4
                and np.abs(actual["boxes"][j] - box).max() <= 0.01
            ),
            None,
        )
        assert j is not None, f"no packaged detection matches {box} {score} {label}"
        unused.remove(j)
        found.append(j)
    return found


def _assert_binary_equal_outside_band(binary: np.ndarray, probability: np.ndarray) -> None:
    differ = binary.astype(bool) != (probability >= MASK_THRESHOLD)
    assert np.all(np.abs(probability[differ] - MASK_THRESHOLD) < BAND), int(differ.sum())


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("fmt", ["torch_export", "onnx"])
def test_package_gives_the_model_s_boxes_and_masks(packages: dict, fmt: str) -> None:
    package = hrnet.load_package(packages["root"] / fmt)
    meta = package.meta
    assert meta["produces_masks"] is True and "masks" in meta["outputs"]
    per_graph = meta["check"]["per_graph"]
    assert set(per_graph) == (
        {"backbone"} if fmt == "torch_export" else {"backbone", "head", "box_head", "mask_head"}
    )
    assert 0 < meta["check"]["max_abs_diff"] <= 1e-3
    if fmt == "onnx":
        assert meta["onnx_graphs"]["mask_head"] == "mask_head.onnx"
        assert meta["detector"]["detector"] == "mask_rcnn"
    for image in _images():
        expected = _in_process(packages["model"], image)
        predicted = package.predict(image)
        assert len(expected["boxes"]) > 10 and len(predicted["boxes"]) == len(expected["boxes"])
        assert predicted["masks"].shape == (len(expected["boxes"]), *image.shape[:2])  # the image's size
        order = _match(predicted, expected)
        # probabilities: 1e-3 (package.tolerance) bounds the ONNX mask head's sigmoid; torch: the same code
        diff = np.abs(predicted["masks"][order] - expected["masks"][:, 0]).max()
        assert diff <= 1e-3, diff
        for j, probability in zip(order, expected["masks"][:, 0]):
            _assert_binary_equal_outside_band(predicted["masks"][j] >= MASK_THRESHOLD, probability)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_predict_writes_masks_as_rle_and_fills_them(packages: dict, tmp_path: Path) -> None:
    folder, out = packages["folder"], tmp_path / "out"
    package = hrnet.load_package(packages["root"] / "onnx")
    predictions = [package.predict(image) for image in _images()]
    # draw the best three detections of the two images (an untrained head scores all of them alike)
    threshold = float(np.sort(np.concatenate([p["scores"] for p in predictions]))[-3])
    args = ["predict", "--package", str(packages["root"] / "onnx"), str(folder), "--out", str(out)]
    assert main([*args, "--threshold", str(threshold)]) == 0
    results = json.loads((out / "results.json").read_text())
    tinted = 0
    for i, (image, predicted) in enumerate(zip(_images(), predictions)):
        records = [r for r in results if r["file_name"] == f"img{i}.png"]
        expected = _in_process(packages["model"], image)
        assert len(records) == len(expected["boxes"]) and {r["category_id"] for r in records} <= {3, 5}
        height, width = image.shape[:2]
        as_arrays = {
            "boxes": np.array([[x, y, x + w, y + h] for x, y, w, h in (r["bbox"] for r in records)]),
            "scores": np.array([r["score"] for r in records]),
            "labels": np.array([META["category_ids"].index(r["category_id"]) + 1 for r in records]),
        }
        # results.json rounds boxes to 0.01 px and scores to 1e-5: within _match's margins
        order = _match(as_arrays, expected)
        for j, probability in zip(order, expected["masks"][:, 0]):
            segmentation = records[j]["segmentation"]
            assert segmentation["size"] == [height, width] and isinstance(segmentation["counts"], str)
            _assert_binary_equal_outside_band(decode_segmentation(segmentation, height, width), probability)

        # the drawing equals the box-only drawing outside the drawn masks and is tinted inside them
        drawn = cv2.cvtColor(cv2.imread(str(out / f"img{i}.png")), cv2.COLOR_BGR2RGB)
        scores = predicted["scores"]
        boxes_only = draw_boxes(
            image, predicted["boxes"], predicted["labels"], scores, package.class_names, threshold
        )
        inside = (predicted["masks"][scores >= threshold] >= MASK_THRESHOLD).any(0)
        np.testing.assert_array_equal(drawn[~inside], boxes_only[~inside])
        if inside.sum() > 20:
            changed = (drawn != boxes_only).any(-1)[inside].mean()
            assert changed > 0.5, changed  # outlines and captions drawn over the fill are the rest
            tinted += 1
    assert tinted > 0, "no drawn mask of over 20 pixels"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_int8_package_keeps_the_masks(packages: dict, tmp_path: Path) -> None:
    """int8 quantizes the backbone graph only (quantize.py); the mask head stays fp32 and masks come
    out at the image's size. Accuracy is the package stage's metric-drop guard's business."""
    model = packages["model"]
    images = [torch.from_numpy(i).permute(2, 0, 1) / 255.0 for i in _images()]
    check = model.transform(images[:1])[0].tensors
    calibration = list(model.transform(images)[0].tensors)
    write_package(
        tmp_path / "int8", model, META, "", {}, fmt="torch_export", check_images=check,
        precision="int8", calibration_images=calibration,
    )  # fmt: skip
    package = hrnet.load_package(tmp_path / "int8")
    assert package.meta["precision"] == "int8" and package.meta["produces_masks"] is True
    assert "mask_head.onnx (mask frameworks)" in package.meta["fp32_outside_graph"]
    image = _images()[0]
    predicted = package.predict(image)
    assert len(predicted["boxes"]) > 0 and predicted["masks"].shape[1:] == image.shape[:2]
    assert predicted["masks"].min() >= 0.0 and predicted["masks"].max() <= 1.0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_box_only_frameworks_say_they_give_no_masks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_detector(
        "hrnet_w18_small", "v2p", num_classes=2, min_size=64, max_size=96, anchor_scale=4.0,
        pyramid_channels=32, score_threshold=0.0, **SMALL_IMAGE_SETTINGS,
    )  # fmt: skip
    write_package(tmp_path / "det", model, META, "", {})
    package = hrnet.load_package(tmp_path / "det")
    assert package.meta["produces_masks"] is False and "masks" not in package.meta.get("outputs", "")
    predicted = package.predict(_images()[0])
    assert "masks" not in predicted and len(predicted["boxes"]) > 0
    records = package.inference.results(package, predicted, 0, "a.png")
    assert records and all("segmentation" not in r for r in records)
