"""Smoke tests of ``hrnet bench`` and ``hrnet bench-data`` on tiny settings (no timing assertions)."""

from __future__ import annotations

import json
import tempfile

import pytest

from hrnet.cli import main

TINY_BENCH = [
    "bench", "--model", "hrnet_w18_small", "--input-size", "64", "64", "--batch-size", "1",
    "--warmup", "1", "--repeats", "2", "--steps", "1", "--infer-steps", "1", "--matmul-size", "64",
    "--threads", "1",
]  # fmt: skip


def _check_common(report: dict, benchmark: str) -> None:
    assert report["benchmark"] == benchmark
    assert report["command"].startswith(f"hrnet {benchmark.split()[1]}")
    for key in ("cpu", "logical_cpus", "torch", "torch_threads"):
        assert key in report["machine"], key


@pytest.mark.slow  # > 10 s on 2 shared cores
def test_bench_against_timm_writes_table_and_json(tmp_path, capsys) -> None:
    pytest.importorskip("timm")
    out = tmp_path / "bench.json"
    assert main([*TINY_BENCH, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "train img/s" in printed and "inference img/s" in printed and "ours/timm" in printed
    assert "train peak MiB" in printed and str(out) in printed

    report = json.loads(out.read_text())
    _check_common(report, "hrnet bench")
    assert "--timm-model hrnet_w18_small" in report["command"]
    assert report["config"]["batch_size"] == 1 and report["config"]["threads"] == 1
    assert report["matmul"]["gflops_per_s"] > 0 and len(report["matmul"]["samples"]) == 4
    assert set(report["results"]) == {"ours", "timm"}
    for entry in report["results"].values():
        assert entry["gmacs_per_img"] > 0
        assert entry["train_peak_memory_mib"] > 0
        for mode in ("train", "infer"):
            stats = entry[mode]
            assert stats["img_per_s"] > 0 and stats["gflops_per_s"] > 0
            assert stats["fraction_of_matmul"] > 0
            assert len(stats["repeat_seconds"]) == 2
    ratios = report["ratios_ours_over_timm"]
    assert {"train_throughput", "infer_throughput", "train_peak_memory", "gmacs"} <= set(ratios)
    assert ratios["train_throughput"] == pytest.approx(
        report["results"]["ours"]["train"]["img_per_s"] / report["results"]["timm"]["train"]["img_per_s"],
        rel=1e-3,
    )
    assert not list(tmp_path.glob("*.tmp"))  # atomic write left no temporary behind


def test_bench_ours_only_segmentation_options(tmp_path, capsys) -> None:
    out = tmp_path / "seg.json"
    argv = [*TINY_BENCH, "--task", "segmentation", "--head", "v2", "--input-size", "64", "48",
            "--precision", "bf16-mixed", "--channels-last", "--no-timm", "--no-memory", "--modes", "train",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "train img/s" in capsys.readouterr().out
    report = json.loads(out.read_text())
    _check_common(report, "hrnet bench")
    assert set(report["results"]) == {"ours"} and report["ratios_ours_over_timm"] == {}
    assert report["config"]["precision"] == "bf16-mixed" and report["config"]["channels_last"]
    assert report["matmul"]["dtype"] == "bfloat16"
    assert (
        "infer" not in report["results"]["ours"] and "train_peak_memory_mib" not in report["results"]["ours"]
    )


def test_bench_rejects_bad_options(capsys) -> None:
    assert main([*TINY_BENCH, "--repeats", "0", "--no-timm"]) == 2
    assert "must be >= 1" in capsys.readouterr().err


def test_bench_data_writes_table_and_json(tmp_path, capsys) -> None:
    out = tmp_path / "data.json"
    argv = [
        "bench-data", "--batch-size", "2", "--warmup", "2", "--repeats", "2", "--samples", "4",
        "--pose-images", "2", "--pose-image-size", "160", "120", "--pose-input-size", "64", "48",
        "--seg-images", "1", "--seg-image-size", "128", "64", "--seg-crop-size", "32", "64",
        "--seg-png-level", "0", "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "samples/s" in printed and "pose" in printed and "segmentation" in printed

    report = json.loads(out.read_text())
    _check_common(report, "hrnet bench-data")
    assert set(report["results"]) == {"pose", "segmentation"}
    for entry in report["results"].values():
        assert entry["samples_per_s"] > 0 and entry["decode_ms_per_sample"] > 0
        assert len(entry["repeat_samples_per_s"]) == 2
        assert isinstance(entry["meets_target"], bool)
    assert report["results"]["pose"]["input_size_hw"] == [64, 48]
    assert report["results"]["segmentation"]["crop_size_hw"] == [32, 64]
    assert report["results"]["segmentation"]["png_level"] == 0


@pytest.mark.slow
def test_bench_inference_compares_packaged_variants_with_timm(tmp_path, monkeypatch):
    temp = tmp_path / "temp"  # where the packaged variants' files go while they are timed
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    out = tmp_path / "inference.json"
    argv = [
        "bench", "--inference", "--model", "hrnet_w18_small", "--input-size", "64", "64",
        "--batch-size", "2", "--threads", "1", "--warmup", "1", "--repeats", "2", "--infer-steps", "1",
        "--no-compile", "--out", str(out), "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert list(report["results"]) == [
        "timm_eager", "ours_eager", "packaged", "onnxruntime", "onnxruntime_int8", "packaged_bf16",
    ]  # fmt: skip
    assert report["results"]["timm_eager"]["vs_timm_eager"] == 1.0
    assert all(entry["images_per_s"] > 0 for entry in report["results"].values())
    assert report["command"].startswith("hrnet bench --inference --model hrnet_w18_small")
    assert not list(temp.glob("hrnet-bench-*"))  # removed after timing


@pytest.mark.slow
def test_bench_detection_times_our_faster_rcnn_against_torchvisions(tmp_path, capsys):
    """Both detectors train a step on the same batch; each one's peak memory comes from its own
    subprocess; the ratio is of the two medians of this run."""
    out = tmp_path / "detection.json"
    argv = [
        "bench", "--detection", "--model", "hrnet_w18_small", "--reference", "resnet18",
        "--input-size", "64", "96", "--batch-size", "1", "--threads", "1", "--warmup", "1",
        "--repeats", "2", "--steps", "1", "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "detection_step" and report["command"].startswith("hrnet bench --detection")
    ours, theirs = report["results"]["ours"], report["results"]["torchvision"]
    for entry in (ours, theirs):
        assert entry["step_s"] > 0 and entry["train_peak_memory_mib"] > 0
        assert len(entry["step_s_repeats"]) == 2
    assert ours["parameters"] != theirs["parameters"]  # two different networks were built
    # the ratio is of the unrounded medians: the rounded step times give it to within a rounding step
    ratio = report["ratios"]["step_time_ours_over_torchvision"]
    assert ratio == pytest.approx(ours["step_s"] / theirs["step_s"], abs=1e-3)
    assert "torchvision: resnet18-FPN" in capsys.readouterr().out
    assert main([*argv[:-2], "--steps", "0"]) == 2  # refused in one line
