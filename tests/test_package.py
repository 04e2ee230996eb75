import json

import numpy as np
import pytest
import torch

import hrnet
from hrnet.package import PackageError, write_package

INPUT_SIZE = (64, 64)  # (width, height)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    torch.manual_seed(0)
    model = hrnet.create_model("hrnet_w18_small", task="pose", head="v1").eval()
    meta = {
        "name": "tiny",
        "task": "pose",
        "model": "hrnet_w18_small",
        "head": "v1",
        "input_size": list(INPUT_SIZE),
        "num_joints": 17,
        "flip_test": True,
        "data": "test",
    }
    out = tmp_path_factory.mktemp("dist") / "tiny"
    images = torch.randn(2, 3, INPUT_SIZE[1], INPUT_SIZE[0])
    write_package(out, model, meta, "seed: 1\n", {"AP": 0.5}, check_images=images)
    return model, out


def test_package_layout_and_outputs_equal_the_model(packaged):
    model, out = packaged
    names = {p.name for p in out.iterdir()}
    assert names == {"model.pt2", "package.json", "params.yaml", "metrics.json", "README.md", "SHA256SUMS"}
    meta = json.loads((out / "package.json").read_text())
    assert meta["batchnorm_folded"] and meta["check"]["max_abs_diff"] < 1e-4
    assert "AP | 0.5000" in (out / "README.md").read_text()
    assert json.loads((out / "package.json").read_text())["input_size"] == list(INPUT_SIZE)

    package = hrnet.load_package(out)
    for batch in (1, 3):  # the exported batch dimension is dynamic
        images = torch.randn(batch, 3, INPUT_SIZE[1], INPUT_SIZE[0])
        with torch.no_grad():
            expected = model(images)
        actual = package.model(images)
        assert actual.shape == (batch, 17, 16, 16)
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)

    image = (np.random.default_rng(0).random((80, 60, 3)) * 255).astype(np.uint8)
    keypoints, scores = package.predict(image, boxes=[[5, 5, 40, 60], [0, 0, 60, 80]])
    assert keypoints.shape == (2, 17, 2) and scores.shape == (2, 17)


def test_tampered_file_is_refused_by_name(packaged, tmp_path):
    _, out = packaged
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in out.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    program = bytearray((copy / "model.pt2").read_bytes())
    program[len(program) // 2] ^= 0xFF
    (copy / "model.pt2").write_bytes(bytes(program))
    with pytest.raises(PackageError, match=r"model\.pt2: SHA-256 does not match SHA256SUMS"):
        hrnet.load_package(copy)

    (copy / "SHA256SUMS").unlink()
    with pytest.raises(PackageError, match="SHA256SUMS: missing"):
        hrnet.load_package(copy)


def test_predict_command_draws_skeletons(packaged, tmp_path, capsys):
    import cv2

    from hrnet.cli import main

    _, out = packaged
    image_file = tmp_path / "people.jpg"
    cv2.imwrite(str(image_file), np.full((90, 70, 3), 127, np.uint8))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"bbox": [5, 5, 40, 60]}, [10, 20, 30, 50]]))
    drawn = tmp_path / "drawn"
    args = ["predict", "--package", str(out), str(image_file), "--out", str(drawn)]
    assert main([*args, "--boxes", str(boxes), "--threshold", "0"]) == 0
    image = cv2.imread(str(drawn / "people.jpg"))
    assert image.shape == (90, 70, 3)
    assert (np.abs(image.astype(int) - 127) > 10).any(), "no skeleton was drawn"
    results = json.loads((drawn / "results.json").read_text())
    assert [r["bbox"] for r in results] == [[5, 5, 40, 60], [10, 20, 30, 50]]
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 for r in results)
    assert "1 image(s), 2 result(s)" in capsys.readouterr().out

    boxes.write_text(json.dumps([[1, 2, 0, 5]]))
    missing = tmp_path / "never"
    assert (
        main(
            ["predict", "--package", str(out), str(image_file), "--boxes", str(boxes), "--out", str(missing)]
        )
        == 2
    )
    assert "box 0 is [1, 2, 0, 5]" in capsys.readouterr().err
    assert not missing.exists()

    assert main(["predict", "--package", str(out), str(image_file), "--out", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "give --boxes FILE" in err and "--detector DIR" in err and len(err.strip().splitlines()) == 1
    assert not missing.exists()


def test_summary_command_prints_json(capsys):
    from hrnet.cli import main

    assert (
        main(
            [
                "summary",
                "--model",
                "hrnet_w32",
                "--task",
                "pose",
                "--head",
                "v1",
                "--input-size",
                "256",
                "192",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["params"] == 28_536_113


def test_the_model_card_describes_each_task_s_real_interface():
    from hrnet.package import _model_card, task_inference

    base = {"name": "x", "model": "hrnet_w18_small", "data": "synthetic"}
    detection = _model_card(
        {**base, "task": "detection", "head": "v2p", "input_size": [128, 128],
         "resize": {"min_size": 128, "max_size": 200}},
        {"AP": 0.5},
        task_inference("detection"),
    )  # fmt: skip
    assert "a list of RGB images" in detection and "[0, 1]" in detection
    assert "shorter side is 128 px and its longer side at most 200 px" in detection
    assert "ImageNet" not in detection and "(N, 3," not in detection
    meta = {**base, "task": "pose", "head": "v1", "input_size": [96, 128]}
    pose = _model_card(meta, {"AP": 0.5}, task_inference("pose"))
    assert "(N, 3, 128, 96)" in pose and "ImageNet mean and std" in pose
