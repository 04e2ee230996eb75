"""Detection ONNX packages: the networks in onnxruntime, decoding and NMS in torchvision, the same
detections as the torch package, through the pipeline's package stage and ``hrnet predict``; the
frameworks written here (the cascades, CenterNet) give their PyTorch model's detections and masks."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import tiny_params

import hrnet
from hrnet.cli import main
from hrnet.models.detection import SMALL_IMAGE_SETTINGS, build_detector
from hrnet.tasks.detection.inference import INFERENCE
from hrnet.tasks.detection.prepare import read_split
from pipeline.common import PREPARED_DIR
from pipeline.evaluate import evaluate
from pipeline.package import package
from pipeline.params import parse_params
from pipeline.prepare import prepare
from pipeline.synthesize import synthesize
from pipeline.train import train

GRAPHS = {
    "faster_rcnn": {"backbone": "model.onnx", "head": "head.onnx", "box_head": "box_head.onnx"},
    "fcos": {"backbone": "model.onnx", "head": "head.onnx"},
}


def _by_image(results_file):
    found: dict[int, list[dict]] = {}
    for record in json.loads(results_file.read_text()):
        found.setdefault(record["image_id"], []).append(record)
    return {k: sorted(v, key=lambda r: -r["score"]) for k, v in found.items()}


def _assert_same_detections(actual: list[dict], expected: list[dict]) -> None:
    """Each expected detection has its own match (box within 0.02 px: results.json rounds to 0.01;
    score within 1e-4, same category); near-equal scores may swap places, so rows are matched."""
    unused = list(actual)
    for record in expected:
        match = next(
            (
                other
                for other in unused
                if other["category_id"] == record["category_id"]
                and abs(other["score"] - record["score"]) <= 1e-4
                and np.abs(np.subtract(other["bbox"], record["bbox"])).max() <= 0.02
            ),
            None,
        )
        assert match is not None, f"no match for {record}"
        unused.remove(match)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("detector", ["faster_rcnn", "fcos"])
def test_onnx_package_detects_what_the_torch_package_detects(detector, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # 1 epoch trains no detector: keep every box, so that there are boxes to compare
    overrides = {
        "task": "detection",
        "detection": {"detector": detector},
        "model": {"head": "v2p"},
        "evaluate": {"detection": {"score_threshold": 0.0}},
    }
    params = parse_params(tiny_params(**overrides))
    (tmp_path / "params.yaml").write_text(json.dumps(tiny_params(**overrides)))
    synthesize(params)
    prepare(params)
    train(params)
    evaluate(params)
    torch_dir = package(params, tmp_path / "params.yaml").rename(tmp_path / "torch_pkg")
    onnx_params = parse_params(tiny_params(**overrides, package={"format": "onnx"}))
    onnx_dir = package(onnx_params, tmp_path / "params.yaml")

    meta = json.loads((onnx_dir / "package.json").read_text())
    assert meta["onnx_graphs"] == GRAPHS[detector] and meta["detector"]["detector"] == detector
    trained_on = read_split(PREPARED_DIR, "val").categories  # the classes as the model learned them
    assert meta["categories"] == list(trained_on.names) and meta["category_ids"] == list(
        trained_on.category_ids
    )
    assert sorted(p.name for p in onnx_dir.glob("*.onnx")) == sorted(GRAPHS[detector].values())
    assert not (onnx_dir / "model.pt").exists()  # nothing of the torch package rides along
    check = meta["check"]
    assert set(check["per_graph"]) == set(GRAPHS[detector])
    assert 0 < check["max_abs_diff"] == max(check["per_graph"].values()) <= check["tolerance"] == 1e-3

    images = [Path(record["file_name"]) for record in read_split(PREPARED_DIR, "val").records[:3]]
    folder = tmp_path / "images"
    folder.mkdir()
    for image in images:
        (folder / image.name).write_bytes(image.read_bytes())
    for name, pkg in (("torch", torch_dir), ("onnx", onnx_dir)):
        args = ["predict", "--package", str(pkg), str(folder), "--out", str(tmp_path / name)]
        assert main([*args, "--threshold", "0"]) == 0
    expected, actual = _by_image(tmp_path / "torch/results.json"), _by_image(tmp_path / "onnx/results.json")
    assert sum(map(len, expected.values())) > 0, "the torch package found no box"
    assert expected.keys() == actual.keys()
    for image_id, mine in expected.items():
        assert len(actual[image_id]) == len(mine), image_id
        _assert_same_detections(actual[image_id], mine)

    # the Python API: the same detections from load_package(DIR).predict
    image = cv2.cvtColor(cv2.imread(str(images[0])), cv2.COLOR_BGR2RGB)
    mine, theirs = hrnet.load_package(torch_dir).predict(image), hrnet.load_package(onnx_dir).predict(image)
    assert len(mine["boxes"]) == len(theirs["boxes"]) > 0
    np.testing.assert_allclose(theirs["boxes"], mine["boxes"], atol=1e-2)
    np.testing.assert_array_equal(theirs["labels"], mine["labels"])


# the frameworks written here: their own Python code (cascade stage loop, CenterNet decoding) around graphs
OWN_GRAPHS = {
    "cascade_rcnn": ["backbone", "head", "box_head_s0", "box_head_s1", "box_head_s2"],
    "centernet": ["backbone", "head"],
    "cascade_mask_rcnn": ["backbone", "head", "box_head_s0", "box_head_s1", "box_head_s2", "mask_head"],
    "htc": ["backbone", "head", "box_head_s0", "box_head_s1", "box_head_s2", "mask_head"],
}


def _set_score_threshold(detector, value: float) -> None:
    if hasattr(detector, "roi_heads"):
        detector.roi_heads.score_thresh = value  # the cascades: their last stage's
    else:
        detector.score_thresh = value


@pytest.mark.timeout(300)
@pytest.mark.parametrize("detector", list(OWN_GRAPHS))
def test_onnx_package_of_a_framework_written_here_gives_the_models_detections(detector, tmp_path):
    """Untrained, every box kept: the ONNX package gives the PyTorch model's boxes, scores, labels
    (and pasted masks) on two images, and nothing when nothing passes the threshold."""
    masked = "mask_head" in OWN_GRAPHS[detector]
    keys = {"boxes", "scores", "labels"} | ({"masks"} if masked else set())
    torch.manual_seed(0)
    head = "v2p" if detector == "centernet" else "v1"  # as their learning runs; V1 exports faster
    model = build_detector(
        "hrnet_w18_small", head, 2, detector, 64, 64, pyramid_channels=16,
        **SMALL_IMAGE_SETTINGS, **({"mask_channels": 16} if masked else {}),
    ).eval()  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 64, 64, generator=generator), torch.rand(3, 48, 64, generator=generator)]
    _set_score_threshold(model, 0.0)
    meta = {"input_size": [64, 64]}
    meta.update(INFERENCE.export(tmp_path, model, meta, "onnx", model.transform(images)[0].tensors, 1e-3))

    graphs = {name: "model.onnx" if name == "backbone" else f"{name}.onnx" for name in OWN_GRAPHS[detector]}
    assert meta["onnx_graphs"] == graphs and meta["program"] == "model.onnx"
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == sorted(graphs.values())
    assert meta["detector"]["detector"] == detector and meta["produces_masks"] is masked
    assert set(meta["check"]["per_graph"]) == set(graphs) and meta["check"]["max_abs_diff"] <= 1e-3
    packaged = INFERENCE.load(tmp_path, meta)
    for threshold in (0.0, 1.0):  # 1.0: no detection, so the mask graph runs on no RoI
        _set_score_threshold(model, threshold)
        _set_score_threshold(packaged, threshold)
        with torch.no_grad():
            expected, got = model(images), packaged(images)
        for mine, theirs in zip(expected, got, strict=True):
            assert set(theirs) == set(mine) == keys
            assert (len(mine["boxes"]) > 0) is (threshold == 0.0)
            for key in mine:
                torch.testing.assert_close(theirs[key], mine[key], atol=1e-3, rtol=1e-3)
