"""Per-class metric names survive the train stage's DVCLive logger unchanged, in a real Lightning run;
that logger writes its files on the Lightning calls dvclive's own logger writes them on."""

import json

import pytest
import pytorch_lightning as pl
import torch
from dvclive.lightning import DVCLiveLogger
from dvclive.live import Live
from dvclive.utils import standardize_metric_name
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hrnet.data.cityscapes import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES
from hrnet.data.coco_constants import COCO_CATEGORIES
from hrnet.evaluation.coco_boxes import BOX_STAT_NAMES
from hrnet.evaluation.coco_segm import SEGM_STAT_NAMES
from hrnet.tasks.segmentation.module import SegmentationModule, class_metric_names, metric_slug
from pipeline.common.live_logger import LiveLogger

torch.set_num_threads(1)
COCO_NAMES = [c["name"] for c in COCO_CATEGORIES]


@pytest.mark.parametrize("names", [CLASS_NAMES, COCO_NAMES], ids=["cityscapes", "coco"])
def test_class_metric_names_are_left_alone_by_dvclive(names):
    keys = class_metric_names(names)
    assert len(set(keys.values())) == len(names)
    for key in keys.values():
        assert standardize_metric_name(key, "dvclive.lightning") == key
        assert key.rsplit("/", 1)[1].replace("_", "").isalnum()
    assert keys["traffic light"] == "val/class_iou/traffic_light"


def test_detection_metric_names_are_left_alone_by_dvclive():
    # torchvision's loss keys (Faster R-CNN, FCOS, Mask R-CNN) become train/<key>; COCO stats become
    # val/<stat>, mask frameworks' segm stats val/segm_<stat>
    losses = ["loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "classification",
              "bbox_regression", "bbox_ctrness", "loss_mask", "loss_step", "loss_epoch"]  # fmt: skip
    stats = BOX_STAT_NAMES + SEGM_STAT_NAMES
    names = [f"train/{key}" for key in losses] + [f"val/{stat}" for stat in stats]
    assert "val/segm_AP_S" in names
    for name in names:
        assert standardize_metric_name(name, "dvclive.lightning") == name


def test_metric_slug_rejects_collisions_and_empty_names():
    assert metric_slug(" Hot-Dog ") == "hot_dog"
    with pytest.raises(ValueError, match="'hot dog' and 'hot_dog'"):
        class_metric_names(["hot dog", "hot_dog"])
    with pytest.raises(ValueError, match="no letter or digit"):
        metric_slug("--")


class _EveryClass(Dataset):
    """One 19x8 image whose label has one row per train id plus a void column."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict:
        label = torch.arange(NUM_CLASSES).repeat_interleave(8).reshape(NUM_CLASSES, 8)
        label[:, -1] = IGNORE_INDEX
        return {"image": torch.rand(3, NUM_CLASSES, 8), "label": label}


def _fit(logger_class: type[DVCLiveLogger], out: str, epochs: int = 1) -> pl.Trainer:
    module = SegmentationModule(lr=0.0)
    module.model = nn.Conv2d(3, NUM_CLASSES, 1)  # the logging path is under test, not the network
    logger = logger_class(dir=out, save_dvc_exp=False, dvcyaml=None, report=None)
    trainer = pl.Trainer(
        max_epochs=epochs, logger=logger, accelerator="cpu", enable_checkpointing=False, log_every_n_steps=1,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    loader = DataLoader(_EveryClass(), batch_size=1)
    trainer.fit(module, loader, loader)
    return trainer


def test_the_train_stage_logger_writes_its_files_when_dvclives_does(tmp_path, monkeypatch):
    """LiveLogger finds the calls to sync on by frame names, dvclive by inspect.stack(): the same
    writes (Live.sync), step by step, in the same fit."""
    monkeypatch.chdir(tmp_path)
    synced: list[tuple[str, int]] = []
    real_sync = Live.sync
    monkeypatch.setattr(Live, "sync", lambda live: synced.append((live.dir, live.step)) or real_sync(live))
    _fit(DVCLiveLogger, "dvclive", epochs=2)
    theirs = [step for _, step in synced]
    synced.clear()
    _fit(LiveLogger, "ours", epochs=2)
    ours = [step for _, step in synced]
    assert {out for out, _ in synced} == {"ours"}
    assert len(theirs) > 2 and ours == theirs  # each step, each epoch's end and each validation's end


def test_every_cityscapes_class_reaches_dvclive_files(tmp_path):
    trainer = _fit(LiveLogger, str(tmp_path / "dvclive"))

    expected = {key.rsplit("/", 1)[1] for key in class_metric_names(CLASS_NAMES).values()}
    assert "train" in expected and len(expected) == NUM_CLASSES
    summary = json.loads((tmp_path / "dvclive" / "metrics.json").read_text())
    assert set(summary["val"]["class_iou"]) == expected
    plots = tmp_path / "dvclive" / "plots" / "metrics" / "val" / "class_iou"
    assert {p.stem for p in plots.glob("*.tsv")} == expected
    for slug in expected:
        header = (plots / f"{slug}.tsv").read_text().splitlines()[0].split("\t")
        assert header == ["step", slug]
    # nothing the module logs is renamed: metrics.json holds exactly the logged names
    assert set(_flatten(summary)) == set(trainer.logged_metrics) | {"step", "epoch"}


def _flatten(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        keys += _flatten(value, f"{prefix}{key}/") if isinstance(value, dict) else [f"{prefix}{key}"]
    return keys
