"""COCO instances reader, detection dataset/datamodule and the synthetic detection generator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from pycocotools.coco import COCO

from hrnet.data.detection_dataset import (
    CategoryMap,
    DetectionDataModule,
    DetectionDataset,
    collate,
    detection_layout,
    load_detection_records,
    load_detection_split,
    read_categories,
)
from hrnet.data.synthetic.coco_instances import CATEGORIES, generate_coco_detection

torch.set_num_threads(1)

FIXTURE = Path(__file__).parent / "fixtures" / "coco_instances_tiny"
ANN = FIXTURE / "instances_tiny.json"
IMAGES = FIXTURE / "images"


def test_reader_gives_the_expected_records() -> None:
    records, categories = load_detection_split(ANN, IMAGES)
    # COCO's `train` and names holding a space, listed out of id order in the file
    assert categories == CategoryMap((1, 3, 7, 10, 44, 58), ("person", "car", "train", "traffic light",
                                                            "bottle", "hot dog"))  # fmt: skip
    assert categories.label_to_category == {1: 1, 2: 3, 3: 7, 4: 10, 5: 44, 6: 58}
    assert records == [
        {
            "image_id": 7, "file_name": str(IMAGES / "000000000007.jpg"), "width": 64, "height": 48,
            # id 2 is clipped at the right/bottom edge, id 3 is a crowd region
            "boxes": [[10.0, 5.0, 30.0, 35.0], [50.0, 30.0, 64.0, 48.0]],
            "labels": [1, 5], "category_ids": [1, 44],
            # each box's polygon as in the file (the crowd's RLE goes with its box)
            "segmentations": [[[10, 5, 30, 5, 30, 35, 10, 35]], [[50, 30, 70, 30, 70, 55, 50, 55]]],
        },
        {
            "image_id": 12, "file_name": str(IMAGES / "000000000012.jpg"), "width": 40, "height": 40,
            # id 4 clipped at the left; id 5 (0.5 px wide) and id 6 (0.5 px after clipping) dropped
            "boxes": [[0.0, 2.0, 10.0, 12.0], [22.0, 4.0, 34.0, 34.0]],
            "labels": [2, 1], "category_ids": [3, 1],
            "segmentations": [[[-4, 2, 10, 2, 10, 12, -4, 12]], [[22, 4, 34, 4, 34, 34, 22, 34]]],
        },
        {
            "image_id": 21, "file_name": str(IMAGES / "000000000021.jpg"), "width": 48, "height": 32,
            "boxes": [[2.0, 6.0, 32.0, 20.0], [36.0, 2.0, 41.0, 14.0], [34.0, 20.0, 46.0, 26.0]],
            "labels": [3, 4, 6], "category_ids": [7, 10, 58],
            "segmentations": [[[2, 6, 32, 6, 32, 20, 2, 20]], [[36, 2, 41, 2, 41, 14, 36, 14]],
                              [[34, 20, 46, 20, 46, 26, 34, 26]]],
        },
    ]  # fmt: skip
    assert load_detection_records(ANN, IMAGES) == records
    assert read_categories(ANN) == categories


def _variant(tmp_path: Path, edit) -> Path:
    data = json.loads(ANN.read_text())
    edit(data)
    path = tmp_path / "instances_bad.json"
    path.write_text(json.dumps(data))
    return path


def test_zero_size_box_is_dropped_and_empty_images_can_be_skipped(tmp_path: Path) -> None:
    def edit(data: dict) -> None:  # COCO train2017 holds boxes of height 0
        data["annotations"] = [a for a in data["annotations"] if a["image_id"] == 7]
        data["annotations"].append({"id": 9, "image_id": 12, "category_id": 1, "bbox": [5, 5, 6, 0]})

    path = _variant(tmp_path, edit)
    assert [r["image_id"] for r in load_detection_records(path, IMAGES)] == [7, 12, 21]
    assert load_detection_records(path, IMAGES)[1]["boxes"] == []
    assert [r["image_id"] for r in load_detection_records(path, IMAGES, drop_empty=True)] == [7]


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        (
            lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]),
            ValueError,
            "annotation 1: bbox [1, 2, -3, 4] has a negative size -3x4 (expected",
        ),
        (
            lambda d: d["annotations"][1].update(bbox=[1, 2, 3]),
            ValueError,
            "annotation 2: bbox is [1, 2, 3] (expected [x, y, width, height]: 4 finite numbers)",
        ),
        (
            lambda d: d["annotations"][0].update(category_id=99),
            ValueError,
            "category_id 99 is not in 'categories'",
        ),
        (lambda d: d["annotations"][0].update(image_id=5), ValueError, "image_id 5 is not in 'images'"),
        (lambda d: d.pop("categories"), ValueError, "missing top-level field 'categories' (expected"),
        # file_name is joined to the image folder: none may point outside it
        (
            lambda d: d["images"][0].update(file_name="/etc/hostname"),
            ValueError,
            'image 12: file_name is "/etc/hostname" (expected a file name inside',
        ),
        (
            lambda d: d["images"][1].update(file_name="../instances_tiny.json"),
            ValueError,
            'image 7: file_name is "../instances_tiny.json"',
        ),
        (lambda d: d["images"][2].update(file_name=""), ValueError, 'image 21: file_name is ""'),
    ],
)
def test_bad_annotations_give_one_line_errors_naming_the_file(tmp_path, edit, error, message) -> None:
    path = _variant(tmp_path, edit)
    with pytest.raises(error) as info:
        load_detection_records(path, IMAGES)
    text = str(info.value)
    assert str(path) in text and message in text and "\n" not in text


def test_missing_or_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.json: annotation file not found"):
        load_detection_records(tmp_path / "nope.json", IMAGES)
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [}')
    with pytest.raises(ValueError, match=r"broken.json: not valid JSON \(line 1, column"):
        load_detection_records(broken, IMAGES)
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        detection_layout("coco", tmp_path, "val")


def test_dataset_items_flip_and_collate() -> None:
    records = load_detection_records(ANN, IMAGES)
    image, target = DetectionDataset(records)[0]
    assert (
        image.shape == (3, 48, 64) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    )
    assert target["image_id"] == 7 and target["labels"].dtype == torch.int64
    torch.testing.assert_close(target["boxes"], torch.tensor([[10.0, 5, 30, 35], [50, 30, 64, 48]]))
    flipped, flipped_target = DetectionDataset(records, train=True, flip_prob=1.0)[0]
    torch.testing.assert_close(flipped, image.flip(-1))
    torch.testing.assert_close(flipped_target["boxes"], torch.tensor([[34.0, 5, 54, 35], [0, 30, 14, 48]]))
    images, targets = collate([DetectionDataset(records)[i] for i in range(2)])
    assert [im.shape[1:] for im in images] == [(48, 64), (40, 40)] and [t["image_id"] for t in targets] == [
        7,
        12,
    ]


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_synthetic_split_is_coco_format_deterministic_and_readable(tmp_path: Path) -> None:
    summary = generate_coco_detection(tmp_path / "a", 6, 40, seed=3)
    generate_coco_detection(tmp_path / "b", 6, 40, seed=3)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    generate_coco_detection(tmp_path / "c", 6, 40, seed=4)
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    assert all(summary["val"]["small_medium_large"]), summary  # every COCO area range has objects

    ann_file, image_dir = detection_layout("synthetic", tmp_path / "a", "val")
    data = json.loads(ann_file.read_text())
    assert {"info", "licenses", "images", "annotations", "categories"} <= data.keys()
    assert data["categories"] == list(CATEGORIES)
    assert [c["id"] for c in data["categories"]] == [1, 3, 7, 10, 13, 37, 44, 58]
    assert {"train", "traffic light", "hot dog"} <= {c["name"] for c in data["categories"]}
    assert all(summary["val"]["per_class"].values()), summary  # every category is drawn
    coco = COCO(str(ann_file))
    assert len(coco.getImgIds()) == 40 and coco.getImgIds()[0] == 1_000_001
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        assert w > 1 and h > 1 and x >= 0 and y >= 0 and x + w <= 128 and y + h <= 128
        assert 0 < ann["area"] <= w * h and ann["iscrowd"] == 0 and len(ann["segmentation"][0]) >= 6
    records = load_detection_records(ann_file, image_dir)
    assert sum(len(r["boxes"]) for r in records) == len(data["annotations"])


def test_datamodule_on_synthetic(tmp_path: Path) -> None:
    generate_coco_detection(tmp_path, 5, 3, seed=0)
    dm = DetectionDataModule(tmp_path, batch_size=2, seed=1)
    dm.setup("fit")
    assert dm.num_classes == 8
    assert dm.label_to_category == {1: 1, 2: 3, 3: 7, 4: 10, 5: 13, 6: 37, 7: 44, 8: 58}
    assert dm.val_ann_file == str(tmp_path / "annotations" / "instances_val.json")
    images, targets = next(iter(dm.train_dataloader()))
    assert len(images) == 2 and images[0].shape == (3, 128, 128) and "boxes" in targets[0]
    assert sum(len(t[1]) for t in dm.val_dataloader()) == 3
    order = [t["image_id"] for _, ts in dm.train_dataloader() for t in ts]
    # A train epoch: full batches only (4 of 5 images), each image at most once.
    assert len(order) == 4 and len(set(order)) == 4 and set(order) <= {1, 2, 3, 4, 5}
    assert order == [t["image_id"] for _, ts in dm.train_dataloader() for t in ts]  # seeded shuffle
