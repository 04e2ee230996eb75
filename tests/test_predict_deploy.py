"""hrnet predict as a deployment tool: it goes on past broken images, and a package's predict
imports only what its format needs."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

import hrnet
from hrnet.cli import main
from hrnet.package import write_package

SIZE = (64, 64)  # (width, height)


def _meta(task, head, **extra):
    base = {"name": task, "task": task, "model": "hrnet_w18_small", "head": head, "data": "test"}
    return {**base, "input_size": list(SIZE), **extra}


def _shown_lines(stream: str) -> list[str]:
    """What a terminal shows of ``stream``: the progress bar redraws itself after each ``\\r``."""
    shown = (line.rsplit("\r", 1)[-1] for line in stream.split("\n"))
    return [line for line in shown if line.strip()]


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """A segmentation package in each format (one export each, shared by the module)."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("dist")
    seg = hrnet.create_model("hrnet_w18_small", task="segmentation", head="v2", num_outputs=19)
    for fmt in ("torch_export", "onnx"):
        write_package(root / fmt, seg, _meta("segmentation", "v2"), "", {}, fmt=fmt)
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three good JPEGs, one truncated JPEG (``b_cut.jpg``) and one PNG that is not an image."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("images")
    for name in ("a.jpg", "b_cut.jpg", "c.jpg", "e.jpg"):
        cv2.imwrite(str(path / name), (rng.random((48, 64, 3)) * 255).astype(np.uint8))
    data = (path / "b_cut.jpg").read_bytes()
    (path / "b_cut.jpg").write_bytes(data[: len(data) // 2])  # a download cut off half-way
    (path / "d_noise.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    return path


def test_a_folder_with_broken_images_is_predicted_past_them(packages, folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", "--package", str(packages / "torch_export"), str(folder), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    lines = _shown_lines(captured.err)
    assert len(lines) == 2 and "b_cut.jpg: truncated JPEG" in lines[0] and "d_noise.png" in lines[1]
    assert "3 image(s)" in captured.out and "2 skipped" in captured.out
    results = json.loads((out / "results.json").read_text())
    assert {r["file_name"] for r in results} == {"a.jpg", "c.jpg", "e.jpg"}
    skipped = json.loads((out / "skipped.json").read_text())
    assert [s["file"] for s in skipped] == ["b_cut.jpg", "d_noise.png"]
    assert {p.name for p in out.iterdir()} == {
        *(f"{s}_{kind}.png" for s in "ace" for kind in ("overlay", "labelIds")),
        "results.json",
        "skipped.json",
    }


def test_on_bad_image_fail_stops_with_one_line_and_writes_nothing(packages, folder, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["predict", "--package", str(packages / "torch_export"), "--out", str(out)]
    for argv in ([*base, str(folder), "--on-bad-image", "fail"], [*base, str(folder / "b_cut.jpg")]):
        assert main(argv) == 2  # a single image fails by default
        (err,) = _shown_lines(capsys.readouterr().err)
        assert err.startswith("hrnet predict: error: ") and "b_cut.jpg: truncated JPEG" in err
        assert not out.exists()


def _imports_after_predict(package, folder, out) -> set[str]:
    """Top-level and torch sub-modules a fresh interpreter holds after ``hrnet predict``."""
    code = (
        "import sys; from hrnet.cli import main; "
        f"rc = main(['predict', '--package', {str(package)!r}, {str(folder)!r}, '--out', {str(out)!r}]); "
        "print(sorted({m if m.startswith('torch.') else m.split('.')[0] for m in sys.modules})); sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(eval(done.stdout.strip().splitlines()[-1]))


TRAINING = {"pytorch_lightning", "lightning", "timm", "dvc", "dvclive", "ray", "pipeline", "torchvision"}


@pytest.mark.slow  # two fresh interpreters predicting
def test_a_package_imports_only_what_its_format_needs(packages, folder, tmp_path):
    """An ONNX package never loads torch.export's machinery (dynamo, sympy); a torch package never
    loads onnxruntime; neither loads the training stack."""
    onnx = _imports_after_predict(packages / "onnx", folder, tmp_path / "onnx")
    assert "onnxruntime" in onnx and not onnx & (TRAINING | {"torch._dynamo", "sympy", "onnx", "onnxscript"})
    torch_export = _imports_after_predict(packages / "torch_export", folder, tmp_path / "torch")
    assert "torch._dynamo" in torch_export
    assert not torch_export & (TRAINING | {"onnxruntime", "onnx", "onnxscript"})


class _Capture:
    """A video whose frames 1 and 2 do not decode; after frame 4 it has ended."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self):
        self.reads += 1
        good = self.reads - 1 in (0, 3, 4)
        return good, np.full((8, 8, 3), self.reads, np.uint8) if good else None

    def release(self) -> None:
        pass


def test_a_video_goes_on_past_frames_that_do_not_decode(tmp_path, capsys):
    from hrnet.errors import DataError
    from hrnet.predict.files import Frames, Skipped

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (8, 8))
    writer.write(np.zeros((8, 8, 3), np.uint8))
    writer.release()
    skipped = Skipped()
    frames = Frames(video, skipped)
    frames.capture = _Capture()
    assert [indices for _, indices in frames.batches(2)] == [[0, 3], [4]]
    assert [s["file"] for s in skipped.files] == ["clip.mp4#1", "clip.mp4#2"]
    assert "skipped clip.mp4#1: frame does not decode" in capsys.readouterr().err
    strict = Frames(video)  # --on-bad-image fail
    strict.capture = _Capture()
    with pytest.raises(DataError, match="clip.mp4: frame 1 does not decode"):
        list(strict.batches(2))
