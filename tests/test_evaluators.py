"""The evaluators on hand-made inputs, in one process and under DDP (gloo, 2 processes, uneven shards)."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hrnet.evaluation.coco_keypoints import evaluate_keypoints, to_coco_results
from hrnet.evaluation.distributed import RunningMean
from hrnet.evaluation.evaluators import DetectionEvaluator, KeypointEvaluator, SegmentationEvaluator

NUM_IMAGES, PEOPLE = 5, [2, 1, 3, 1, 2]  # 9 people on 5 images


def _people() -> list[dict]:
    rng = np.random.default_rng(0)
    people = []
    for image_id, count in enumerate(PEOPLE, start=1):
        for _ in range(count):
            x, y = rng.uniform(0, 100, 2)
            w, h = rng.uniform(30, 60, 2)
            joints = np.stack([x + rng.uniform(0, w, 17), y + rng.uniform(0, h, 17), np.full(17, 2.0)], 1)
            people.append({"image_id": image_id, "bbox": [x, y, w, h], "joints": joints})
    return people


def write_keypoint_annotations(path) -> list[dict]:
    people = _people()
    path.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 200} for i in range(1, 6)],
        "annotations": [
            {"id": n + 1, "image_id": p["image_id"], "category_id": 1, "iscrowd": 0, "bbox": p["bbox"],
             "area": p["bbox"][2] * p["bbox"][3], "num_keypoints": 17,
             "keypoints": p["joints"].reshape(-1).tolist()}
            for n, p in enumerate(people)
        ],
        "categories": [{"id": 1, "name": "person"}],
    }))  # fmt: skip
    return people


def keypoint_batches(people: list[dict]) -> list[tuple]:
    """One row per person: (sample id, image id, keypoints, scores, crop scale), the joints jittered."""
    rng = np.random.default_rng(1)
    rows = []
    for i, p in enumerate(people):
        size = np.array(p["bbox"][2:])
        keypoints = p["joints"][:, :2] + rng.normal(scale=0.05, size=(17, 2)) * size
        rows.append((i, p["image_id"], keypoints, rng.uniform(0.1, 1.0, 17), size / 200))
    return rows


def update_keypoints(evaluator: KeypointEvaluator, rows: list[tuple]) -> None:
    ids, images, keypoints, scores, scales = zip(*rows)
    evaluator.update(list(ids), list(images), np.stack(keypoints), np.stack(scores), np.stack(scales))


def write_box_annotations(path) -> list[dict]:
    boxes = [{"image_id": p["image_id"], "bbox": p["bbox"], "category_id": 7} for p in _people()]
    path.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 200} for i in range(1, 6)],
        "annotations": [{"id": n + 1, "iscrowd": 0, "area": b["bbox"][2] * b["bbox"][3], **b}
                        for n, b in enumerate(boxes)],
        "categories": [{"id": 7, "name": "thing"}],
    }))  # fmt: skip
    return boxes


def detection_outputs(boxes: list[dict]) -> dict[int, dict]:
    """Per image: each ground-truth box shifted a little (xyxy), plus a background-labelled one."""
    rng = np.random.default_rng(2)
    outputs: dict[int, dict] = {}
    for b in boxes:
        x, y, w, h = b["bbox"]
        box = np.array([x, y, x + w, y + h]) + rng.normal(scale=3.0, size=4)
        out = outputs.setdefault(b["image_id"], {"boxes": [], "scores": [], "labels": []})
        out["boxes"].append(box), out["scores"].append(rng.uniform(0.3, 1.0)), out["labels"].append(1)
    for out in outputs.values():
        out["boxes"].append([0, 0, 199, 199]), out["scores"].append(0.99), out["labels"].append(0)
    return {k: {key: torch.tensor(np.array(v)) for key, v in out.items()} for k, out in outputs.items()}


def segmentation_samples() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 3, (NUM_IMAGES, 6, 8), generator=generator)
    labels[:, 0, :3] = 255  # ignored pixels
    preds = torch.where(torch.rand(labels.shape, generator=generator) < 0.7, labels.clamp(max=2), 0)
    return list(zip(preds, labels))


def test_keypoint_evaluator_scores_the_official_way_and_counts_a_sample_once(tmp_path):
    ann = tmp_path / "keypoints.json"
    people = write_keypoint_annotations(ann)
    rows = keypoint_batches(people)
    evaluator = KeypointEvaluator(ann)
    update_keypoints(evaluator, rows[4:])
    update_keypoints(evaluator, rows[:5])  # out of order, sample 4 twice
    stats = evaluator.compute()
    assert 0.0 < stats["AP"] < 1.0
    ids, keypoints, scores = evaluator.predictions
    assert ids.tolist() == list(range(len(people)))

    # the same people scored by hand: the person score is the mean joint score above 0.2, and
    # the people are far apart, so OKS-NMS at 0.9 keeps all of them
    image_ids = [p["image_id"] for p in people]
    expected = evaluate_keypoints(ann, to_coco_results(image_ids, keypoints, scores, threshold=0.2))
    assert stats == expected and len(evaluator.results) == len(people)

    exact = [(i, image, p["joints"][:, :2], np.ones(17), s) for (i, image, _, _, s), p in zip(rows, people)]
    evaluator.reset()
    update_keypoints(evaluator, exact)
    assert evaluator.compute()["AP"] == pytest.approx(1.0)
    # box scores by sample id enter the person score: zero boxes rank below every other person
    weak = KeypointEvaluator(ann, box_scores=np.r_[np.zeros(4), np.ones(5)])
    update_keypoints(weak, rows)
    assert weak.compute()["AP"] < stats["AP"]
    person_scores = sorted(r["score"] for r in weak.results)
    assert person_scores[:4] == [0.0] * 4 and person_scores[4] > 0


def test_segmentation_evaluator_counts_each_sample_once():
    samples = segmentation_samples()
    evaluator = SegmentationEvaluator(num_classes=3, ignore_index=255)
    for i in (0, 1, 2, 3, 4, 0):  # sample 0 again, as a padding sampler would hand it out
        pred, label = samples[i]
        evaluator.update(pred[None], label[None], [i])
    metrics = evaluator.compute()
    labelled = sum(int((label != 255).sum()) for _, label in samples)
    assert int(evaluator.confusion.sum()) == int(evaluator.total.sum()) == labelled
    right = sum(int(((pred == label) & (label != 255)).sum()) for pred, label in samples)
    assert metrics["pixel_accuracy"] == pytest.approx(right / labelled)
    evaluator.reset()
    assert int(evaluator.confusion.sum()) == 0


def test_detection_evaluator_drops_background_and_duplicates(tmp_path):
    ann = tmp_path / "instances.json"
    outputs = detection_outputs(write_box_annotations(ann))
    evaluator = DetectionEvaluator(ann, {1: 7})
    evaluator.update([3, 1], [outputs[3], outputs[1]])
    evaluator.update([1], [outputs[1]])
    stats = evaluator.compute()
    assert evaluator.image_ids == [1, 3] and 0.0 < stats["AP"] <= 1.0
    assert len(evaluator.results) == PEOPLE[0] + PEOPLE[2]  # background boxes left out
    assert {r["category_id"] for r in evaluator.results} == {7}


def test_detection_evaluator_takes_bf16_outputs(tmp_path):
    """Detector outputs under bf16-mixed autocast (evaluate.precision, train.precision) are bf16,
    which numpy cannot hold: scored as float32, as the same boxes in float32 score."""
    ann = tmp_path / "instances.json"
    outputs = detection_outputs(write_box_annotations(ann))
    as_bf16 = {
        i: {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in o.items()}
        for i, o in outputs.items()
    }
    expected, actual = DetectionEvaluator(ann, {1: 7}), DetectionEvaluator(ann, {1: 7})
    rounded = {
        i: {k: v.float() if v.is_floating_point() else v for k, v in o.items()} for i, o in as_bf16.items()
    }
    expected.update(list(rounded), list(rounded.values()))
    actual.update(list(as_bf16), list(as_bf16.values()))
    assert actual.compute() == expected.compute() and actual.results == expected.results


def test_running_mean_weights_samples_not_batches():
    mean = RunningMean()
    mean.update(torch.tensor(1.0), 3)
    mean.update(4.0, 1)
    assert mean.compute() == pytest.approx(7 / 4)


# ----------------------------------------------------------------------------- DDP
def _shards(world: int, size: int) -> list[list[int]]:
    """``DistributedSampler``'s shards: padded with the first samples up to a multiple of ``world``."""
    padded = list(range(size)) + list(range(-size % world))
    return [padded[rank::world] for rank in range(world)]


def _ddp_worker(rank: int, port: int, world: int, tmp: str, result) -> None:
    from pathlib import Path

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        tmp_path = Path(tmp)
        people = json.loads((tmp_path / "people.json").read_text())
        rows = keypoint_batches([{**p, "joints": np.asarray(p["joints"])} for p in people])
        keypoints = KeypointEvaluator(tmp_path / "keypoints.json")
        update_keypoints(keypoints, [rows[i] for i in _shards(world, len(rows))[rank]])

        outputs = detection_outputs(json.loads((tmp_path / "boxes.json").read_text()))
        boxes = DetectionEvaluator(tmp_path / "instances.json", {1: 7})
        ids = [i + 1 for i in _shards(world, NUM_IMAGES)[rank]]
        boxes.update(ids, [outputs[i] for i in ids])

        samples = segmentation_samples()
        pixels = SegmentationEvaluator(num_classes=3, ignore_index=255)
        for i in _shards(world, NUM_IMAGES)[rank]:
            pixels.update(samples[i][0][None], samples[i][1][None], [i])

        loss = RunningMean()  # shards of 3 and 2 samples (no padding, as EpochSampler makes them)
        for i in range(NUM_IMAGES)[rank::world]:
            loss.update(float(i * i), 1)
        result[rank] = {
            "keypoints": keypoints.compute(), "boxes": boxes.compute(), "pixels": pixels.compute()["mIoU"],
            "loss": loss.compute(), "results": len(keypoints.results) + len(boxes.results),
        }  # fmt: skip
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(300)
def test_ddp_metrics_equal_single_process_ones_on_uneven_shards(tmp_path):
    assert _shards(2, NUM_IMAGES) == [[0, 2, 4], [1, 3, 0]]  # rank 1 is padded with sample 0
    people = write_keypoint_annotations(tmp_path / "keypoints.json")
    (tmp_path / "people.json").write_text(json.dumps([{**p, "joints": p["joints"].tolist()} for p in people]))
    boxes = write_box_annotations(tmp_path / "instances.json")
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))

    single = KeypointEvaluator(tmp_path / "keypoints.json")
    update_keypoints(single, keypoint_batches(people))
    single_boxes = DetectionEvaluator(tmp_path / "instances.json", {1: 7})
    outputs = detection_outputs(boxes)
    single_boxes.update(list(outputs), list(outputs.values()))
    single_pixels = SegmentationEvaluator(num_classes=3, ignore_index=255)
    for i, (pred, label) in enumerate(segmentation_samples()):
        single_pixels.update(pred[None], label[None], [i])
    expected = {
        "keypoints": single.compute(), "boxes": single_boxes.compute(),
        "pixels": single_pixels.compute()["mIoU"], "loss": float(np.mean(np.arange(NUM_IMAGES) ** 2)),
    }  # fmt: skip

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = mp.Manager().dict()
    mp.spawn(_ddp_worker, args=(port, 2, str(tmp_path), result), nprocs=2, join=True)
    for rank in (0, 1):
        got = dict(result[rank])
        results = got.pop("results")
        assert got["loss"] == pytest.approx(expected["loss"])  # a mean of the ranks' means: 5.83
        assert {k: got[k] for k in ("keypoints", "boxes", "pixels")} == {
            k: expected[k] for k in ("keypoints", "boxes", "pixels")
        }
        # COCO results live on rank 0 only
        assert results == (len(single.results) + len(single_boxes.results) if rank == 0 else 0)
