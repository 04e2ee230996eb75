"""Bad input data: the prepare stage names the file and record, exits non-zero and writes nothing.

Every case mutates a tiny COCO-layout dataset (synthetic images renamed into
``annotations/person_keypoints_<split>2017.json`` and ``<split>2017/``) and runs the stage the
way the CLI does (``run_stage``); one case runs ``python -m pipeline.prepare`` itself.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from conftest import tiny_params

from hrnet.data.coco_reader import coco_layout
from hrnet.data.synthetic.coco_keypoints import generate_coco_keypoints
from pipeline.common import run_stage
from pipeline.prepare import prepare

SIZE = 64  # image width and height of the tiny dataset
OLD_INDEX = '{"old": "index from an earlier run"}'


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def coco_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 train + 2 val synthetic images with people, in the COCO 2017 folder layout."""
    generated = tmp_path_factory.mktemp("synthetic")
    generate_coco_keypoints(generated, 3, 2, (SIZE, SIZE), (1, 2), seed=0, progress=False)
    root = tmp_path_factory.mktemp("coco")
    for split in ("train", "val"):
        ann_src, images_src = coco_layout("synthetic", generated, split)
        ann_dst, images_dst = coco_layout("coco", root, split, must_exist=False)
        ann_dst.parent.mkdir(exist_ok=True)
        shutil.copy(ann_src, ann_dst)
        shutil.copytree(images_src, images_dst)
        data = json.loads(ann_dst.read_text())
        assert any(a["num_keypoints"] > 0 for a in data["annotations"]), f"no labelled person in {split}"
    return root


@pytest.fixture
def coco(coco_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(coco_template, tmp_path / "coco"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A working folder holding params.yaml and the prepared data of an earlier run."""
    project = tmp_path / "project"
    (project / "data" / "prepared" / "index").mkdir(parents=True)
    (project / "data" / "prepared" / "index" / "train.json").write_text(OLD_INDEX)
    return project


def write_params(project: Path, **data: Any) -> None:
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params(data=data), sort_keys=False))


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file (with a digest of its bytes) and folder under ``roots``."""
    state: dict[str, str] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            key = str(path)
            state[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def run_prepare(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> tuple[int, str]:
    """(exit code, stderr) of the prepare stage run as ``python -m pipeline.prepare`` does."""
    monkeypatch.chdir(project)
    capsys.readouterr()
    try:
        run_stage(prepare)
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:
        code = 0
    return code, capsys.readouterr().err


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


# ----------------------------------------------------------------------------- mutations
def ann_file(root: Path, split: str = "train") -> Path:
    return root / "annotations" / f"person_keypoints_{split}2017.json"


def load(root: Path, split: str = "train") -> dict[str, Any]:
    return json.loads(ann_file(root, split).read_text())


def save(root: Path, data: dict[str, Any], split: str = "train") -> None:
    ann_file(root, split).write_text(json.dumps(data))


def labelled(data: dict[str, Any]) -> dict[str, Any]:
    """The first annotation with a labelled keypoint (one the index keeps)."""
    return next(a for a in data["annotations"] if a["num_keypoints"] > 0)


def image_of(root: Path, split: str = "train") -> tuple[Path, int]:
    """The image file (and id) of a kept person record."""
    data = load(root, split)
    image_id = labelled(data)["image_id"]
    entry = next(i for i in data["images"] if i["id"] == image_id)
    return root / f"{split}2017" / entry["file_name"], image_id


def edit_annotation(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], tuple[Path, str]]:
    def mutate(root: Path) -> tuple[Path, str]:
        data = load(root)
        ann = labelled(data)
        record = f"annotation {ann['id']}"
        edit(ann)
        save(root, data)
        return ann_file(root), record

    return mutate


def edit_image_entry(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], tuple[Path, str]]:
    def mutate(root: Path) -> tuple[Path, str]:
        data = load(root)
        entry = next(i for i in data["images"] if i["id"] == labelled(data)["image_id"])
        edit(entry)
        save(root, data)
        return ann_file(root), f"image {entry['id']}"

    return mutate


def edit_file(edit: Callable[[Path], None]) -> Callable[[Path], tuple[Path, str]]:
    def mutate(root: Path) -> tuple[Path, str]:
        edit(ann_file(root))
        return ann_file(root), ""

    return mutate


def edit_image(edit: Callable[[Path], None]) -> Callable[[Path], tuple[Path, str]]:
    def mutate(root: Path) -> tuple[Path, str]:
        path, image_id = image_of(root)
        edit(path)
        return path, f"image {image_id}"

    return mutate


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def drop_top_level(name: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        data = json.loads(path.read_text())
        del data[name]
        path.write_text(json.dumps(data))

    return edit


def remove_first_annotation_id(root: Path) -> tuple[Path, str]:
    data = load(root)
    del data["annotations"][0]["id"]
    save(root, data)
    return ann_file(root), "annotations[0]"


def small_jpeg(path: Path) -> None:
    ok, buf = cv2.imencode(".jpg", np.full((SIZE // 2, SIZE // 2, 3), 90, np.uint8))
    assert ok
    path.write_bytes(buf.tobytes())


RECORD_CASES: list[tuple[str, Callable[[Path], tuple[Path, str]], str]] = [
    (
        "not-json",
        edit_file(lambda p: p.write_text('{"images": [')),
        "not valid JSON (line 1, column 13: Expecting value) (expected",
    ),
    ("top-level-array", edit_file(lambda p: p.write_text("[]")), "the top level is a JSON array (expected"),
    ("no-images", edit_file(drop_top_level("images")), "missing top-level field 'images' (expected"),
    ("no-annotations", edit_file(drop_top_level("annotations")), "missing top-level field 'annotations'"),
    ("no-categories", edit_file(drop_top_level("categories")), "missing top-level field 'categories'"),
    ("ann-no-id", remove_first_annotation_id, "missing field 'id' (expected id, image_id, category_id"),
    ("ann-no-image-id", edit_annotation(lambda a: a.pop("image_id")), "missing field 'image_id' (expected"),
    ("ann-no-bbox", edit_annotation(lambda a: a.pop("bbox")), "missing field 'bbox' (expected"),
    (
        "ann-no-keypoints",
        edit_annotation(lambda a: a.pop("keypoints")),
        "missing field 'keypoints' (expected",
    ),
    (
        "ann-unknown-image",
        edit_annotation(lambda a: a.update(image_id=999)),
        "image_id 999 is not in 'images'",
    ),
    ("image-no-file-name", edit_image_entry(lambda i: i.pop("file_name")), "missing field 'file_name'"),
    ("image-zero-width", edit_image_entry(lambda i: i.update(width=0)), "width is 0 (expected a positive"),
    (
        "keypoints-48",
        edit_annotation(lambda a: a.update(keypoints=a["keypoints"][:48])),
        "keypoints has 48 values (expected 17x3 = 51 numbers",
    ),
    (
        "keypoints-string",
        edit_annotation(lambda a: a["keypoints"].__setitem__(0, "x")),
        'keypoints[0] is "x" (expected 17x3 = 51 numbers',
    ),
    (
        "keypoints-visibility-3",
        edit_annotation(lambda a: a["keypoints"].__setitem__(2, 3)),
        "keypoints[2] (visibility of joint 0) is 3 (expected 0, 1 or 2)",
    ),
    (
        "bbox-zero-width",
        edit_annotation(lambda a: a["bbox"].__setitem__(2, 0)),
        "has a non-positive size 0x",
    ),
    (
        "bbox-negative-height",
        edit_annotation(lambda a: a["bbox"].__setitem__(3, -4)),
        "x-4 (expected width > 0 and height > 0)",
    ),
    (
        "bbox-outside",
        edit_annotation(lambda a: a.update(bbox=[SIZE + 5, 2, 10, 10])),
        f"lies outside the {SIZE}x{SIZE} image (expected a box overlapping the image)",
    ),
    (
        "bbox-three-numbers",
        edit_annotation(lambda a: a.update(bbox=[1, 2, 3])),
        "(expected [x, y, width, height]",
    ),
    ("image-missing", edit_image(lambda p: p.unlink()), "image file not found (expected"),
    ("image-empty", edit_image(lambda p: p.write_bytes(b"")), "image file is empty (expected"),
    ("image-truncated", edit_image(truncate), "truncated JPEG: no end-of-image marker (expected"),
    ("image-garbage", edit_image(lambda p: p.write_bytes(b"GIF89a" + bytes(200))), "not a decodable image"),
    ("image-wrong-size", edit_image(small_jpeg), f"image is 32x32 pixels (expected {SIZE}x{SIZE} as stated"),
]


@pytest.mark.parametrize(
    ("mutate", "fragment"), [c[1:] for c in RECORD_CASES], ids=[c[0] for c in RECORD_CASES]
)
def test_bad_record_fails_naming_file_and_record(
    mutate: Callable[[Path], tuple[Path, str]],
    fragment: str,
    coco: Path,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    file, record = mutate(coco)
    write_params(project, source="coco", root=str(coco))
    before = snapshot(project, coco)

    code, stderr = run_prepare(project, monkeypatch, capsys)

    line = error_line(stderr)
    assert code == 2
    assert line.startswith(f"error: {file}: {record + ': ' if record else ''}"), line
    assert fragment in line
    assert "(expected" in line
    assert snapshot(project, coco) == before  # nothing new, nothing partial, old data untouched


LAYOUT_CASES: list[tuple[str, Callable[[Path], tuple[dict[str, Any], str]]]] = []


def _layout(name: str) -> Callable[[Callable[[Path], tuple[dict[str, Any], str]]], None]:
    def register(fn: Callable[[Path], tuple[dict[str, Any], str]]) -> None:
        LAYOUT_CASES.append((name, fn))

    return register


@_layout("root-missing")
def _(coco: Path) -> tuple[dict[str, Any], str]:
    return {"root": str(coco / "nowhere")}, f"error: {coco / 'nowhere'}: data.root does not exist"


@_layout("root-is-a-file")
def _(coco: Path) -> tuple[dict[str, Any], str]:
    return {"root": str(ann_file(coco))}, f"error: {ann_file(coco)}: data.root is not a folder (expected"


@_layout("split-missing")
def _(coco: Path) -> tuple[dict[str, Any], str]:
    return (
        {"val_split": "test"},
        f"error: {ann_file(coco, 'test')}: annotation file of split 'test' not found (expected "
        "annotations/person_keypoints_test2017.json and test2017/ under the coco root; "
        "found annotations/person_keypoints_train2017.json, annotations/person_keypoints_val2017.json)",
    )


@_layout("image-folder-missing")
def _(coco: Path) -> tuple[dict[str, Any], str]:
    shutil.rmtree(coco / "val2017")
    return {}, f"error: {coco / 'val2017'}: image folder of split 'val' not found (expected"


@_layout("images-nested-one-level-too-deep")
def _(coco: Path) -> tuple[dict[str, Any], str]:
    (coco / "images").mkdir()
    (coco / "train2017").rename(coco / "images" / "train2017")
    return {}, (
        f"error: {coco / 'train2017'}: image folder of split 'train' not found (expected "
        "annotations/person_keypoints_train2017.json and train2017/ under the coco root; "
        "found images/train2017/)"
    )


@_layout("synthetic-file-names")
def _(coco: Path) -> tuple[dict[str, Any], str]:
    ann_file(coco).rename(coco / "annotations" / "person_keypoints_train.json")
    return {}, "found annotations/person_keypoints_train.json, annotations/person_keypoints_val2017.json)"


@_layout("no-annotations-folder")
def _(coco: Path) -> tuple[dict[str, Any], str]:
    (coco / "annotations").rename(coco / "labels")
    return {}, "; there is no annotations/ folder; found labels/person_keypoints_train2017.json"


@pytest.mark.parametrize("mutate", [c[1] for c in LAYOUT_CASES], ids=[c[0] for c in LAYOUT_CASES])
def test_bad_layout_fails_naming_the_path(
    mutate: Callable[[Path], tuple[dict[str, Any], str]],
    coco: Path,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    overrides, expected = mutate(coco)
    write_params(project, **{"source": "coco", "root": str(coco), **overrides})
    before = snapshot(project, coco)

    code, stderr = run_prepare(project, monkeypatch, capsys)

    assert code == 2
    assert expected in error_line(stderr)
    assert snapshot(project, coco) == before


def test_failed_first_run_leaves_no_trace(
    coco: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    write_params(fresh, source="coco", root=str(coco))
    truncate(image_of(coco, "val")[0])

    code, stderr = run_prepare(fresh, monkeypatch, capsys)

    assert code == 2 and "truncated JPEG" in error_line(stderr)
    assert sorted(p.name for p in fresh.iterdir()) == ["params.yaml"]  # not even an empty data/
