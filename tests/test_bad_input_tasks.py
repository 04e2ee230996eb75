"""``data.on_bad_sample`` for segmentation and detection, through the prepare stage: under ``skip`` a
bad image, label or annotation is left out of the index and listed in reports/data_issues.json;
under ``fail`` (the default) the stage ends with one line naming the file and writes nothing.
(tests/test_bad_input.py does the same for pose, case by case.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import pytest
import yaml
from conftest import tiny_params
from test_bad_input import error_line, run_prepare, snapshot, truncate

from hrnet.data.formats.coco import load_coco
from hrnet.data.issues import IssueLog
from hrnet.data.synthetic.cityscapes import generate_cityscapes
from hrnet.data.synthetic.coco_instances import generate_coco_detection
from hrnet.tasks import TASKS
from pipeline.params import parse_params


@pytest.fixture(scope="module")
def instances_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("instances")
    generate_coco_detection(root, 3, 2, (64, 64), (2, 3), seed=0)
    return root


@pytest.fixture(scope="module")
def cityscapes_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cityscapes")
    generate_cityscapes(root, 3, 2, image_size=(64, 32), seed=0)
    return root


@pytest.fixture
def instances(instances_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(instances_template, tmp_path / "instances"))


@pytest.fixture
def cityscapes(cityscapes_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(cityscapes_template, tmp_path / "cityscapes"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    return project


def prepare_task(task: str, project: Path, root: Path, monkeypatch, capsys, **data: Any) -> tuple[int, str]:
    """(exit code, stderr) of the prepare stage of ``task`` on the synthetic-layout data at ``root``."""
    params = tiny_params(task=task, data={"source": "synthetic", "root": str(root), **data})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return run_prepare(project, monkeypatch, capsys)


def report(project: Path) -> dict[str, Any]:
    return json.loads((project / "reports" / "data_issues.json").read_text())


def index(project: Path, role: str) -> dict[str, Any]:
    return json.loads((project / "data/prepared/index" / f"{role}.json").read_text())


# ----------------------------------------------------------------------------- detection
def corrupt_detection(root: Path) -> tuple[Path, int, Path, int]:
    """Truncates a train image and gives a val box a negative width: (image, its id, val file, ann id)."""
    train = json.loads((root / "annotations/instances_train.json").read_text())
    image = train["images"][0]
    image_path = root / "images/train" / image["file_name"]
    truncate(image_path)
    val_file = root / "annotations/instances_val.json"
    val = json.loads(val_file.read_text())
    ann = val["annotations"][0]
    ann["bbox"][2] = -5
    val_file.write_text(json.dumps(val))
    return image_path, image["id"], val_file, ann["id"]


def test_detection_skips_a_bad_image_and_a_bad_box(
    instances: Path, project: Path, monkeypatch, capsys
) -> None:
    image_path, image_id, val_file, ann_id = corrupt_detection(instances)

    code, stderr = prepare_task("detection", project, instances, monkeypatch, capsys, on_bad_sample="skip")

    assert code == 0, stderr
    issues = report(project)
    assert (issues["count"], issues["by_split"]) == (2, {"train": 1, "val": 1})
    files = {(i["file"], i["record"]) for i in issues["examples"]}
    assert files == {(str(image_path), f"image {image_id}"), (str(val_file), f"annotation {ann_id}")}
    train, val = index(project, "train"), index(project, "val")
    assert image_id not in {r["image_id"] for r in train["records"]} and train["skipped_records"] == 1
    # the val file evaluation scores with is the one without the skipped box
    scored = json.loads((project / "data/prepared/index" / val["ann_file"]).read_text())
    assert ann_id not in {a["id"] for a in scored["annotations"]} and val["skipped_records"] == 1


@pytest.mark.parametrize("bad", ["image", "box"])
def test_detection_fails_on_the_first_bad_record_by_default(
    bad: str, instances: Path, project: Path, monkeypatch, capsys
) -> None:
    intact = (instances / "images/train").iterdir().__next__().read_bytes()
    image_path, image_id, val_file, ann_id = corrupt_detection(instances)
    if bad == "box":  # only the val box is bad
        image_path.write_bytes(intact)
    before = snapshot(instances)

    code, stderr = prepare_task("detection", project, instances, monkeypatch, capsys)

    assert code == 2
    line = error_line(stderr)
    if bad == "image":
        assert line.startswith(f"error: {image_path}: image {image_id}: truncated JPEG"), line
    else:
        assert line.startswith(f"error: {val_file}: annotation {ann_id}: bbox "), line
        assert "has a negative size -5x" in line and "(expected width >= 0 and height >= 0)" in line
    assert snapshot(instances) == before  # the data untouched, nothing written:
    assert sorted(path.name for path in project.iterdir()) == ["params.yaml"]


def test_detection_datamodule_reads_the_prepared_index(
    instances: Path, project: Path, monkeypatch, capsys
) -> None:
    code, stderr = prepare_task("detection", project, instances, monkeypatch, capsys)
    assert code == 0, stderr
    for name in ("instances_train.json", "instances_val.json"):  # the raw files are not read again
        path = instances / "annotations" / name
        path.rename(path.with_suffix(".moved"))
    params = parse_params(tiny_params(task="detection", data={"root": str(instances)}))

    datamodule = TASKS["detection"].build_datamodule(params, project / "data/prepared")
    datamodule.setup("fit")

    assert [r["image_id"] for r in datamodule.val_records] == [
        r["image_id"] for r in index(project, "val")["records"]
    ]
    assert datamodule.train_records and Path(datamodule.train_records[0]["file_name"]).is_file()
    assert datamodule.num_classes == len(index(project, "val")["category_ids"])


# ----------------------------------------------------------------------------- segmentation
def corrupt_segmentation(root: Path) -> tuple[Path, Path]:
    """Truncates one train image and writes unknown label ids into another: (image, label)."""
    images = sorted((root / "leftImg8bit/train").glob("*/*.png"))
    labels = sorted((root / "gtFine/train").glob("*/*_labelIds.png"))
    truncate(images[0])
    label = cv2.imread(str(labels[1]), cv2.IMREAD_UNCHANGED)
    label[0, 0] = 200  # not a Cityscapes label id
    cv2.imwrite(str(labels[1]), label)
    return images[0], labels[1]


def test_segmentation_skips_a_bad_image_and_a_bad_label(
    cityscapes: Path, project: Path, monkeypatch, capsys
) -> None:
    image, label = corrupt_segmentation(cityscapes)

    code, stderr = prepare_task(
        "segmentation", project, cityscapes, monkeypatch, capsys, on_bad_sample="skip"
    )

    assert code == 0, stderr
    issues = report(project)
    assert (issues["count"], issues["by_split"]) == (2, {"train": 2, "val": 0})
    assert {i["file"] for i in issues["examples"]} == {str(image), str(label)}
    reasons = " ".join(i["reason"] for i in issues["examples"])
    assert "not a decodable image" in reasons and "label ids [200]" in reasons
    train = index(project, "train")
    kept = {Path(project / "data/prepared/index" / pair[0]).resolve() for pair in train["pairs"]}
    assert len(kept) == 1 and image.resolve() not in kept and train["skipped_records"] == 2
    assert len(index(project, "val")["pairs"]) == 2


def test_segmentation_fails_naming_the_file_by_default(
    cityscapes: Path, project: Path, monkeypatch, capsys
) -> None:
    _, label = corrupt_segmentation(cityscapes)
    before = snapshot(cityscapes)

    code, stderr = prepare_task("segmentation", project, cityscapes, monkeypatch, capsys)

    assert code == 2
    line = error_line(stderr)
    assert (
        line.startswith(f"error: {label}: ")
        and "label ids [200] are not in the Cityscapes label table" in line
    )
    assert snapshot(cityscapes) == before  # the data untouched, nothing written:
    assert sorted(path.name for path in project.iterdir()) == ["params.yaml"]


def test_segmentation_skip_that_leaves_nothing_still_fails(
    cityscapes: Path, project: Path, monkeypatch, capsys
) -> None:
    for image in (cityscapes / "leftImg8bit/val").glob("*/*.png"):
        image.write_bytes(b"")

    code, stderr = prepare_task(
        "segmentation", project, cityscapes, monkeypatch, capsys, on_bad_sample="skip"
    )

    assert code == 2
    assert "no usable image/label pair after skipping 2 bad one(s)" in error_line(stderr)
    assert not (project / "data").exists()


def test_good_data_reports_zero_issues_for_every_task(
    instances: Path, cityscapes: Path, project: Path, monkeypatch, capsys
) -> None:
    for task, root in (("detection", instances), ("segmentation", cityscapes)):
        code, stderr = prepare_task(task, project, root, monkeypatch, capsys, on_bad_sample="skip")
        assert code == 0, stderr
        assert (report(project)["count"], report(project)["by_split"]) == (0, {"train": 0, "val": 0})
        assert "skipped_records" not in index(project, "train")


# ----------------------------------------------------------------------------- unit level
def test_the_coco_loader_reports_to_the_log_it_is_given(instances: Path) -> None:
    path = instances / "annotations/instances_val.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["category_id"] = 99
    path.write_text(json.dumps(data))
    bad_id = data["annotations"][0]["id"]

    issues = IssueLog("skip")
    coco = load_coco(path, "instances", issues=issues, split="val")

    assert coco.dropped == 1 and bad_id not in {a["id"] for a in coco.dataset["annotations"]}
    assert [(i.record, i.split) for i in issues.issues] == [(f"annotation {bad_id}", "val")]
    with pytest.raises(
        ValueError, match=rf"^{path}: annotation {bad_id}: category_id 99 is not in 'categories'"
    ):
        load_coco(path, "instances")  # no log: the first bad record raises
