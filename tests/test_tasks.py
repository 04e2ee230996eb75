"""Every task x head learns, end to end: prepare -> train -> evaluate -> package on small synthetic data.

Each run is seeded and just long enough to beat the task's trivial baseline by a clear margin on
the val split, images it has not trained on (a model that outputs zeros, one that memorises, or a
broken loss fails here). The package must compute what the checkpoint
computes; for detection on real, non-square validation images on which boxes are found.
"""

import json
from pathlib import Path

import pytest
import torch
from conftest import copy_trained, deep_update, tiny_params, trained_template
from detection_helpers import pretrained_backbone

import hrnet
from hrnet.tasks import TASKS
from hrnet.tasks.pose.module import JointsMSELoss
from pipeline.common import PREPARED_DIR
from pipeline.common.checkpoints import load_module
from pipeline.evaluate import evaluate
from pipeline.package import package
from pipeline.params import parse_params

EXPECTED_METRICS = {
    "pose": {"AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "baseline_mean_pose"},
    "segmentation": {"mIoU", "pixel_accuracy", "per_class_iou", "baseline_majority_class"},
    "detection": {"AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L", "baseline_center_box"},
}
# (metric, baseline entry, margin over the baseline's metric, factor over it) that a short run must
# beat on the val split; pose: see below
SCORE = {
    "segmentation": ("mIoU", "baseline_majority_class", 0.04, 3.0),
    "detection": ("AP50", "baseline_center_box", 0.05, 1.0),
}
# Short seeded runs that learn, on top of conftest's tiny settings, all scored on held-out val images.
# Measured with one torch thread, as each of the suite's two workers runs (CPU training is
# bit-identical for a given thread count, so these repeat): segmentation v1 mIoU 0.091 vs majority
# class 0.017; detection (48 train images of one or two objects, 24 val, 24 epochs) AP50 v1 0.43,
# v2 0.35, v2p 0.21, v2p FCOS 0.09 vs the centre box's 0.0 (other seeds: v2p 0.16, FCOS 0.23; at
# batch 2 and lr 0.003 v2p reached only 0.02-0.04, too close to chance to tell learning apart); pose
# keypoint AP stays at the mean pose's (both ~0.005) for runs this short, so pose is scored on its val
# heatmap loss against the trivial answer, all-zero heatmaps: v1 0.0146 vs 0.0464 (ratio 0.31) after 16
# epochs; after 8 (2026-12-04) v1 0.335, v2 0.343, v2p 0.334 (after 12: 0.309, 0.332, 0.316).
ZERO_HEATMAP_RATIO = 0.5
LEARN = {
    "pose": {
        "data": {"synthetic": {"pose": {"num_train_images": 24, "num_val_images": 6}}},
        "train": {"epochs": 8},
        "pose": {"batch_size": 8, "lr": 0.002, "lr_milestones": [6], "sigma": 3.0},
    },
    "segmentation": {"train": {"epochs": 20}},
    "detection": {
        "data": {
            "synthetic": {
                "detection": {"num_train_images": 48, "num_val_images": 24, "objects_per_image": [1, 2]}
            }
        },
        "train": {"epochs": 12},
        "detection": {"lr": 0.002, "batch_size": 4, "warmup_steps": 10},
    },
}
# Detection's epochs, each measured over its margin with one torch thread (2026-12-04): AP50 v2p 0.126
# after 12 (0.067 after 10, 0.263 after 16: the cosine schedule ends sooner, so a shorter run is not just
# a cut-off longer one); v1 0.25 after 10, 0.156 after 7. Runs repeat bit for bit on one machine but not
# across machines of the same CPU type: v2 after 8 epochs at lr 0.002 gave 0.093 on one and 0.043 on another
# (0.072 after 10). So its setting is the one that held over three seeds on the second: lr 0.003, AP50
# 0.067 (seed 42), 0.126 (1), 0.060 (2).
# Segmentation V2 learns most slowly of the three heads: mIoU 0.058 against its 0.057 floor on the second
# machine after 20 epochs (0.035 with seed 2); after 30 at lr 0.05 0.101, 0.096, 0.098, 0.121 over seeds
# 42, 1, 2, 3 (V1 and V2P at their 20 epochs: 0.102, 0.072, 0.083 and 0.095, 0.094, 0.078 over 42, 1, 2).
SHORTER = {
    ("detection", "v1"): {"train": {"epochs": 7}},
    ("detection", "v2"): {"train": {"epochs": 8}, "detection": {"lr": 0.003}},
    ("segmentation", "v2"): {"train": {"epochs": 30}, "segmentation": {"lr": 0.05}},
}
CASES = [
    (task, head, SHORTER.get((task, head), {}))
    for task in ("pose", "segmentation", "detection")
    for head in ("v1", "v2", "v2p")
]
# FCOS (pipeline -> TorchScript) learns more slowly here and unevenly with the run's length: AP50 0.041
# after 16 epochs, 0.070 after 20, 0.054 after 24, 0.092 after 32 (lr 0.004: 0.050 after 16); on the second
# machine 0.055 after 20, so it trains at lr 0.003: 0.083, 0.080, 0.068 over seeds 42, 1, 2 there.
CASES.append(("detection", "v2p", {"detection": {"detector": "fcos", "lr": 0.003}, "train": {"epochs": 20}}))
# Cascade R-CNN, CenterNet and the mask frameworks: tests/test_detection_framework_learning.py
IDS = [
    f"{task}-{head}" + (f"-{detector}" if (detector := extra.get("detection", {}).get("detector")) else "")
    for task, head, extra in CASES
]


# The case whose backbone the other detection frameworks start from: test_detection_framework_learning.py
BACKBONE_CASE = ("detection", "v2p", {})


def backbone_weights() -> Path:
    """The HRNet backbone that this module's Faster R-CNN V2p case trains (trained once per test run)."""
    return pretrained_backbone(run_params(*BACKBONE_CASE))


def run_params(task: str, head: str, extra: dict) -> dict:
    params = deep_update(tiny_params(task=task, model={"head": head}, **LEARN[task]), extra)
    # validated once, after the last epoch (the weights are the same as validating every epoch)
    params["train"]["check_val_every_n_epoch"] = params["train"]["epochs"]
    return params


def zero_heatmap_loss(params) -> float:
    """The validation loss of a model that outputs all-zero heatmaps (weighted by batch size, as logged)."""
    datamodule = TASKS["pose"].build_datamodule(params, PREPARED_DIR)
    datamodule.setup("validate")
    criterion, total, count = JointsMSELoss(), 0.0, 0
    for batch in datamodule.val_dataloader():
        target = batch["target"]
        total += float(criterion(torch.zeros_like(target), target, batch["target_weight"])) * len(target)
        count += len(target)
    return total / count


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize(("task", "head", "extra"), CASES, ids=IDS)
def test_task_head_learns_and_packages(task, head, extra, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = run_params(task, head, extra)
    params_text = json.dumps(raw)
    params = parse_params(json.loads(params_text))
    # synthesize -> prepare -> train, in this process (shared with the detection tests that start from
    # these weights: tests/detection_helpers.pretrained_backbone)
    copy_trained(trained_template(raw), tmp_path)
    # the metric the tune stage ranks this task's trials by is one the module logs
    logged = json.loads((tmp_path / "dvclive/metrics.json").read_text())
    section, name = params.tune.for_task(task).metric.split("/")
    assert name in logged[section]
    evaluate(params)
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert metrics["task"] == task
    assert EXPECTED_METRICS[task] <= set(metrics)
    assert list((tmp_path / "reports/figures").iterdir())
    if task == "pose":
        ours, trivial = logged["val"]["loss"], zero_heatmap_loss(params)
        print(f"pose/{head}: val loss {ours:.4f} vs all-zero heatmaps {trivial:.4f}")  # shown with -s
        assert ours <= ZERO_HEATMAP_RATIO * trivial, (ours, trivial)
    else:
        metric, baseline, margin, factor = SCORE[task]
        ours, trivial = metrics[metric], metrics[baseline][metric]
        print(f"{task}/{head} {extra}: {metric} {ours:.4f} vs baseline {trivial:.4f}")  # shown with -s
        floor = max(trivial + margin, factor * trivial)
        assert ours >= floor, f"val {metric} {ours} does not reach {floor:.4f} (baseline {trivial})"

    out = package(params, tmp_path / "params.yaml")
    assert (out / "SHA256SUMS").is_file()

    # The packaged program computes what the checkpoint computes.
    model = load_module(params).model.eval()
    packaged = hrnet.load_package(out).model
    meta = json.loads((out / "package.json").read_text())
    width, height = meta["input_size"]
    with torch.no_grad():
        if task == "detection":
            scripted = getattr(packaged, "scripted", packaged)  # FCOS: unwrapped from (losses, detections)
            assert meta["program"] == "model.pt" and isinstance(scripted, torch.jit.ScriptModule)
            datamodule = TASKS[task].build_datamodule(params, PREPARED_DIR)
            datamodule.setup("validate")
            images = [datamodule.val_dataloader().dataset[i][0] for i in range(2)]
            # non-square: a wide crop and a tall one of real validation images
            images = [images[0][:, : height * 2 // 3, :], images[1][:, :, : width * 2 // 3]]
            expected, actual = model(images), packaged(images)
            assert sum(len(found["boxes"]) for found in expected) > 0, "the trained detector found no box"
            for mine, theirs in zip(expected, actual, strict=True):
                for key in ("boxes", "scores", "labels"):
                    torch.testing.assert_close(theirs[key], mine[key], rtol=1e-4, atol=1e-4)
        else:
            images = torch.rand(2, 3, height, width)
            torch.testing.assert_close(packaged(images), model(images), rtol=1e-4, atol=1e-4)
    if (task, head) == ("segmentation", "v2"):  # the default segmentation head: int8 on a trained model
        int8_is_scored_and_a_badly_calibrated_one_refused(params_text, tmp_path, monkeypatch)


def int8_is_scored_and_a_badly_calibrated_one_refused(params_text, tmp_path, monkeypatch):
    """The package stage scores an int8 package of the trained model on val against fp32 and records
    both; an int8 package calibrated on constant inputs (activation ranges that fit no real image,
    a real calibration fault) drops further than max_metric_drop and is refused, the fp32 package
    taking its place. Scores are the evaluate stage's own, nothing stubbed."""
    from pipeline import package_precision
    from pipeline.package_precision import MetricDropError

    def with_package(**settings):
        raw = json.loads(params_text)
        raw["package"].update(precision="int8", calibration_images=4, **settings)
        (tmp_path / "params.yaml").write_text(json.dumps(raw))
        return parse_params(raw)

    out = package(with_package(max_metric_drop=100.0), tmp_path / "params.yaml")
    metric = json.loads((out / "package.json").read_text())["metric"]
    print(f"int8 package: mIoU {metric['packaged']:.2f} vs fp32 {metric['fp32']:.2f}")  # shown with -s
    assert metric["name"] == "mIoU" and metric["fp32"] >= 4.0  # a trained model, 0-100 scale
    assert abs(metric["fp32"] - metric["packaged"]) < 2.0  # calibrated on train crops: close to fp32

    real_calibration = package_precision.calibration_images  # the package stage looks it up there
    monkeypatch.setattr(
        package_precision, "calibration_images", lambda *a: torch.full_like(real_calibration(*a), 50.0)
    )
    with pytest.raises(MetricDropError, match=r"points below fp32's .*max_metric_drop=1") as refused:
        package(with_package(max_metric_drop=1.0), tmp_path / "params.yaml")
    assert "\n" not in str(refused.value)
    kept = json.loads((out / "package.json").read_text())
    assert kept["precision"] == "fp32" and "metric" not in kept  # the fp32 package stayed in dist/
