"""The prepare stage checks PASCAL-Context, LIP and folder data as it checks Cityscapes': an image
without its label, a label without its image, a label value outside the class table, an id a split
list names without its files. Under ``fail`` one line names the file and what was expected; under
``skip`` the record is left out of the index and listed in reports/data_issues.json."""

from __future__ import annotations

import shutil
from importlib import import_module
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_bad_input import error_line
from test_bad_input_tasks import index, prepare_task, report

from hrnet.data.synthetic.seg_layouts import generate_segmentation

LAYOUTS = ("pascal_context", "lip", "folder")


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("seg_layouts")
    for layout in LAYOUTS:
        generate_segmentation(base / layout, 3, 2, (64, 32), 0, layout)
    return {layout: base / layout for layout in LAYOUTS}


def first_train_pair(root: Path, layout: str) -> tuple[str, Path, Path]:
    pairs = import_module(f"hrnet.data.formats.{layout}").list_split(root, "train").pairs
    record = sorted(pairs)[0]
    return record, *pairs[record]


def remove_label(root: Path, layout: str) -> tuple[Path, str]:
    _, _, label = first_train_pair(root, layout)
    label.unlink()
    return label, "label file not found (expected it for"


def remove_image(root: Path, layout: str) -> tuple[Path, str]:
    _, image, label = first_train_pair(root, layout)
    image.unlink()
    if layout == "folder":  # nothing lists it: the label is the orphan
        return label, "label without an image (expected images/train/"
    return image, "image file not found (expected it for the id listed in"


def unknown_value(root: Path, layout: str) -> tuple[Path, str]:
    _, _, label = first_train_pair(root, layout)
    values = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    values[0, :2] = 200
    cv2.imwrite(str(label), values)
    return label, "label values [200] are not in the class table (expected values of the class table)"


def other_size(root: Path, layout: str) -> tuple[Path, str]:
    _, _, label = first_train_pair(root, layout)
    values = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(label), values[:, :-2])
    return label, "label size 62x32 differs from image size 64x32 (expected equal sizes)"


def listed_without_files(root: Path, layout: str) -> tuple[Path, str]:
    if layout == "pascal_context":
        listed, image = root / "ImageSets/SegmentationContext/train.txt", root / "JPEGImages/ghost.jpg"
    else:
        listed, image = root / "TrainVal_images/train_id.txt", root / "TrainVal_images/train_images/ghost.jpg"
    listed.write_text(listed.read_text() + "ghost\n")
    return image, "image file not found (expected it for the id listed in"


CASES = [
    (layout, name, breaker)
    for layout in LAYOUTS
    for name, breaker in (
        ("label_missing", remove_label),
        ("image_missing", remove_image),
        ("unknown_value", unknown_value),
        ("other_size", other_size),
        ("listed_without_files", listed_without_files),
    )
    if not (layout == "folder" and name == "listed_without_files")  # a folder lists no ids
]


@pytest.mark.parametrize(("layout", "case", "breaker"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_a_bad_record_fails_in_one_line_or_is_skipped_and_reported(
    templates, tmp_path, monkeypatch, capsys, layout, case, breaker
):
    root = Path(shutil.copytree(templates[layout], tmp_path / layout))
    bad, expected = breaker(root, layout)
    data = {"source": layout}
    failing, skipping = tmp_path / "fail", tmp_path / "skip"
    failing.mkdir(), skipping.mkdir()

    code, stderr = prepare_task("segmentation", failing, root, monkeypatch, capsys, **data)
    line = error_line(stderr)
    assert code == 2 and line.startswith(f"error: {bad}: ") and expected in line, line
    assert sorted(p.name for p in failing.iterdir()) == ["params.yaml"]  # nothing written

    code, _ = prepare_task("segmentation", skipping, root, monkeypatch, capsys, on_bad_sample="skip", **data)
    assert code == 0
    train = index(skipping, "train")
    assert len(train["pairs"]) == (3 if case == "listed_without_files" else 2)
    assert train["skipped_records"] == 1 and train["layout"] == layout
    issues = report(skipping)
    assert [issue["file"] for issue in issues["examples"]] == [str(bad)], issues


def test_a_folder_with_a_bad_classes_yaml_fails_naming_the_file_and_field(
    templates, tmp_path, monkeypatch, capsys
):
    root = Path(shutil.copytree(templates["folder"], tmp_path / "folder"))
    (root / "classes.yaml").write_text("classes:\n  - {name: sky, value: 300}\n")
    project = tmp_path / "project"
    project.mkdir()
    code, stderr = prepare_task("segmentation", project, root, monkeypatch, capsys, source="folder")
    assert code == 2
    assert error_line(stderr) == (
        f"error: {root / 'classes.yaml'}: classes[0].value: expected a label value in 0..255, got 300"
    )


def test_each_layout_indexes_every_pair_with_its_class_table(templates, tmp_path, monkeypatch, capsys):
    for layout in LAYOUTS:
        project = tmp_path / layout
        project.mkdir()
        root = templates[layout]
        code, stderr = prepare_task("segmentation", project, root, monkeypatch, capsys, source=layout)
        assert code == 0, stderr
        val = index(project, "val")
        assert len(val["pairs"]) == 2 and val["layout"] == layout
        assert len(val["classes"]["names"]) == {"pascal_context": 59, "lip": 20, "folder": 7}[layout]
        assert np.asarray(val["classes"]["values"]).min() >= 0
