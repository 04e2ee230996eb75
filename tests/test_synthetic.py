"""Synthetic COCO keypoints: determinism, COCO validity and annotation invariants."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from hrnet.data.coco_constants import PERSON_CATEGORY
from hrnet.data.coco_reader import coco_layout, load_person_instances
from hrnet.data.synthetic import coco_keypoints
from hrnet.data.synthetic.coco_keypoints import generate_coco_keypoints, main, render_image

SIZE = (160, 120)


def generate(root: Path, seed: int) -> dict:
    return generate_coco_keypoints(
        root, 6, 3, image_size=SIZE, persons_per_image=(1, 3), seed=seed, progress=False
    )


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for split in ("train", "val"):
        h.update((root / "annotations" / f"person_keypoints_{split}.json").read_bytes())
        for image in sorted((root / "images" / split).glob("*.jpg")):
            h.update(image.name.encode() + image.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthetic")
    return root, generate(root, seed=3)


def test_same_seed_same_bytes_other_seed_differs(dataset, tmp_path):
    root, summary = dataset
    again = generate(tmp_path / "again", seed=3)
    assert again["train"] == summary["train"]
    assert digest(tmp_path / "again") == digest(root)
    generate(tmp_path / "other", seed=4)
    assert digest(tmp_path / "other") != digest(root)
    # Regenerating with fewer images leaves no stale files behind.
    generate_coco_keypoints(tmp_path / "again", 2, 1, image_size=SIZE, seed=3, progress=False)
    assert len(list((tmp_path / "again" / "images" / "train").glob("*.jpg"))) == 2


def test_interrupted_generation_leaves_the_previous_split_whole(tmp_path, monkeypatch):
    generate_coco_keypoints(tmp_path, 3, 0, image_size=(64, 48), seed=1, progress=False)
    before = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    real, rendered = render_image, []

    def render_then_fail(rng, size, persons, **options):
        if len(rendered) == 2:
            raise RuntimeError("disk full")
        rendered.append(size)
        return real(rng, size, persons, **options)

    monkeypatch.setattr(coco_keypoints, "render_image", render_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_coco_keypoints(tmp_path, 3, 0, image_size=(64, 48), seed=2, progress=False)
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == before


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' numpy-2 copy= warning
def test_layout_and_coco_loading(dataset):
    root, summary = dataset
    for split, count in (("train", 6), ("val", 3)):
        ann_file, image_dir = coco_layout("synthetic", root, split)
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(ann_file))
        assert len(coco.getImgIds()) == count == summary[split]["images"]
        assert len(coco.getAnnIds()) == summary[split]["annotations"] > 0
        assert coco.loadCats([1])[0] == PERSON_CATEGORY
        for image in coco.loadImgs(coco.getImgIds()):
            assert image["file_name"] == f"{image['id']:012d}.jpg"
            decoded = cv2.imread(str(image_dir / image["file_name"]))
            assert decoded.shape == (SIZE[1], SIZE[0], 3) == (image["height"], image["width"], 3)
        for ann in coco.loadAnns(coco.getAnnIds()):  # polygons cover the visible mask
            assert 0.8 * ann["area"] <= coco.annToMask(ann).sum() <= ann["bbox"][2] * ann["bbox"][3]
        records = load_person_instances(ann_file, image_dir)
        assert len(records) == summary[split]["annotations_with_keypoints"]
    ids = {
        split: {
            i["id"]
            for i in json.loads((root / f"annotations/person_keypoints_{split}.json").read_text())["images"]
        }
        for split in ("train", "val")
    }
    assert not ids["train"] & ids["val"]


def test_annotation_invariants(dataset):
    root, _ = dataset
    data = json.loads((root / "annotations" / "person_keypoints_train.json").read_text())
    assert set(data) == {"info", "licenses", "images", "annotations", "categories"}
    w, h = SIZE
    for ann in data["annotations"]:
        assert ann["category_id"] == 1 and ann["iscrowd"] == 0
        kps = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
        v = kps[:, 2]
        assert set(v) <= {0, 1, 2}
        assert ann["num_keypoints"] == int((v > 0).sum())
        assert np.all(kps[v == 0, :2] == 0)
        labeled = kps[v > 0, :2]
        assert np.all((labeled > -0.5) & (labeled < [w - 0.5, h - 0.5]))
        x, y, bw, bh = ann["bbox"]
        assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h and bw > 0 and bh > 0
        assert 0 < ann["area"] <= bw * bh
        visible = kps[v == 2, :2]  # a visible keypoint lies on the person's own visible pixels
        assert np.all((visible >= [x - 0.5, y - 0.5]) & (visible <= [x + bw - 0.5, y + bh - 0.5]))


def test_figures_are_filled_large_and_mostly_labeled():
    """Realism targets at the default size: filled bodies, medium/large persons, few hidden joints."""
    fractions, areas, vis = [], [], []
    for i in range(25):
        image, anns = render_image(np.random.default_rng([11, 0, i]), (320, 240), (1, 4))
        assert image.shape == (240, 320, 3) and image.dtype == np.uint8
        for ann in anns:
            fractions.append(ann["area"] / (ann["bbox"][2] * ann["bbox"][3]))
            areas.append(ann["area"])
            vis.extend(ann["keypoints"][2::3])
    assert len(areas) >= 40  # several people per image
    assert 0.3 <= float(np.median(fractions)) <= 0.55
    assert np.mean(np.array(areas) >= 32**2) > 0.9
    vis = np.array(vis)
    assert 0.7 < np.mean(vis == 2) < 0.95 and np.mean(vis == 1) > 0.03


def test_cli_writes_dataset(tmp_path, capsys):
    main(["--root", str(tmp_path), "--num-train", "2", "--num-val", "1", "--seed", "5",
          "--width", "96", "--height", "96", "--no-progress"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["train"]["images"] == 2 and summary["val"]["images"] == 1
    assert (tmp_path / "annotations" / "person_keypoints_val.json").is_file()
    with pytest.raises(ValueError, match="persons_per_image"):
        generate_coco_keypoints(tmp_path, 1, 1, persons_per_image=(3, 1), progress=False)
