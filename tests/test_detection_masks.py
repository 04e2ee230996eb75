"""Instance masks of detection: records keep each box's COCO segmentation (polygons or RLE), the
dataset decodes and flips masks for mask frameworks only, the evaluator scores COCO segm AP beside
box AP (ground truth given as predictions scores 1 on both; the DDP gather carries RLEs), box-filled
masks score below the synthetic data's true shapes, figures fill masks, and a mask framework on data
without masks is refused in one line before training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_params
from pycocotools import mask as mask_utils
from test_bad_input import error_line
from test_mutants_evaluators import TwoRanks

from hrnet.data.coco_masks import encode_masks
from hrnet.data.detection_dataset import DetectionDataset, load_detection_split, record_masks
from hrnet.data.detection_records import missing_masks
from hrnet.data.synthetic.coco_instances import generate_coco_detection
from hrnet.evaluation import distributed
from hrnet.evaluation.coco_boxes import center_box_baseline, draw_boxes
from hrnet.evaluation.coco_segm import (
    SEGM_STAT_NAMES,
    boxes_as_masks,
    evaluate_masks,
    ground_truth_masks,
    image_sizes,
)
from hrnet.evaluation.evaluators import DetectionEvaluator
from hrnet.models.detection import detector_produces_masks
from hrnet.tasks.detection.prepare import read_split
from pipeline.common import run_stage
from pipeline.prepare import prepare
from pipeline.train import train

torch.set_num_threads(1)
FIXTURE = Path(__file__).parent / "fixtures" / "coco_instances_tiny"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("instances")
    generate_coco_detection(root, 2, 6, (96, 96), (2, 3), seed=3)
    return root


def test_records_keep_polygons_and_rle_and_count_boxes_without(tmp_path: Path) -> None:
    data = json.loads((FIXTURE / "instances_tiny.json").read_text())
    ring = np.zeros((32, 48), dtype=np.uint8)
    ring[6:20, 2:32] = 1
    ring[10:14, 10:20] = 0  # a hole no polygon list holds
    rle = encode_masks(ring[None])[0]
    anns = {a["id"]: a for a in data["annotations"]}
    anns[9]["segmentation"] = rle
    del anns[10]["segmentation"]
    (tmp_path / "instances.json").write_text(json.dumps(data))
    records, _ = load_detection_split(tmp_path / "instances.json", FIXTURE / "images")
    assert records[0]["segmentations"] == [anns[1]["segmentation"], anns[2]["segmentation"]]  # no crowd
    assert records[2]["segmentations"] == [rle, None, anns[11]["segmentation"]]
    assert missing_masks(records) == (1, 7)
    masks = record_masks(records[2])
    assert masks.dtype == torch.uint8 and masks.shape == (3, 32, 48)
    np.testing.assert_array_equal(masks[0].numpy(), ring)  # the RLE's hole kept
    assert masks[1].sum() == 5 * 12 and masks[1, 2:14, 36:41].all()  # no segmentation: its box filled
    assert masks[2].sum() == 12 * 6


def test_masks_flip_with_the_image_and_only_mask_runs_decode_them() -> None:
    records, _ = load_detection_split(FIXTURE / "instances_tiny.json", FIXTURE / "images")
    plain = DetectionDataset(records, train=False, with_masks=True)
    flipped = DetectionDataset(records, train=True, flip_prob=1.0, with_masks=True)
    for i in range(len(records)):
        image, target = plain[i]
        image_f, target_f = flipped[i]
        torch.testing.assert_close(image_f, image.flip(-1))
        assert torch.equal(target_f["masks"], target["masks"].flip(-1))
        for mask, box in zip(target_f["masks"], target_f["boxes"], strict=True):  # each mask in its box
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == box.round().int().tolist()
    assert "masks" not in DetectionDataset(records)[0][1]


def _ground_truth_outputs(records: list[dict]) -> dict[int, dict[str, torch.Tensor]]:
    """Each image's annotations as a mask detector's output (masks (N, 1, H, W) probabilities)."""
    return {
        r["image_id"]: {
            "boxes": torch.tensor(r["boxes"]).reshape(-1, 4),
            "scores": torch.ones(len(r["boxes"])),
            "labels": torch.tensor(r["labels"]),
            "masks": record_masks(r)[:, None].float(),
        }
        for r in records
    }


def test_ground_truth_as_predictions_scores_box_and_segm_ap_1(synthetic: Path) -> None:
    ann = synthetic / "annotations/instances_val.json"
    records, categories = load_detection_split(ann, synthetic / "images/val")
    outputs = _ground_truth_outputs(records)
    evaluator = DetectionEvaluator(ann, categories.label_to_category)
    evaluator.update(list(outputs), list(outputs.values()))
    stats = evaluator.compute()
    assert stats["AP"] == pytest.approx(1.0) and stats["segm_AP"] == pytest.approx(1.0)
    assert set(SEGM_STAT_NAMES) <= set(stats) and SEGM_STAT_NAMES[0] == "segm_AP"
    # segm_results: the bbox results' detections, one for one, in their order
    assert len(evaluator.segm_results) == len(evaluator.results) == sum(len(r["boxes"]) for r in records)
    for box, segm in zip(evaluator.results, evaluator.segm_results, strict=True):
        assert (box["image_id"], box["category_id"], box["score"]) == (
            segm["image_id"], segm["category_id"], segm["score"],
        )  # fmt: skip
        assert isinstance(segm["segmentation"]["counts"], str)
    json.dumps(evaluator.segm_results)  # JSON-ready
    wrong = DetectionEvaluator(ann, categories.label_to_category)  # right boxes, masks moved 30 px
    moved = [{**o, "masks": o["masks"].roll(30, dims=-1)} for o in outputs.values()]
    wrong.update(list(outputs), moved)
    stats = wrong.compute()
    assert stats["AP"] == pytest.approx(1.0) and stats["segm_AP"] < 0.2, stats["segm_AP"]


def test_box_filled_masks_score_below_the_synthetic_shapes(synthetic: Path) -> None:
    """The synthetic polygons trace the drawn shapes, not their boxes: each box filled as its mask
    scores well below 1 (measured 0.49 on these 6 images, 15 objects filling 0.80 of their
    boxes); the centre box filled scores 0.0."""
    ann = synthetic / "annotations/instances_val.json"
    sizes = image_sizes(ann)
    assert evaluate_masks(ann, ground_truth_masks(ann))["segm_AP"] == pytest.approx(1.0)
    gt = json.loads(ann.read_text())["annotations"]
    boxes = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
             for a in gt]  # fmt: skip
    filled = evaluate_masks(ann, boxes_as_masks(boxes, sizes))["segm_AP"]
    assert 0.05 < filled < 0.7, filled
    fill = [a["area"] / (a["bbox"][2] * a["bbox"][3]) for a in gt]  # silhouette / box area
    assert np.mean(fill) < 0.9
    for a in gt:  # the polygons hold the drawn pixels: their area is the annotation's, within 25%
        rle = mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], *sizes[a["image_id"]]))
        assert abs(float(mask_utils.area(rle)) - a["area"]) <= 0.25 * a["area"] + 8, a["id"]
    centre = evaluate_masks(ann, boxes_as_masks(center_box_baseline(ann), sizes))
    assert 0.0 <= centre["segm_AP"] < 0.05


def test_ddp_gather_carries_rles_and_scores_both_ranks(synthetic: Path, monkeypatch) -> None:
    ann = synthetic / "annotations/instances_val.json"
    records, categories = load_detection_split(ann, synthetic / "images/val")
    outputs = _ground_truth_outputs(records)
    ids = list(outputs)
    other = DetectionEvaluator(ann, categories.label_to_category)  # rank 1's shard: odd positions
    other.update(ids[1::2], [outputs[i] for i in ids[1::2]])
    shard = list(other._images.items())
    for _, (_, _, _, rles) in shard:  # what goes over the wire: RLE dicts with str counts, no arrays
        assert all(set(r) == {"size", "counts"} and isinstance(r["counts"], str) for r in rles)
    monkeypatch.setattr(distributed, "dist", TwoRanks(0, shard))
    rank0 = DetectionEvaluator(ann, categories.label_to_category)
    rank0.update(ids[::2], [outputs[i] for i in ids[::2]])
    stats = rank0.compute()
    assert rank0.image_ids == sorted(ids) and stats["segm_AP"] == pytest.approx(1.0)


def test_draw_boxes_fills_each_mask_in_its_box_colour() -> None:
    image = np.full((40, 40, 3), 100, dtype=np.uint8)
    mask = np.zeros((40, 40), dtype=np.uint8)
    mask[15:25, 15:25] = 1
    drawn = draw_boxes(image, np.array([[10.0, 10, 30, 30]]), [1], [0.9], masks=[mask])
    plain = draw_boxes(image, np.array([[10.0, 10, 30, 30]]), [1], [0.9])
    assert (drawn[20, 20] != 100).any() and (plain[20, 20] == 100).all()  # filled inside the mask only
    np.testing.assert_array_equal(drawn[12, 20], plain[12, 20])
    faded = draw_boxes(image, np.array([[10.0, 10, 30, 30]]), [1], [0.1], threshold=0.5, masks=[mask])
    assert (faded == 100).all()  # below the threshold: neither box nor mask


def test_mask_framework_on_data_without_masks_is_refused_before_training(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    assert detector_produces_masks("mask_rcnn") and not detector_produces_masks("faster_rcnn")
    root = tmp_path / "data"
    generate_coco_detection(root, 2, 2, (64, 64), (1, 2), seed=0)
    val = root / "annotations/instances_val.json"
    data = json.loads(val.read_text())
    for ann in data["annotations"]:
        del ann["segmentation"]
    val.write_text(json.dumps(data))
    project = tmp_path / "project"
    project.mkdir()
    params = tiny_params(
        task="detection", data={"source": "synthetic", "root": str(root)}, detection={"detector": "mask_rcnn"}
    )
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(project)
    run_stage(prepare)  # box-only data is fine data: prepare indexes it
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        run_stage(train)
    assert exited.value.code == 2
    line = error_line(capsys.readouterr().err)
    assert "detection.detector=mask_rcnn trains and scores instance masks" in line, line
    assert f"{val}: " in line and "non-crowd annotations have no 'segmentation'" in line, line
    assert not (project / "models").exists()


def test_the_prepared_index_keeps_masks_apart_and_box_runs_never_read_them(
    tmp_path: Path, monkeypatch
) -> None:
    root = tmp_path / "data"
    generate_coco_detection(root, 2, 2, (64, 64), (1, 2), seed=0)
    project = tmp_path / "project"
    project.mkdir()
    params = tiny_params(task="detection", data={"source": "synthetic", "root": str(root)})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(project)
    run_stage(prepare)
    prepared = Path("data/prepared")
    truth, _ = load_detection_split(root / "annotations/instances_val.json", root / "images/val")
    index = json.loads((prepared / "index/val.json").read_text())
    assert all("segmentations" not in record for record in index["records"])
    boxes_only = read_split(prepared, "val")
    assert all("segmentations" not in record for record in boxes_only.records)
    with_masks = read_split(prepared, "val", with_masks=True)
    assert [r["segmentations"] for r in with_masks.records] == [r["segmentations"] for r in truth]
    assert [{**r, "segmentations": None} for r in with_masks.records] == [
        {**r, "segmentations": None} for r in truth
    ]


@pytest.mark.parametrize(
    ("segmentation", "message"),
    [
        ("polygon", "annotation 1: segmentation is a JSON string (expected polygons [[x1, y1"),
        ([[1, 2, 3]], "annotation 1: segmentation polygon [1, 2, 3] is not x, y numbers (expected"),
        ({"size": [10, 10], "counts": "0"}, "annotation 1: segmentation RLE size is [10, 10] (expected"),
        ({"size": [48, 64], "counts": 5}, "annotation 1: segmentation RLE counts is a JSON number"),
    ],
)
def test_a_bad_segmentation_is_one_line_naming_the_file(tmp_path: Path, segmentation, message) -> None:
    data = json.loads((FIXTURE / "instances_tiny.json").read_text())
    data["annotations"][0]["segmentation"] = segmentation  # annotation 1, of the 64x48 image 7
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as info:
        load_detection_split(path, FIXTURE / "images")
    assert str(path) in str(info.value) and message in str(info.value) and "\n" not in str(info.value)


def test_mask_rcnn_module_trains_a_step_on_masks_and_logs_segm_ap(synthetic: Path) -> None:
    import pytorch_lightning as pl

    from hrnet.data.detection_dataset import DetectionDataModule
    from hrnet.data.synthetic.coco_instances import CATEGORIES
    from hrnet.models.detection import small_settings
    from hrnet.tasks.detection.module import DetectionModule

    pl.seed_everything(0)
    module = DetectionModule(
        num_classes=len(CATEGORIES), detector="mask_rcnn", min_size=96, max_size=96,
        detector_kwargs=small_settings("mask_rcnn"), warmup_steps=1,
    )  # fmt: skip
    assert module.produces_masks and module.model.roi_heads.mask_head[0][0].out_channels == 64

    def fit(with_masks: bool) -> pl.Trainer:
        quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
        quiet |= {"enable_model_summary": False, "num_sanity_val_steps": 0}
        trainer = pl.Trainer(max_steps=1, accelerator="cpu", limit_val_batches=1, **quiet)
        trainer.fit(module, DetectionDataModule(synthetic, batch_size=2, with_masks=with_masks))
        return trainer

    with pytest.raises(ValueError, match=r"trains on instance masks: the targets have none \(expected"):
        fit(with_masks=False)
    metrics = fit(with_masks=True).callback_metrics
    assert float(metrics["train/loss_mask"]) > 0.0
    assert 0.0 <= float(metrics["val/segm_AP"]) <= 1.0 and "val/segm_AR100" in metrics and "val/AP" in metrics


def test_a_crowd_rle_is_left_out_of_training_and_ignored_by_segm_scoring(
    synthetic: Path, tmp_path: Path
) -> None:
    """COCO's crowd regions come as uncompressed RLE: the loader reads them, the records leave them out
    (as their boxes), and COCOeval ignores them, so ground truth as predictions still scores 1."""
    data = json.loads((synthetic / "annotations/instances_val.json").read_text())
    image = data["images"][0]
    crowd = np.zeros((image["height"], image["width"]), dtype=np.uint8)
    crowd[:, :20] = 1  # a band down the left edge, as column-major runs
    counts = [0, int(crowd.sum()), int(crowd.size - crowd.sum())]
    category = next(a["category_id"] for a in data["annotations"] if a["image_id"] == image["id"])
    data["annotations"].append(
        {"id": 999, "image_id": image["id"], "category_id": category, "iscrowd": 1,
         "area": float(crowd.sum()), "bbox": [0, 0, 20, image["height"]],
         "segmentation": {"size": [image["height"], image["width"]], "counts": counts}}
    )  # fmt: skip
    ann = tmp_path / "instances_val.json"
    ann.write_text(json.dumps(data))
    records, categories = load_detection_split(ann, synthetic / "images/val")
    plain, _ = load_detection_split(synthetic / "annotations/instances_val.json", synthetic / "images/val")
    assert records == plain  # the crowd is in no record
    outputs = _ground_truth_outputs(records)
    evaluator = DetectionEvaluator(ann, categories.label_to_category)
    evaluator.update(list(outputs), list(outputs.values()))
    stats = evaluator.compute()
    assert stats["AP"] == pytest.approx(1.0) and stats["segm_AP"] == pytest.approx(1.0)
    # one more detection, on the crowd and scored above the rest: ignored there, not a false positive
    halved = {i: {**o, "scores": o["scores"] * 0.5} for i, o in outputs.items()}
    mine = halved[image["id"]]
    halved[image["id"]] = {
        "boxes": torch.cat([mine["boxes"], torch.tensor([[0.0, 0, 20, image["height"]]])]),
        "scores": torch.cat([mine["scores"], torch.tensor([0.99])]),
        "labels": torch.cat([mine["labels"], torch.tensor([categories.category_to_label[category]])]),
        "masks": torch.cat([mine["masks"], torch.from_numpy(crowd)[None, None].float()]),
    }
    with_extra = list(halved.values())
    evaluator.reset()
    evaluator.update(list(outputs), with_extra)
    assert evaluator.compute()["segm_AP"] == pytest.approx(1.0)
    without_crowd = DetectionEvaluator(
        synthetic / "annotations/instances_val.json", categories.label_to_category
    )
    without_crowd.update(list(outputs), with_extra)
    assert without_crowd.compute()["segm_AP"] < 0.99  # there, the same detection is a false positive
