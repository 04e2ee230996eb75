"""Tests written against the mutation run's survivors in hrnet/evaluation: the evaluators, their two-rank
paths and the metrics worked by hand (continued from test_mutants_evaluation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_evaluators import write_box_annotations, write_keypoint_annotations
from test_mutants_evaluation import drawn_by_hand, entry, write_detections
from test_mutants_oks_nms import people_at_oks

from hrnet.evaluation import distributed, evaluators
from hrnet.evaluation.coco_boxes import BOX_STAT_NAMES, draw_boxes, to_coco_detections
from hrnet.evaluation.coco_keypoints import (
    KEYPOINT_STAT_NAMES,
    person_score,
    to_coco_results,
)
from hrnet.evaluation.evaluators import DetectionEvaluator, KeypointEvaluator, SegmentationEvaluator
from hrnet.evaluation.person_detections import read_person_detections
from hrnet.evaluation.segmentation import (
    confusion_matrix,
    iou_from_confusion,
)


# ----------------------------------------------------------------------------- evaluators
def test_fresh_evaluators_hold_empty_results():
    keypoints = KeypointEvaluator("unused.json")
    assert (keypoints.results, keypoints.predictions, keypoints.last_stats) == ([], None, {})
    detections = DetectionEvaluator("unused.json", {1: 1})
    assert (detections.results, detections.image_ids, detections.detections, detections.last_stats) == (
        [],
        [],
        {},
        {},
    )
    segmentation = SegmentationEvaluator(num_classes=2)
    assert torch.equal(segmentation.total, torch.zeros(2, 2, dtype=torch.int64))


def test_keypoint_evaluator_without_samples_scores_zero(tmp_path):
    ann = tmp_path / "keypoints.json"
    write_keypoint_annotations(ann)
    evaluator = KeypointEvaluator(ann)
    stats = evaluator.compute()
    assert stats == dict.fromkeys(KEYPOINT_STAT_NAMES, 0.0)
    assert evaluator.results == []
    ids, keypoints, scores = evaluator.predictions
    assert (ids.shape, keypoints.shape, scores.shape) == ((0,), (0, 0, 2), (0, 0))


def test_keypoint_evaluator_takes_tensors_and_passes_its_settings_on(tmp_path):
    ann = tmp_path / "keypoints.json"
    write_keypoint_annotations(ann)
    a, b = people_at_oks(0.95, 2500.0)  # two people in image 1 whose OKS is 0.95
    joint_scores = np.array([[0.3] * 17, [0.6] * 16 + [0.1]])

    def scored(**settings) -> KeypointEvaluator:
        evaluator = KeypointEvaluator(ann, **settings)
        evaluator.update(
            torch.tensor([[0], [1]]),
            torch.tensor([1, 1]),
            np.stack([a, b]),
            joint_scores,
            torch.full((2, 2), 0.25),
        )
        evaluator.compute()
        return evaluator

    # defaults: joints above 0.2 -> person scores 0.3 and 0.6; hard NMS at 0.9 keeps B only
    assert [r["score"] for r in scored().results] == pytest.approx([0.6])
    assert [r["score"] for r in scored(oks_nms_threshold=0.96).results] == pytest.approx([0.6, 0.3])
    assert len(scored(soft_nms=True).results) == 2
    # joint threshold 0.4: A has no joint above it (score 0), B's 16 joints of 0.6
    assert sorted(
        r["score"] for r in scored(keypoint_score_threshold=0.4, soft_nms=True).results
    ) == pytest.approx([0.0, 0.6])


def test_segmentation_evaluator_without_ids_takes_its_classes_and_ignore_index():
    preds = torch.tensor([[[0, 1, 2], [2, 2, 1]]])
    labels = torch.tensor([[[0, 1, 9], [2, 1, 9]]])  # 9 is ignored here, not 255
    evaluator = SegmentationEvaluator(num_classes=3, ignore_index=9)
    evaluator.update(preds, labels)
    evaluator.update(preds, labels)  # without ids every batch counts
    expected = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 0, 1]]) * 2
    assert torch.equal(evaluator.confusion, expected)
    assert evaluator.compute()["pixel_accuracy"] == pytest.approx(3 / 4)


def test_segmentation_evaluator_with_ids_skips_a_repeat_but_not_what_follows_it():
    evaluator = SegmentationEvaluator(num_classes=3, ignore_index=9)
    preds = torch.tensor([[[0, 1]], [[0, 1]], [[2, 2]]])
    labels = torch.tensor([[[0, 9]], [[0, 9]], [[2, 1]]])
    evaluator.update(preds, labels, [4, 4, 5])  # sample 4 twice in one batch, then sample 5
    assert torch.equal(evaluator.confusion, torch.tensor([[1, 0, 0], [0, 0, 1], [0, 0, 1]]))


def test_segmentation_evaluator_takes_out_samples_a_lower_rank_holds(monkeypatch):
    # under DDP, owned_elsewhere names this rank's samples that a lower rank also holds; their counts
    # leave this rank's matrix before the all-reduce (here without processes: one rank, one such sample)
    monkeypatch.setattr(evaluators, "owned_elsewhere", lambda ids: {5} & set(ids))
    evaluator = SegmentationEvaluator(num_classes=3)
    evaluator.update(torch.tensor([[[0, 1]], [[2, 2]]]), torch.tensor([[[0, 1]], [[2, 1]]]), [4, 5])
    evaluator.compute()
    assert torch.equal(evaluator.total, torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 0]]))
    assert int(evaluator.confusion.sum()) == 4  # the rank's own matrix keeps every sample


def test_detection_evaluator_scores_only_predicted_images_and_keeps_them(tmp_path):
    ann = tmp_path / "instances.json"
    boxes = write_box_annotations(ann)
    perfect = [b for b in boxes if b["image_id"] == 1]
    xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in (b["bbox"] for b in perfect)])
    outputs = {"boxes": xyxy, "scores": np.full(len(perfect), 0.9), "labels": np.ones(len(perfect), np.int64)}
    evaluator = DetectionEvaluator(ann, {1: 7})
    evaluator.update(np.array([[1]]), [outputs])  # numpy outputs and a column of ids
    stats = evaluator.compute()
    assert stats["AP"] == pytest.approx(1.0)  # image 1 alone: every box found (4 other images unscored)
    assert list(evaluator.detections) == [1]
    np.testing.assert_array_equal(evaluator.detections[1][0], xyxy)


def test_detection_evaluator_without_outputs_scores_zero(tmp_path):
    ann = tmp_path / "instances.json"
    write_box_annotations(ann)
    evaluator = DetectionEvaluator(ann, {1: 7})
    assert evaluator.compute() == dict.fromkeys(BOX_STAT_NAMES, 0.0)
    assert evaluator.results == [] and evaluator.image_ids == []


def test_coco_detections_round_boxes_to_2_and_scores_to_5_decimals():
    results = to_coco_detections([3], [[[10.257, 20.0, 30.5, 40.1234]]], [[0.1234567]], [[1]], {1: 9})
    assert results == [
        {"image_id": 3, "category_id": 9, "bbox": [10.26, 20.0, 20.24, 20.12], "score": 0.12346}
    ]


# ----------------------------------------------------------------------------- distributed, two ranks
class TwoRanks:
    """``torch.distributed`` as one rank of two sees it, without processes: the other rank's
    contributions are given; collectives must name rank 0 as their source or destination."""

    ReduceOp = torch.distributed.ReduceOp

    def __init__(self, rank: int, other: object, root_value: object = None) -> None:
        self.rank, self.other, self.root_value = rank, other, root_value

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def get_world_size(self) -> int:
        return 2

    def get_rank(self) -> int:
        return self.rank

    def _both(self, mine: object) -> list:
        return [mine, self.other] if self.rank == 0 else [self.other, mine]

    def all_gather_object(self, out: list, obj: object) -> None:
        assert len(out) == 2
        out[:] = self._both(obj)

    def gather_object(self, obj: object, out: list | None = None, dst: int = 0) -> None:
        assert dst == 0 and (out is None) == (self.rank != 0)
        if out is not None:
            out[:] = self._both(obj)

    def broadcast_object_list(self, values: list, src: int = 0) -> None:
        assert src == 0
        if self.rank != 0:
            values[0] = self.root_value

    def all_reduce(self, tensor: torch.Tensor, op: object = None) -> None:
        assert op == torch.distributed.ReduceOp.SUM
        tensor += self.other


def test_rank_and_world_of_a_two_rank_group(monkeypatch):
    monkeypatch.setattr(distributed, "dist", TwoRanks(1, None))
    assert distributed.world_size() == 2
    assert distributed.rank_and_world() == (1, 2)
    assert not distributed.is_global_zero()


def test_gather_first_copies_keeps_the_lower_ranks_copy_sorted_by_id(monkeypatch):
    rank0, rank1 = [(3, "a"), (1, "b")], [(1, "x"), (2, "c")]
    expected = [(1, "b"), (2, "c"), (3, "a")]  # sample 1 from rank 0, the first in rank order
    monkeypatch.setattr(distributed, "dist", TwoRanks(0, rank1))
    assert distributed.gather_first_copies(rank0) == expected
    monkeypatch.setattr(distributed, "dist", TwoRanks(1, rank0))
    assert distributed.gather_first_copies(rank1) is None  # to rank 0 only
    assert distributed.gather_first_copies(rank1, to_all=True) == expected


def test_broadcast_sum_and_owned_elsewhere_on_rank_one(monkeypatch):
    monkeypatch.setattr(distributed, "dist", TwoRanks(1, [2, 7], root_value={"AP": 0.5}))
    assert distributed.broadcast_from_zero({"AP": 0.0}) == {"AP": 0.5}
    assert distributed.owned_elsewhere([1, 2, 5]) == {2}  # rank 0 holds 2 (and 7, not ours)
    monkeypatch.setattr(distributed, "dist", TwoRanks(0, [1, 2, 5]))
    assert distributed.owned_elsewhere([2, 7]) == set()  # no rank below 0
    monkeypatch.setattr(distributed, "dist", TwoRanks(1, torch.tensor([10, 20])))
    local = torch.tensor([1, 2])
    assert distributed.sum_across_ranks(local).tolist() == [11, 22]
    assert local.tolist() == [1, 2]  # a copy is reduced


def test_evaluators_on_rank_one_score_nothing_and_take_rank_zeros_stats(monkeypatch):
    stats = {"AP": 0.25}
    monkeypatch.setattr(distributed, "dist", TwoRanks(1, None, root_value=stats))
    keypoints = KeypointEvaluator("not-read-on-rank-1.json")
    keypoints.update([0], [1], np.zeros((1, 17, 2)), np.ones((1, 17)), np.ones((1, 2)))
    assert keypoints.compute() == stats and keypoints.results == []
    detections = DetectionEvaluator("not-read-on-rank-1.json", {1: 1})
    detections.update([1], [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0)}])
    assert detections.compute() == stats and detections.results == [] and detections.image_ids == []


# ----------------------------------------------------------------------------- metrics by hand
def test_confusion_matrix_refuses_ids_outside_the_classes_and_takes_float_predictions():
    for pred, label in (
        ([[0, 3]], [[0, 1]]),
        ([[0, -1]], [[0, 1]]),
        ([[0, 1]], [[0, 3]]),
        ([[0, 1]], [[-1, 1]]),
    ):
        with pytest.raises(ValueError, match=r"labels/predictions must be in \[0, 3\) or 255"):
            confusion_matrix(torch.tensor(pred), torch.tensor(label), num_classes=3)
    counts = confusion_matrix(torch.tensor([[0.0, 2.0]]), torch.tensor([[0, 1]]), num_classes=3)
    assert torch.equal(counts, torch.tensor([[1, 0, 0], [0, 0, 1], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"accumulator shape \(2, 2\) != \(3, 3\)"):
        confusion_matrix(
            torch.tensor([[0]]), torch.tensor([[0]]), num_classes=3, out=torch.zeros(2, 2, dtype=torch.int64)
        )


def test_iou_accuracy_and_names_by_hand():
    # rows ground truth, columns prediction; class 2 neither labelled nor predicted
    metrics = iou_from_confusion(torch.tensor([[1, 0, 0], [1, 2, 0], [0, 0, 0]]), ["a", "b", "c"])
    # a: tp 1, union 1 + 2 - 1 = 2 -> 1/2, accuracy 1/1; b: tp 2, union 3 + 2 - 2 = 3 -> 2/3, accuracy 2/3
    assert metrics["mIoU"] == pytest.approx(7 / 12)
    assert metrics["mean_accuracy"] == pytest.approx(5 / 6)
    assert metrics["pixel_accuracy"] == pytest.approx(3 / 4)
    assert list(metrics["per_class_iou"]) == ["a", "b", "c"]
    assert metrics["per_class_iou"]["a"] == pytest.approx(0.5) and math.isnan(metrics["per_class_iou"]["c"])
    one = iou_from_confusion(torch.tensor([[1]]), ["only"])  # one pixel, right: every measure is 1
    assert (one["mIoU"], one["mean_accuracy"], one["pixel_accuracy"]) == (1.0, 1.0, 1.0)
    empty = iou_from_confusion(torch.zeros(2, 2))
    assert math.isnan(empty["pixel_accuracy"]) and math.isnan(empty["mIoU"])


def test_iou_names_a_bad_matrix_or_names():
    with pytest.raises(ValueError, match=r"confusion matrix must be square, got shape \(2, 3\)"):
        iou_from_confusion(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        iou_from_confusion(torch.zeros(3, 3), ["a", "b"])


def test_person_score_defaults_and_strict_threshold():
    assert person_score(np.array([0.1, 0.3, 0.5])) == pytest.approx(0.4)  # box 1, joints above 0.2
    assert person_score(np.array([0.2, 0.4])) == pytest.approx(0.4)  # 0.2 itself is not above


def test_coco_results_round_to_3_decimals_and_score_with_the_defaults():
    keypoints = np.array([[[1.23456, 2.0], [3.0, 4.0]]])
    results = to_coco_results([5], keypoints, np.array([[[0.1], [0.5]]]))  # scores may come as (N, K, 1)
    assert results == [
        {"image_id": 5, "category_id": 1, "keypoints": [1.235, 2.0, 0.1, 3.0, 4.0, 0.5], "score": 0.5}
    ]


def test_draw_boxes_line_width_rounds_and_a_score_at_the_threshold_is_drawn():
    image = np.full((300, 400, 3), 90, np.uint8)
    boxes = [[20, 150, 120, 250], [200, 100, 380, 280]]
    drawn = draw_boxes(image, boxes, [2, 9], scores=[0.3, 0.9], threshold=0.3)
    # short side 300: round(1.5) = 2 px lines, font 300 / 640; labels 2 and 9 have a mid-range red and
    # green (hue 0.236 and 0.562), where 255 and not 256 decides the value
    expected = drawn_by_hand(
        image, [(20, 150, 120, 250), (200, 100, 380, 280)], [2, 9], ["2 0.30", "9 0.90"], 2, 300 / 640
    )
    np.testing.assert_array_equal(drawn, expected)


def test_person_detections_integer_scores_are_float64(tmp_path):
    boxes = read_person_detections(write_detections(tmp_path, [entry(score=1)]), {1})
    assert boxes.scores.dtype == np.float64
    np.testing.assert_array_equal(boxes.scores, [1.0])
