"""package.precision int8 / bf16: what the packages hold, that predict runs them unchanged, the bf16
refusal, and the refusal of a package whose val metric drops too far."""

import json

import numpy as np
import pytest
import torch

import hrnet
from hrnet.cli import main
from hrnet.package import write_package
from hrnet.predict import quantize
from hrnet.predict.quantize import PrecisionError

SIZE = (64, 64)  # (width, height)
META = {
    "name": "seg", "task": "segmentation", "model": "hrnet_w18_small", "head": "v2", "data": "test",
    "input_size": list(SIZE), "num_classes": 19, "base_size": None, "mode": "whole", "scales": [1.0],
    "flip": False, "align_corners": False,
}  # fmt: skip


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return hrnet.create_model("hrnet_w18_small", task="segmentation", head="v2", num_outputs=19).eval()


@pytest.fixture(scope="module")
def int8_package(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("dist") / "int8"
    check, calibration = torch.randn(2, 3, 64, 64), torch.randn(8, 3, 64, 64)
    # the default format (torch_export): int8 is an ONNX package whatever the format says
    write_package(
        path, model, META, "", {}, precision="int8", check_images=check, calibration_images=calibration
    )
    return path


@pytest.mark.slow  # an export, a quantization or a bf16 check
def test_int8_package_is_quantized_onnx_and_says_what_stays_fp32(int8_package, model, tmp_path):
    import onnx

    meta = json.loads((int8_package / "package.json").read_text())
    assert meta["precision"] == "int8" and meta["program"] == "model.onnx"
    assert meta["quantization"]["calibration_images"] == 8 and isinstance(meta["fp32_ops"], dict)
    ops = {node.op_type for node in onnx.load(str(int8_package / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops  # QDQ around the convolutions
    assert 0 < meta["precision_check"]["max_abs_diff"] < 0.1  # int8 rounding, not a broken graph
    # load_package and hrnet predict run it as any ONNX package
    image = (np.random.default_rng(0).random((48, 80, 3)) * 255).astype(np.uint8)
    assert hrnet.load_package(int8_package).predict(image).shape == (48, 80)
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), image)
    assert (
        main(
            ["predict", "--package", str(int8_package), str(tmp_path / "a.png"), "--out", str(tmp_path / "o")]
        )
        == 0
    )
    assert (tmp_path / "o" / "a_labelIds.png").is_file()


def test_int8_without_calibration_images_is_refused(model, tmp_path):
    with pytest.raises(PrecisionError, match="calibration_images"):
        write_package(tmp_path / "p", model, META, "", {}, precision="int8")
    assert not (tmp_path / "p").exists()


def _no_native_bf16(monkeypatch, speedup):
    features = dict.fromkeys(("AVX2", "AVX512", "AVX512_VNNI", "AVX_VNNI", "AVX512_BF16", "AMX"), False)
    monkeypatch.setattr(quantize, "cpu_features", lambda: {**features, "AVX2": True})
    monkeypatch.setattr(
        quantize, "bf16_speed", lambda m, b: {"fp32_s": 1.0, "bf16_s": 1 / speedup, "bf16_speedup": speedup}
    )


def test_bf16_is_refused_without_native_bf16_when_measured_slower(model, tmp_path, monkeypatch):
    _no_native_bf16(monkeypatch, speedup=0.25)
    with pytest.raises(PrecisionError) as raised:
        write_package(tmp_path / "p", model, META, "", {}, precision="bf16")
    message = str(raised.value)
    assert "\n" not in message and "AVX512_BF16 or AMX" in message and "4.0x slower" in message
    assert not (tmp_path / "p").exists()
    with pytest.raises(PrecisionError, match="onnxruntime has no bf16"):
        write_package(tmp_path / "p", model, META, "", {}, precision="bf16", fmt="onnx")


@pytest.mark.slow  # an export, a quantization or a bf16 check
def test_bf16_package_runs_under_autocast(model, tmp_path, monkeypatch):
    _no_native_bf16(monkeypatch, speedup=1.5)  # no native bf16, but measured faster: allowed
    check = torch.randn(2, 3, 64, 64)
    write_package(tmp_path / "p", model, META, "", {}, precision="bf16", check_images=check)
    meta = json.loads((tmp_path / "p" / "package.json").read_text())
    assert meta["precision"] == "bf16" and meta["bf16_speed"]["bf16_speedup"] == 1.5
    package = hrnet.load_package(tmp_path / "p")
    assert package.model.autocast
    out = package.model(check)
    assert out.dtype == torch.float32
    with torch.no_grad():
        fp32 = model(check)
    relative = float((out - fp32).abs().max() / fp32.abs().max())
    assert 1e-3 < relative < 0.1  # bf16 rounding (fp32 export: ~1e-6): autocast did run


def test_a_package_whose_metric_drops_too_far_is_refused(int8_package, model, tmp_path, monkeypatch):
    """score_and_place: a drop above max_metric_drop is refused in one line with the fp32 package
    written at dist/<name>; one within it replaces that with the package, its package.json
    recording both metrics (and SHA256SUMS still verifying)."""
    import shutil

    from conftest import tiny_params

    from pipeline import package_precision
    from pipeline.params import parse_params

    target = tmp_path / "dist" / "seg"
    target.parent.mkdir()

    def write_fp32():  # what the package stage passes: writes the fp32 package at target
        target.mkdir()
        (target / "fp32").write_text("the fp32 package")

    scores = {}
    monkeypatch.setattr(package_precision, "score", lambda params, network: scores[network is model])
    for limit, packaged, refused in ((0.5, 40.0, True), (1.0, 41.5, False)):
        params = parse_params(
            tiny_params(task="segmentation", package={"precision": "int8", "max_metric_drop": limit})
        )
        scores.update({True: {"mIoU": 42.0}, False: {"mIoU": packaged}})
        candidate = tmp_path / "dist" / ".seg.candidate"
        shutil.copytree(int8_package, candidate)
        if refused:
            with pytest.raises(package_precision.MetricDropError) as raised:
                package_precision.score_and_place(params, candidate, target, model, write_fp32)
            assert "\n" not in str(raised.value) and "2.00 points below fp32's 42.00" in str(raised.value)
            assert (target / "fp32").is_file()
        else:
            package_precision.score_and_place(params, candidate, target, model, write_fp32)
            metric = hrnet.load_package(target).meta["metric"]
            assert (metric["name"], metric["fp32"], metric["packaged"]) == ("mIoU", 42.0, 41.5)
        assert not candidate.exists()


def test_a_package_takes_the_networks_place_in_the_evaluate_stages_module(int8_package):
    """What score() does before task.evaluate: the segmentation module still reads its settings
    (align_corners) and gets the package's logits for a whole val image (the program takes any size)."""
    from conftest import tiny_params

    from hrnet.tasks.lightning import network_kwargs
    from hrnet.tasks.segmentation.module import SegmentationModule
    from pipeline.package_precision import PackagedNetwork
    from pipeline.params import parse_params

    # the evaluate stage's module as build_module makes it, Cityscapes' classes (no prepared data here)
    module = SegmentationModule(**network_kwargs(parse_params(tiny_params(task="segmentation")))).eval()
    package = hrnet.load_package(int8_package)
    module.model = PackagedNetwork(package.model, module.model)
    images = torch.randn(2, 3, 96, 128)  # a whole val image, not the package's 64x64
    logits = module.logits_at(images, (96, 128))
    expected = torch.nn.functional.interpolate(
        torch.as_tensor(package.model(images)),
        size=(96, 128),
        mode="bilinear",
        align_corners=module.align_corners,
    )
    torch.testing.assert_close(logits, expected)


def test_a_mask_package_is_refused_when_its_segm_ap_drops_too_far(int8_package, model, tmp_path, monkeypatch):
    """A mask framework's package keeps box AP and segm AP: a drop in segm AP alone is refused,
    naming it; within the limit, package.json records both (``metric`` and ``segm_metric``)."""
    import shutil

    from conftest import tiny_params

    from pipeline import package_precision
    from pipeline.params import parse_params

    assert package_precision.guarded("AP", {"AP": 0.3, "segm_AP": 0.2, "AP50": 0.5}) == ["AP", "segm_AP"]
    assert package_precision.guarded("mIoU", {"mIoU": 0.4, "pixel_accuracy": 0.9}) == ["mIoU"]

    class MaskFramework(torch.nn.Module):
        produces_masks = True

    # in the evaluate stage's module, the package's network scores masks where the trained one does
    assert package_precision.PackagedNetwork(lambda x: x, MaskFramework()).produces_masks is True
    assert package_precision.PackagedNetwork(lambda x: x, torch.nn.Identity()).produces_masks is False
    target = tmp_path / "dist" / "det"
    target.parent.mkdir()

    def write_fp32():
        target.mkdir()
        (target / "fp32").write_text("the fp32 package")

    fp32 = {"AP": 30.0, "segm_AP": 25.0}
    for segm, refused in ((23.5, True), (24.5, False)):
        packaged = {"AP": 29.9, "segm_AP": segm}  # box AP within the limit either way
        monkeypatch.setattr(
            package_precision, "score", lambda params, network, p=packaged: fp32 if network is model else p
        )
        params = parse_params(
            tiny_params(task="detection", package={"precision": "int8", "max_metric_drop": 1.0})
        )
        candidate = tmp_path / "dist" / ".det.candidate"
        shutil.copytree(int8_package, candidate)
        if refused:
            with pytest.raises(package_precision.MetricDropError) as raised:
                package_precision.score_and_place(params, candidate, target, model, write_fp32)
            assert "\n" not in str(raised.value)
            assert "val segm_AP 23.50 is 1.50 points below fp32's 25.00" in str(raised.value)
            assert (target / "fp32").is_file()
            shutil.rmtree(target)
        else:
            package_precision.score_and_place(params, candidate, target, model, write_fp32)
            meta = hrnet.load_package(target).meta
            assert (meta["metric"]["name"], meta["metric"]["packaged"]) == ("AP", 29.9)
            assert (
                meta["segm_metric"]["name"],
                meta["segm_metric"]["fp32"],
                meta["segm_metric"]["packaged"],
            ) == (
                "segm_AP",
                25.0,
                24.5,
            )
        assert not candidate.exists()
