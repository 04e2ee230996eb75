"""Tests written to kill the survivors of the mutation run over ``hrnet/evaluation`` (scripts/mutation.sh,
README "Mutation run"). Expected values are worked by hand (stated in the comments) or come from
pycocotools, not from the code under test."""

from __future__ import annotations

import colorsys
import json
import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from hrnet.data.cityscapes import CLASS_COLORS
from hrnet.data.images import IMAGENET_MEAN, IMAGENET_STD
from hrnet.errors import DataError
from hrnet.evaluation.coco_boxes import center_box_baseline, draw_boxes
from hrnet.evaluation.coco_keypoints import (
    mean_pose,
    mean_pose_predictions,
)
from hrnet.evaluation.distributed import RunningMean
from hrnet.evaluation.person_detections import read_person_detections
from hrnet.evaluation.segmentation import (
    _window_starts,
    colorize,
    denormalize,
    model_align_corners,
    write_overlay,
)


# ----------------------------------------------------------------------------- coco_keypoints
def test_mean_pose_averages_labelled_joints_in_box_units():
    # two people, 3 joints; joint 0 labelled in both (v=2, v=1), joint 1 only in the first, joint 2 never
    records = [
        {"bbox": [10, 20, 100, 200], "keypoints": [60, 70, 2, 110, 220, 2, 999, 999, 0]},
        {"bbox": [0, 0, 50, 50], "keypoints": [0, 25, 1, 5, 5, 0, 7, 7, 0]},
    ]
    pose = mean_pose(records, num_joints=3)
    # joint 0: ((60-10)/100, (70-20)/200) = (0.5, 0.25) and (0/50, 25/50) = (0, 0.5) -> (0.25, 0.375)
    # joint 1: ((110-10)/100, (220-20)/200) = (1, 1), one person; joint 2: nobody -> (0, 0)
    np.testing.assert_allclose(pose, [[0.25, 0.375], [1.0, 1.0], [0.0, 0.0]])


def test_mean_pose_predictions_stretch_the_pose_into_each_box():
    records = [{"image_id": 4, "bbox": [10, 20, 100, 200]}, {"image_id": 9, "bbox": [0, 0, 40, 10]}]
    pose = np.array([[0.5, 0.25], [1.0, 0.0]])
    image_ids, keypoints, scores = mean_pose_predictions(records, pose)
    assert image_ids == [4, 9]
    # x + px * w, y + py * h
    np.testing.assert_allclose(keypoints, [[[60, 70], [110, 20]], [[20, 2.5], [40, 0]]])
    np.testing.assert_array_equal(scores, np.ones((2, 2)))


# ----------------------------------------------------------------------------- coco_boxes
def test_center_box_baseline_ignores_crowds_and_centres_the_median_box(tmp_path, capsys):
    def ann(i: int, category: int, bbox: list, crowd: int | None) -> dict:
        extra = {} if crowd is None else {"iscrowd": crowd}
        return {
            "id": i,
            "image_id": 1,
            "category_id": category,
            "bbox": bbox,
            "area": bbox[2] * bbox[3],
            **extra,
        }

    annotations = [
        ann(1, 5, [0, 0, 10, 20], 0),
        ann(2, 5, [5, 5, 30, 40], 0),
        ann(3, 3, [0, 0, 20, 60], 0),
        ann(4, 5, [0, 0, 50, 10], None),  # no iscrowd field: not a crowd
    ] + [
        ann(10 + i, 3, [0, 0, 90, 90], 1) for i in range(3)
    ]  # crowds: counted they would make 3 the category
    path = tmp_path / "boxes.json"
    path.write_text(
        json.dumps(
            {
                "images": [
                    {"id": 1, "file_name": "a.jpg", "width": 100, "height": 60},
                    {"id": 2, "file_name": "b.jpg", "width": 50, "height": 80},
                ],
                "annotations": annotations,
                "categories": [{"id": 3, "name": "c"}, {"id": 5, "name": "e"}],
            }
        )
    )
    results = center_box_baseline(path)
    # category 5 (3 boxes against 1); median of widths 10, 30, 20, 50 is 25, of heights 20, 40, 60, 10 is 30
    assert results == [
        {"image_id": 1, "category_id": 5, "bbox": [37.5, 15.0, 25.0, 30.0], "score": 1.0},
        {"image_id": 2, "category_id": 5, "bbox": [12.5, 25.0, 25.0, 30.0], "score": 1.0},
    ]
    assert capsys.readouterr().out == ""  # pycocotools' loading messages are swallowed


def test_center_box_baseline_of_crowds_only_is_empty(tmp_path):
    path = tmp_path / "crowds.json"
    path.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 60}],
                "annotations": [
                    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 9, 9], "area": 81, "iscrowd": 1}
                ],
                "categories": [{"id": 1, "name": "c"}],
            }
        )
    )
    assert center_box_baseline(path) == []


# ----------------------------------------------------------------------------- person_detections
def write_detections(tmp_path, entries) -> str:
    path = tmp_path / "detections.json"
    path.write_text(json.dumps(entries))
    return str(path)


def entry(image_id=1, category_id=1, bbox=(0, 0, 10, 20), score=0.5) -> dict:
    return {"image_id": image_id, "category_id": category_id, "bbox": list(bbox), "score": score}


def test_person_detections_counts_filters_and_keeps_the_threshold_itself(tmp_path):
    entries = [
        entry(category_id=2),
        entry(category_id=3),
        entry(score=0.1),
        entry(score=0.2),
        entry(score=0.3, bbox=(1, 2, 3, 4)),  # exactly the threshold: kept (score >= threshold)
        entry(image_id=2, score=1, bbox=(5, 6, 7, 8)),
    ]
    boxes = read_person_detections(write_detections(tmp_path, entries), {1, 2}, score_threshold=0.3)
    assert (boxes.num_entries, boxes.num_other_categories, boxes.num_below_threshold) == (6, 2, 2)
    np.testing.assert_array_equal(boxes.image_ids, [1, 2])
    np.testing.assert_array_equal(boxes.boxes, [[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(boxes.scores, [0.3, 1.0])
    assert boxes.image_ids.dtype == np.int64  # integer JSON: still ids, boxes and scores as documented
    assert boxes.boxes.dtype == boxes.scores.dtype == np.float64


def test_person_detections_default_threshold_keeps_every_score_and_empty_is_typed(tmp_path):
    boxes = read_person_detections(write_detections(tmp_path, [entry(score=0.0), entry(score=0.5)]), {1})
    np.testing.assert_array_equal(boxes.scores, [0.0, 0.5])
    empty = read_person_detections(write_detections(tmp_path, []), {1})
    assert empty.image_ids.dtype == np.int64
    assert empty.boxes.shape == (0, 4)


def test_person_detections_box_sides_must_be_positive_not_at_least_one(tmp_path):
    ok = read_person_detections(write_detections(tmp_path, [entry(bbox=(0, 0, 0.5, 0.5))]), {1})
    np.testing.assert_array_equal(ok.boxes, [[0, 0, 0.5, 0.5]])
    for bbox in ((0, 0, 0, 5), (0, 0, 5, 0)):
        with pytest.raises(DataError, match=r"entry 0: bbox .* has no area"):
            read_person_detections(write_detections(tmp_path, [entry(bbox=bbox)]), {1})


def test_person_detections_names_a_non_object_entry(tmp_path):
    path = write_detections(tmp_path, [7])
    with pytest.raises(
        DataError, match=r"detections.json: entry 0: expected an object, got int \(expected a JSON"
    ):
        read_person_detections(path, {1})


# ----------------------------------------------------------------------------- distributed
def test_running_mean_is_exact_in_float64_and_nan_when_empty():
    mean = RunningMean()
    assert math.isnan(mean.compute())
    mean.update(16777217.0, 1)  # 2**24 + 1: float32 would round it to 2**24
    assert mean.compute() == 16777217.0


# ----------------------------------------------------------------------------- segmentation
def test_denormalize_inverts_the_imagenet_normalisation_and_clamps():
    rgb = np.array(
        [[[0, 128, 255], [10, 20, 30], [255, 0, 7]], [[1, 2, 3], [200, 100, 50], [9, 99, 199]]], np.uint8
    )
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    normalised = torch.tensor(
        ((rgb / 255.0 - mean) / std).transpose(2, 0, 1), dtype=torch.float32
    )  # (3, 2, 3)
    back = denormalize(normalised)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, rgb)  # (H, W, 3) again, every value exact after rounding
    extreme = denormalize(torch.tensor([-100.0, 100.0, 0.0]).view(3, 1, 1))
    # far below the mean -> 0, far above -> 255, 0 -> the mean colour itself
    np.testing.assert_array_equal(extreme[0, 0], [0, 255, round(0.406 * 255)])


def test_model_align_corners_reads_the_model_then_its_backbone_config():
    assert model_align_corners(SimpleNamespace(align_corners=True)) is True
    assert model_align_corners(SimpleNamespace(align_corners=False, backbone=_backbone(True))) is False
    # not a bool on the model: the backbone's config decides
    assert model_align_corners(SimpleNamespace(align_corners="yes", backbone=_backbone(True))) is True
    assert model_align_corners(SimpleNamespace(backbone=_backbone(True))) is True
    assert model_align_corners(SimpleNamespace(backbone=SimpleNamespace(config=SimpleNamespace()))) is False
    assert model_align_corners(SimpleNamespace()) is False


def _backbone(align_corners: bool) -> SimpleNamespace:
    return SimpleNamespace(config=SimpleNamespace(align_corners=align_corners))


@pytest.mark.parametrize(
    ("length", "window", "stride", "starts"),
    [(10, 4, 3, [0, 3, 6]), (10, 4, 4, [0, 4, 6]), (4, 4, 3, [0]), (9, 4, 5, [0, 5])],
)
def test_sliding_windows_end_at_the_border(length, window, stride, starts):
    # every stride, the last window moved back to end at the border (the official tester's rule)
    assert _window_starts(length, window, stride) == starts


def test_train_ids_outside_0_255_are_refused():
    for bad in ([[-1, 3]], [[256, 3]]):
        with pytest.raises(ValueError, match=r"train ids must be in \[0, 255\], got range"):
            colorize(np.array(bad))
    np.testing.assert_array_equal(colorize(np.array([[255]])), [[[0, 0, 0]]])  # 255 (ignore) is black


def test_write_overlay_blends_half_and_half_and_resizes_labels_nearest(tmp_path):
    image = np.full((4, 4, 3), 100.0)  # float input: converted to uint8
    ids = np.array([[0, 1], [1, 0]])  # 2x2 map over a 4x4 image: each id covers a 2x2 block
    write_overlay(tmp_path / "o.png", image, ids)
    out = cv2.cvtColor(cv2.imread(str(tmp_path / "o.png")), cv2.COLOR_BGR2RGB)
    road, sidewalk = np.array(CLASS_COLORS[0], float), np.array(CLASS_COLORS[1], float)
    expected = np.empty((4, 4, 3))
    expected[:2, :2] = expected[2:, 2:] = (100 + road) / 2  # alpha 0.5 by default
    expected[:2, 2:] = expected[2:, :2] = (100 + sidewalk) / 2
    np.testing.assert_allclose(out, expected, atol=0.5 + 1e-9)  # addWeighted rounds to nearest


# ----------------------------------------------------------------------------- coco_boxes.draw_boxes
def drawn_by_hand(image, boxes, labels, texts, thickness, font_scale):
    """The documented overlay, drawn step by step: each box outlined in its label's colour (hue
    label * 0.618 mod 1, saturation 0.85, value 1), a filled caption box of that colour on top of it
    (moved down to stay inside the image) and the caption in black."""
    canvas = image.copy()
    for (x1, y1, x2, y2), label, text in zip(boxes, labels, texts):
        r, g, b = colorsys.hsv_to_rgb((label * 0.618) % 1.0, 0.85, 1.0)
        colour = (int(r * 255), int(g * 255), int(b * 255))
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = max(y1 - th - base, 0)
        cv2.rectangle(canvas, (x1, top), (x1 + tw, top + th + base), colour, -1)
        cv2.putText(
            canvas, text, (x1, top + th), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA
        )
    return canvas


def test_draw_boxes_outlines_and_captions_as_documented():
    image = np.full((700, 1280, 3), 40, np.uint8)
    boxes = np.array([[100.4, 200.0, 400.0, 500.0], [50, 60, 70, 80], [600, 10, 900, 300]])
    drawn = draw_boxes(
        image, boxes, [1, 2, 3], scores=[0.91, 0.2, 0.5], names=["bg", "cat", "dog", "eel"], threshold=0.3
    )
    # 700 px short side: lines round(700 / 200) = 4 px, font 700 / 640; the 0.2 box is skipped, the
    # later one still drawn; the third caption would start above the image and is moved down to y = 0
    expected = drawn_by_hand(
        image, [(100, 200, 400, 500), (600, 10, 900, 300)], [1, 3], ["cat 0.91", "eel 0.50"], 4, 700 / 640
    )
    np.testing.assert_array_equal(drawn, expected)
    assert image.max() == 40  # the input is left alone


def test_draw_boxes_without_scores_or_names_captions_the_label():
    image = np.zeros((100, 120, 3), np.uint8)
    drawn = draw_boxes(image, [[10, 30, 60, 90]], [5])
    # short side 100: 1 px lines (at least 1), font 0.3 (at least 0.3)
    np.testing.assert_array_equal(drawn, drawn_by_hand(image, [(10, 30, 60, 90)], [5], ["5"], 1, 0.3))
