"""hrnet predict / ModelPackage.predict for every task, ONNX packages, and equality with evaluate."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

import hrnet
import hrnet.tasks
from hrnet.cli import main
from hrnet.package import PackageError, write_package
from hrnet.tasks.pose.inference import person_boxes
from pipeline.common import PREPARED_DIR

SIZE = (64, 64)  # (width, height)


def _meta(task, head, **extra):
    base = {"name": task, "task": task, "model": "hrnet_w18_small", "head": head, "data": "test"}
    return {**base, "input_size": list(SIZE), **extra}


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    from hrnet.models.detection import SMALL_IMAGE_SETTINGS, build_detector

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("dist")
    check = torch.randn(2, 3, SIZE[1], SIZE[0])
    pose = hrnet.create_model("hrnet_w18_small", task="pose", head="v1")
    write_package(root / "pose", pose, _meta("pose", "v1", flip_test=True), "", {}, check_images=check)
    seg = hrnet.create_model("hrnet_w18_small", task="segmentation", head="v2", num_outputs=19)
    test_time = {"base_size": None, "mode": "whole", "scales": [1.0], "flip": False, "align_corners": False}
    seg_meta = _meta("segmentation", "v2", num_classes=19, **test_time)
    write_package(root / "seg", seg, seg_meta, "", {}, check_images=check)
    detector = build_detector(
        "hrnet_w18_small", "v2p", num_classes=1, min_size=64, max_size=64, anchor_scale=4.0,
        pyramid_channels=32, **SMALL_IMAGE_SETTINGS,
    )  # fmt: skip
    det_meta = _meta("detection", "v2p", categories=["person"], category_ids=[7])
    write_package(root / "det", detector, det_meta, "", {})
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("images")
    for i, (h, w) in enumerate([(80, 60), (64, 96), (72, 72)]):
        cv2.imwrite(str(path / f"img{i}.png"), (rng.random((h, w, 3)) * 255).astype(np.uint8))
    (path / "notes.txt").write_text("not an image")
    return path


def test_segmentation_folder_overlays_label_ids_and_rle(packages, folder, tmp_path, capsys):
    from pycocotools import mask as mask_utils

    from hrnet.data.cityscapes import TRAIN_ID_TO_LABEL_ID

    out = tmp_path / "out"
    assert main(["predict", "--package", str(packages / "seg"), str(folder), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("3 image(s)")
    package = hrnet.load_package(packages / "seg")
    results = json.loads((out / "results.json").read_text())
    for i in range(3):
        image = cv2.cvtColor(cv2.imread(str(folder / f"img{i}.png")), cv2.COLOR_BGR2RGB)
        label_ids = cv2.imread(str(out / f"img{i}_labelIds.png"), cv2.IMREAD_UNCHANGED)
        expected = np.asarray(TRAIN_ID_TO_LABEL_ID)[package.predict(image)]
        np.testing.assert_array_equal(label_ids, expected)  # label ids, not train ids
        assert cv2.imread(str(out / f"img{i}_overlay.png")).shape == image.shape
        rebuilt = np.zeros(image.shape[:2], np.int64)
        for record in (r for r in results if r["image_id"] == i):
            assert record["file_name"] == f"img{i}.png"
            rebuilt[mask_utils.decode(record["segmentation"]).astype(bool)] = record["category_id"]
        np.testing.assert_array_equal(rebuilt, label_ids)


def test_detection_folder_draws_boxes_with_names_and_coco_categories(packages, folder, tmp_path):
    out = tmp_path / "out"
    args = ["predict", "--package", str(packages / "det"), str(folder), "--out", str(out), "--threshold", "0"]
    assert main(args) == 0
    image = cv2.imread(str(folder / "img1.png"))
    results = [r for r in json.loads((out / "results.json").read_text()) if r["image_id"] == 1]
    # an untrained detector scores its boxes near-equally, so compare the format, not the boxes
    assert results and {r["category_id"] for r in results} == {7}  # label 1 -> COCO category 7
    for r in results:
        x, y, w, h = r["bbox"]
        assert r["file_name"] == "img1.png" and w >= 0 and h >= 0
        assert 0 <= x <= x + w <= 96.01 and 0 <= y <= y + h <= 64.01  # xywh in the image's pixels
    drawn = cv2.imread(str(out / "img1.png"))
    assert drawn.shape == image.shape and (drawn != image).any()


def test_pose_with_a_detector_rescores_and_nms(packages, folder, tmp_path):
    pose = hrnet.load_package(packages / "pose")
    detector = hrnet.load_package(packages / "det")
    image = cv2.cvtColor(cv2.imread(str(folder / "img2.png")), cv2.COLOR_BGR2RGB)
    boxes, box_scores = person_boxes(detector, [image])
    (found,) = pose.predict_batch([image], detector=detector)
    assert 0 < len(found.boxes) <= len(boxes[0])  # OKS-NMS may drop duplicates, never adds
    for box, score, kp_scores in zip(found.boxes, found.person_scores, found.scores):
        row = int(np.flatnonzero((boxes[0] == box).all(1))[0])
        confident = kp_scores[kp_scores > 0.2]
        assert score == pytest.approx(box_scores[0][row] * (confident.mean() if confident.size else 0.0))

    out = tmp_path / "out"
    args = ["predict", "--package", str(packages / "pose"), str(folder), "--out", str(out)]
    assert main([*args, "--detector", str(packages / "det"), "--box-threshold", "0"]) == 0
    assert {p.name for p in out.iterdir()} == {"img0.png", "img1.png", "img2.png", "results.json"}
    assert main([*args, "--detector", str(packages / "pose")]) == 2  # not a detection package


def test_video_in_drawn_video_out(packages, tmp_path):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    out = tmp_path / "out"
    args = ["predict", "--package", str(packages / "seg"), str(video), "--out", str(out), "--batch-size", "2"]
    assert main(args) == 0
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == 64
    ids = {r["image_id"] for r in json.loads((out / "results.json").read_text())}
    assert ids == set(range(5))


def test_bad_inputs_are_one_line_errors_and_write_nothing(packages, folder, tmp_path, capsys):
    out = tmp_path / "never"
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"missing.png": [[0, 0, 5, 5]]}))
    pose = ["predict", "--package", str(packages / "pose"), "--out", str(out)]
    cases = [
        ([*pose, str(folder), "--boxes", str(boxes)], "boxes for 'missing.png', which is not among"),
        ([*pose, str(folder / "notes.txt"), "--boxes", str(boxes)], "expected an image, a folder"),
        ([*pose, str(tmp_path / "nope.png"), "--boxes", str(boxes)], "no such image, folder or video"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
        assert not out.exists()


def test_export_above_tolerance_fails_and_writes_nothing(tmp_path):
    model = hrnet.create_model("hrnet_w18_small", task="pose", head="v1")
    with torch.no_grad():  # BN statistics far from identity make the folded weights differ visibly
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.uniform_(0.01, 4.0)
    images = torch.randn(2, 3, SIZE[1], SIZE[0])
    with pytest.raises(
        PackageError, match=r"max abs diff .* exceeds the tolerance 1e-12 \(package\.tolerance\)"
    ):
        write_package(
            tmp_path / "pkg", model, _meta("pose", "v1"), "", {}, check_images=images, tolerance=1e-12
        )
    assert not (tmp_path / "pkg").exists()


@pytest.mark.slow  # a fresh interpreter predicting with two packages
def test_predict_imports_no_training_stack(packages, folder, tmp_path):
    """In a fresh process: segmentation predict imports no training stack; a detection package
    loads there too (its TorchScript needs torchvision's ops registered first)."""
    heavy = (
        "pytorch_lightning",
        "lightning",
        "dvc",
        "ray",
        "timm",
        *(f"hrnet.tasks.{task}.{part}" for task in hrnet.tasks.TASKS for part in ("module", "stages")),
        "pipeline",
        "hrnet.benchmarks",
    )
    code = (
        "import sys; from hrnet.cli import main; "
        f"rc = main(['predict', '--package', {str(packages / 'seg')!r}, {str(folder)!r}, '--out', "
        f"{str(tmp_path / 'seg')!r}]); "
        f"print(sorted(m for m in sys.modules if m.startswith({heavy!r}) or m == 'torchvision')); "
        f"rc = rc or main(['predict', '--package', {str(packages / 'det')!r}, {str(folder)!r}, '--out', "
        f"{str(tmp_path / 'det')!r}]); sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[]" in done.stdout.splitlines()
    assert (tmp_path / "det" / "results.json").is_file()


@pytest.mark.slow
def test_onnx_package_predicts_as_the_torch_package(packages, folder, tmp_path):
    torch.manual_seed(0)
    model = hrnet.create_model("hrnet_w18_small", task="pose", head="v1")
    images = torch.randn(2, 3, SIZE[1], SIZE[0])
    torch_pkg, onnx_pkg = tmp_path / "torch", tmp_path / "onnx"
    write_package(torch_pkg, model, _meta("pose", "v1"), "", {}, check_images=images)
    write_package(onnx_pkg, model, _meta("pose", "v1"), "", {}, fmt="onnx", check_images=images)
    meta = json.loads((onnx_pkg / "package.json").read_text())
    assert (onnx_pkg / "model.onnx").is_file() and not (onnx_pkg / "model.pt2").exists()
    assert meta["runtime"] == "onnxruntime" and 0 < meta["check"]["max_abs_diff"] <= 1e-3
    image = cv2.cvtColor(cv2.imread(str(folder / "img0.png")), cv2.COLOR_BGR2RGB)
    boxes = [[5, 5, 40, 60], [0, 0, 60, 80]]
    expected = hrnet.load_package(torch_pkg).predict(image, boxes=boxes)
    actual = hrnet.load_package(onnx_pkg).predict(image, boxes=boxes)
    np.testing.assert_allclose(actual[0], expected[0], atol=1e-3)
    np.testing.assert_allclose(actual[1], expected[1], atol=1e-4)


@pytest.mark.slow
def test_package_keypoints_equal_the_evaluate_stage(tmp_path, monkeypatch):
    """For the same (ground-truth) boxes, package.predict decodes what the evaluate stage decodes."""
    from conftest import tiny_params

    from hrnet.tasks.pose import stages as pose_task
    from pipeline.common import PREPARED_DIR
    from pipeline.params import parse_params
    from pipeline.prepare import prepare
    from pipeline.synthesize import synthesize

    monkeypatch.chdir(tmp_path)
    params = parse_params(tiny_params(task="pose"))
    synthesize(params)
    prepare(params)
    torch.manual_seed(0)
    module = pose_task.build_module(params, PREPARED_DIR).eval()
    keypoints, scores, indices = pose_task.predict_val(module, params, PREPARED_DIR)

    meta = {**_meta("pose", "v1"), **pose_task.package_meta(params, PREPARED_DIR)}
    write_package(tmp_path / "pkg", module.model, meta, "", {})
    package = hrnet.load_package(tmp_path / "pkg")
    split = pose_task.read_split(PREPARED_DIR, "val")
    records = [split.records[i] for i in indices]
    files = sorted({r["image_file"] for r in records})
    images = [cv2.cvtColor(cv2.imread(str(split.image_dir / f)), cv2.COLOR_BGR2RGB) for f in files]
    rows = [[i for i, r in enumerate(records) if r["image_file"] == f] for f in files]
    found = package.predict_batch(
        images, boxes=[[records[i]["bbox"] for i in image_rows] for image_rows in rows]
    )
    assert sum(len(r) for r in rows) == len(records) > 1
    for image_rows, people in zip(rows, found):
        np.testing.assert_allclose(people.keypoints, keypoints[image_rows], atol=1e-3)
        np.testing.assert_allclose(people.scores, scores[image_rows], atol=1e-4)


def test_pose_packages_predict_with_the_test_time_settings_evaluate_used(tmp_path):
    from conftest import tiny_params

    from hrnet.predict.api import ModelPackage
    from hrnet.tasks.pose.inference import pose_codec
    from hrnet.tasks.pose.stages import package_meta
    from pipeline.params import parse_params

    settings = {"flip_test": False, "shift_heatmap": False, "keypoint_score_threshold": 0.3}
    meta = {
        "task": "pose",
        **package_meta(parse_params(tiny_params(evaluate={"pose": settings})), PREPARED_DIR),
    }
    codec = pose_codec(meta)
    assert (codec.flip_test, codec.shift_heatmap, codec.input_size, codec.heatmap_size) == (
        False, False, (64, 64), (16, 16),
    )  # fmt: skip
    old = pose_codec({"input_size": [64, 96]})  # a package from before these were recorded
    assert (old.heatmap_size, old.flip_test, old.shift_heatmap) == ((16, 24), True, True)

    calls = []

    def network(images: torch.Tensor) -> torch.Tensor:  # every joint scores 0.25
        calls.append(len(images))
        return torch.full((len(images), 17, 16, 16), 0.25)

    image = np.zeros((80, 60, 3), np.uint8)
    for threshold, person_score in ((0.3, 0.0), (0.2, 0.25)):
        package = ModelPackage(tmp_path, {**meta, "keypoint_score_threshold": threshold}, network)
        (found,) = package.predict_batch([image], boxes=[[[5, 5, 40, 60]]])
        assert found.person_scores == pytest.approx([person_score])
    assert calls == [1, 1]  # flip_test off: one pass each
    package.predict_batch([image], boxes=[[[5, 5, 40, 60]]], flip_test=True)
    assert calls == [1, 1, 1, 1]  # asked for: the plain and the mirrored pass


def test_pose_at_detected_boxes_scores_people_as_the_evaluate_stage(tmp_path):
    """hrnet predict and the evaluate stage share one rescoring + OKS-NMS (crop areas, the
    package's recorded oks_nms_threshold / soft_nms)."""
    from conftest import tiny_params

    from hrnet.evaluation.evaluators import KeypointEvaluator
    from hrnet.evaluation.rescoring import score_people
    from hrnet.predict.api import ModelPackage
    from hrnet.tasks.pose import inference as api
    from hrnet.tasks.pose.stages import package_meta
    from pipeline.params import parse_params

    assert api.score_people is score_people
    assert KeypointEvaluator._score.__globals__["score_people"] is score_people

    class TwoPeople:  # a detector finding one person twice (same box) and one elsewhere
        class_names = ["background", "person"]

        def predict_batch(self, images):
            xyxy = np.array([[5, 5, 25, 45], [5, 5, 25, 45], [40, 10, 55, 40]], np.float64)
            return [{"boxes": xyxy, "scores": np.array([0.9, 0.8, 0.7]), "labels": np.array([1, 1, 1])}]

    def network(images: torch.Tensor) -> torch.Tensor:
        heatmaps = torch.zeros(len(images), 17, 16, 16)
        heatmaps[:, :, 8, 8] = 1.0  # every joint at the crop's centre
        return heatmaps

    image = np.zeros((64, 64, 3), np.uint8)
    kept = {}
    for threshold in (0.9, 1.0):
        settings = {"oks_nms_threshold": threshold, "flip_test": False}
        meta = {
            "task": "pose",
            **package_meta(parse_params(tiny_params(evaluate={"pose": settings})), PREPARED_DIR),
        }
        assert meta["oks_nms_threshold"] == threshold and meta["soft_nms"] is False
        (found,) = ModelPackage(tmp_path, meta, network).predict_batch([image], detector=TwoPeople())
        kept[threshold] = found.boxes[:, 0].tolist()
    assert kept[0.9] == [5.0, 40.0]  # the duplicate (OKS 1 > 0.9) is dropped
    assert sorted(kept[1.0]) == [5.0, 5.0, 40.0]  # nothing exceeds OKS 1.0
