"""The evaluate stage on 2 DDP processes (gloo on CPU) writes what it writes in one process, uneven
shards included: the metrics (within float noise: each rank batches other images together, which
moved one detection score of 150 by 1e-5 in a hand run) and the same prediction files, compared by
their contents, and the same figure files. Under bf16-mixed the predictions are fp32's within bf16's
precision (see BF16)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import copy_trained, stage, tiny_params, tiny_project, trained_template

pytestmark = pytest.mark.slow

# 5 val images: shards of 3 and 2 (pose: the people on them)
FIVE_VAL_IMAGES = {"pose": {"image_size": [96, 96]}, "segmentation": {}, "detection": {}}


# How far the 2-process predictions may be from the one-process ones: float noise (other batches)
DDP = {"numbers": 1e-3, "share": 1.0, "pixels": 0.0, "per_category": True}
# bf16-mixed against fp32: bf16 keeps 8 significant bits (relative error up to 2^-8 = 0.4 %): a score
# moves by a few thousandths, a coordinate of ~100 px by about half a pixel. The tiny models are
# barely trained, so where two heatmap peaks or two classes are that close the argmax jumps (a joint
# moved 236 px, a box changed class): at least 80 % of the values (measured 2026-12-03: pose 95 %,
# detection 85 %) within 1 (pixel or score), per image as many boxes or people (classes may change),
# and at most 1 % of the segmentation labels changed (measured 0).
BF16 = {"numbers": 1.0, "share": 0.8, "pixels": 0.01, "per_category": False}


def _set_params(project, **overrides):
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params(**overrides), sort_keys=False))


def _outputs(project):
    reports = project / "reports"
    return json.loads((reports / "metrics.json").read_text()), reports


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("task", ["pose", "segmentation", "detection"])
def test_evaluate_on_two_processes_equals_one(tmp_path, task):
    synthetic = {task: {"num_val_images": 5, **FIVE_VAL_IMAGES[task]}}
    # every box kept: the detector after 2 steps scores all its boxes below the default 0.05
    evaluate = {"detection": {"score_threshold": 0.0}}
    base = {"task": task, "data": {"synthetic": synthetic}, "train": {"limit_train_batches": 2}}
    base["evaluate"] = evaluate
    project = tiny_project(tmp_path / "p", **base)
    # data and weights: prepared and trained in this process (the stage under test is evaluate, a process
    # of its own)
    copy_trained(trained_template(tiny_params(**base)), project)
    stage(project, "evaluate", timeout=900)
    single, reports = _outputs(project)
    (tmp_path / "single").mkdir()
    reports.rename(tmp_path / "single" / "reports")

    _set_params(project, **{**base, "evaluate": {**evaluate, "devices": 2}})
    stage(project, "evaluate", timeout=900)
    ddp, reports = _outputs(project)
    assert _flat(ddp) == pytest.approx(_flat(single), abs=1e-4)
    single_reports = tmp_path / "single" / "reports"
    written = sorted(p.name for p in (reports / "figures").iterdir())
    assert written and written == sorted(p.name for p in (single_reports / "figures").iterdir())
    _assert_same_predictions(reports / "predictions", single_reports / "predictions", **DDP)
    assert not (reports / ".evaluate.staging").exists()

    # evaluate.precision alone: the evaluators take bf16 outputs (numpy has no bfloat16)
    _set_params(project, **{**base, "evaluate": {**evaluate, "precision": "bf16-mixed"}})
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
    _assert_same_predictions(reports / "predictions", single_reports / "predictions", **BF16)


def _flat(tree, prefix=""):
    """Numbers by dotted key (None for a class neither present nor predicted); strings as they are."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _numbers(entry: dict) -> np.ndarray:
    """A prediction's numbers (keypoints, box, score, ...) in a fixed order, ids left out."""
    values = [entry[key] for key in sorted(entry) if key not in ("image_id", "category_id")]
    return np.hstack([np.ravel(np.asarray(v, dtype=np.float64)) for v in values])


def _assert_same_predictions(
    written: Path, reference: Path, *, numbers: float, share: float, pixels: float, per_category: bool
) -> None:
    """The same prediction files, and in each the same predictions: per image (and category, with
    ``per_category``) as many,
    each matched with the nearest one of the other file (by the median difference of their values:
    the order of near-equal scores may differ), and at least a ``share`` of all matched values within
    ``numbers`` of each other; label PNGs with at most a fraction ``pixels`` of labels changed."""
    names = sorted(p.name for p in written.iterdir())
    assert names and names == sorted(p.name for p in reference.iterdir())
    for name in names:
        if name.endswith(".png"):
            ours, theirs = (cv2.imread(str(d / name), cv2.IMREAD_UNCHANGED) for d in (written, reference))
            assert ours.shape == theirs.shape and (ours != theirs).mean() <= pixels, name
            continue
        groups: dict[tuple, list[list[np.ndarray]]] = {}
        for side, folder in enumerate((written, reference)):
            for entry in json.loads((folder / name).read_text()):
                key = (entry["image_id"], entry.get("category_id") if per_category else None)
                groups.setdefault(key, [[], []])[side].append(_numbers(entry))
        assert groups, f"{name} holds no predictions"
        differences = []
        for key, (ours, theirs) in groups.items():
            assert len(ours) == len(theirs), (name, key, len(ours), len(theirs))
            pairs = np.abs(np.stack(ours)[:, None] - np.stack(theirs)[None])  # (ours, theirs, values)
            nearest = np.median(pairs, -1)
            differences += [
                pairs[np.arange(len(ours)), nearest.argmin(1)],
                pairs[nearest.argmin(0), np.arange(len(theirs))],
            ]
        within = (np.concatenate(differences) <= numbers).mean()
        assert within >= share, (name, f"{within:.3f} of the values within {numbers}")
