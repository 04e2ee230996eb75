"""The evaluate stage on 2 DDP processes (gloo on CPU) writes what it writes in one process, uneven
shards included: the metrics (within float noise: each rank batches other images together, which
moved one detection score of 150 by 1e-5 in a hand run) and the same prediction and figure files."""

import json

import pytest
import yaml
from conftest import copy_project, stage, tiny_params

pytestmark = pytest.mark.slow

# 5 val images: shards of 3 and 2 (pose: the people on them)
FIVE_VAL_IMAGES = {"pose": {"image_size": [96, 96]}, "segmentation": {}, "detection": {}}


def _set_params(project, **overrides):
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params(**overrides), sort_keys=False))


def _outputs(project):
    reports = project / "reports"
    return json.loads((reports / "metrics.json").read_text()), reports


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("task", ["pose", "segmentation", "detection"])
def test_evaluate_on_two_processes_equals_one(tmp_path, task):
    project = copy_project(tmp_path / "p")
    synthetic = {task: {"num_val_images": 5, **FIVE_VAL_IMAGES[task]}}
    base = {"task": task, "data": {"synthetic": synthetic}, "train": {"limit_train_batches": 2}}
    _set_params(project, **base)
    for name in ("synthesize", "prepare", "train", "evaluate"):
        stage(project, name, timeout=900)
    single, reports = _outputs(project)
    (tmp_path / "single").mkdir()
    reports.rename(tmp_path / "single" / "reports")

    _set_params(project, **base, evaluate={"devices": 2})
    stage(project, "evaluate", timeout=900)
    ddp, reports = _outputs(project)
    assert _flat(ddp) == pytest.approx(_flat(single), abs=1e-4)
    for name in ("predictions", "figures"):
        written = sorted(p.name for p in (reports / name).iterdir())
        assert written and written == sorted(
            p.name for p in (tmp_path / "single" / "reports" / name).iterdir()
        )
    assert not (reports / ".evaluate.staging").exists()

    # evaluate.precision alone: the evaluators take bf16 outputs (numpy has no bfloat16)
    _set_params(project, **base, evaluate={"precision": "bf16-mixed"})
    result = stage(project, "evaluate", timeout=900)
    assert "bfloat16" in result.stdout + result.stderr  # Lightning's AMP line: it ran under autocast
    bf16, reports = _outputs(project)
    assert _flat(bf16).keys() == _flat(single).keys()
    for key, value in _flat(bf16).items():
        fp32 = _flat(single)[key]
        if key.startswith(("num_", "baseline_")) or isinstance(value, str) or fp32 == -1:
            assert value == fp32, key  # counts, the model-free baselines, COCO's -1 (no such boxes)
        elif value is not None:
            assert 0.0 <= value <= 1.0, (key, value)
    assert sorted(p.name for p in (reports / "predictions").iterdir()) == sorted(
        p.name for p in (tmp_path / "single" / "reports" / "predictions").iterdir()
    )


def _flat(tree, prefix=""):
    """Numbers by dotted key (None for a class neither present nor predicted); strings as they are."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
