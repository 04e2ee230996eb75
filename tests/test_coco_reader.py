"""COCO reader on the hand-written fixture ``tests/fixtures/coco_tiny`` (synthetic layout)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hrnet.data.coco_reader import clean_bbox, coco_layout, load_person_instances

FIXTURE = Path(__file__).parent / "fixtures" / "coco_tiny"


def kps(*labeled: tuple[int, float, float, int]) -> list[list]:
    rows = [[0.0, 0.0, 0] for _ in range(17)]
    for k, x, y, v in labeled:
        rows[k] = [float(x), float(y), v]
    return rows


EXPECTED = [
    {
        "image_id": 1,
        "ann_id": 11,
        "image_file": "000000000001.jpg",
        "bbox": [0.0, 4.0, 19.0, 29.0],  # x clipped to 0, far corner from the clipped x: 0 + 20 - 1
        "keypoints": kps((0, 8, 6, 2), (5, 5, 14, 2), (6, 12, 14, 1)),
        "area": 300.0,
    },
    {
        "image_id": 1,
        "ann_id": 13,
        "image_file": "000000000001.jpg",
        "bbox": [60.0, 40.0, 3.0, 7.0],  # clipped at the right/bottom border (63, 47)
        "keypoints": kps((15, 61, 45, 2)),
        "area": 40.0,
    },
    {
        "image_id": 2,
        "ann_id": 22,
        "image_file": "000000000002.jpg",
        "bbox": [70.5, 20.25, 8.5, 24.0],
        "keypoints": kps((5, 75.5, 30.25, 2), (6, 78, 30, 2), (15, 72, 44, 1), (16, 77, 44, 2)),
        "area": 150.5,
    },
]
NO_KEYPOINTS = {
    "image_id": 1,
    "ann_id": 12,
    "image_file": "000000000001.jpg",
    "bbox": [30.0, 10.0, 9.0, 19.0],
    "keypoints": kps(),
    "area": 120.0,
}


def test_layouts():
    ann, images = coco_layout("synthetic", FIXTURE, "val")
    assert ann == FIXTURE / "annotations" / "person_keypoints_val.json"
    assert images == FIXTURE / "images" / "val"
    ann, images = coco_layout("coco", Path("/data/coco"), "train", must_exist=False)
    assert ann == Path("/data/coco/annotations/person_keypoints_train2017.json")
    assert images == Path("/data/coco/train2017")


def test_reader_gives_exactly_the_expected_records():
    records = load_person_instances(*coco_layout("synthetic", FIXTURE, "val"))
    assert records == EXPECTED  # crowd, zero-area, off-image, non-person and unlabeled ones dropped
    json.dumps(records)  # JSON-serialisable
    assert all(isinstance(v, int) for r in records for v in (r["image_id"], r["ann_id"]))


def test_reader_keeps_unlabeled_persons_on_request():
    records = load_person_instances(*coco_layout("synthetic", FIXTURE, "val"), require_keypoints=False)
    assert records == [EXPECTED[0], NO_KEYPOINTS, EXPECTED[1], EXPECTED[2]]


def test_clean_bbox_reference_rules():
    assert clean_bbox([-3, 4, 20, 30], 64, 48) == [0.0, 4.0, 19.0, 29.0]
    assert clean_bbox([90, 10, 5, 5], 80, 60) is None  # starts right of the image
    assert clean_bbox([5, 5, 1, 1], 80, 60) is None  # a single point cannot make a crop
    assert clean_bbox([5, 5, 1, 10], 80, 60) == [5.0, 5.0, 0.0, 9.0]  # zero width is kept


def test_missing_files_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="person_keypoints_val.json"):
        coco_layout("synthetic", tmp_path, "val")
    (tmp_path / "annotations").mkdir()
    shutil.copy(FIXTURE / "annotations" / "person_keypoints_val.json", tmp_path / "annotations")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "images" / "val")):
        coco_layout("synthetic", tmp_path, "val")
    with pytest.raises(FileNotFoundError, match="train2017"):
        coco_layout("coco", tmp_path, "train")
    with pytest.raises(ValueError, match="unknown dataset source 'kitti'"):
        coco_layout("kitti", tmp_path, "val")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_person_instances(tmp_path / "nope.json", tmp_path)
    with pytest.raises(FileNotFoundError, match="no_images"):
        load_person_instances(tmp_path / "annotations" / "person_keypoints_val.json", tmp_path / "no_images")


def test_malformed_file_is_a_value_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [{"id": 1}], "annotations": [{"image_id": 1}]}')
    with pytest.raises(ValueError, match="bad.json"):
        load_person_instances(bad, tmp_path)
