"""Multiply-add counts (FlopCounterMode) and the ``hrnet summary`` command."""

from __future__ import annotations

import argparse
import json

import pytest

from hrnet.models.summary import add_arguments, format_table, run, summarize


@pytest.mark.parametrize(
    ("name", "size", "expected_gmacs"),
    [
        ("hrnet_w32", (256, 192), 7.65),
        pytest.param("hrnet_w48", (256, 192), 15.69, marks=pytest.mark.slow),
        pytest.param("hrnet_w32", (384, 288), 17.2, marks=pytest.mark.slow),
    ],
)
def test_pose_macs_within_one_percent(name: str, size: tuple[int, int], expected_gmacs: float) -> None:
    info = summarize(name, task="pose", head="v1", input_size=size)
    assert info["macs"] / 1e9 == pytest.approx(expected_gmacs, rel=0.01)
    assert info["num_outputs"] == 17


@pytest.mark.slow  # > 10 s on 2 shared cores
def test_summary_params_and_defaults() -> None:
    info = summarize("hrnet_w32")
    assert info["params"] == 28_536_113
    assert info["input_size"] == [256, 192]
    seg = summarize("hrnet_w18_small", task="segmentation", head="v2", input_size=(128, 128))
    assert seg["num_outputs"] == 19 and round(seg["params"] / 1e6, 1) == 1.5
    assert seg["macs"] > 0
    with pytest.raises(ValueError, match="valid tasks"):
        summarize("hrnet_w32", task="depth")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hrnet summary")
    add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.slow  # > 10 s on 2 shared cores
def test_cli_table_and_json(capsys) -> None:
    args = _parse(
        ["--model", "hrnet_w18_small", "--task", "pose", "--head", "v2p", "--input-size", "128", "96"]
    )
    assert args.input_size == [128, 96] and args.num_outputs is None and not args.json
    assert run(args) == 0
    table = capsys.readouterr().out
    assert "hrnet_w18_small" in table and "multiply-adds" in table and "pose / v2p" in table

    assert run(_parse(["--model", "hrnet_w32", "--num-outputs", "17", "--json"])) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"] == 28_536_113 and info["gmacs"] == pytest.approx(7.65, rel=0.01)


def test_cli_reports_bad_model(capsys) -> None:
    assert run(_parse(["--model", "hrnet_w99"])) == 2
    assert "valid names" in capsys.readouterr().out


def test_help_explains_difference_with_paper() -> None:
    parser = argparse.ArgumentParser(prog="hrnet summary")
    add_arguments(parser)
    text = " ".join(parser.format_help().split())
    assert "7.1G" in text and "14.6G" in text and "left part of the network out" in text


def test_format_table_rounds() -> None:
    info = {"model": "m", "task": "pose", "head": "v1", "input_size": [1, 2], "num_outputs": 3}
    text = format_table({**info, "params": 28_536_113, "macs": 7_645_003_776})
    assert "28.5M" in text and "7.65G" in text


@pytest.mark.slow  # counts the MACs of three W32 variants
def test_cli_prints_any_variant(capsys) -> None:
    base = ["--model", "hrnet_w32", "--json"]
    assert run(_parse(base)) == 0
    official = json.loads(capsys.readouterr().out)
    assert official["variant"] == "official"
    assert run(_parse([*base, "--fusion", "final", "--fusion-downsample", "bilinear"])) == 0
    variant = json.loads(capsys.readouterr().out)
    assert variant["variant"] == "fusion=final, fusion_downsample=bilinear"
    assert variant["params"] < official["params"] and variant["macs"] < official["macs"]
    assert run(_parse([*base[:2], "--streams", "parallel"])) == 0
    table = capsys.readouterr().out
    assert "streams=parallel" in table and "multiply-adds" in table
