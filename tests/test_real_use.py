"""What users do after the first `dvc repro`, through `dvc` itself: forced experiments (queued ones:
tests/test_study.py), a workspace that always reproduces, real-format data at an absolute data.root
outside the project (also from `dvc exp run --temp`), data edits DVC sees, and test-time settings that
rerun only evaluate and package; the first `dvc repro` and a second that changes nothing."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import project_env, tiny_project

from hrnet.data.synthetic.cityscapes import generate_cityscapes
from hrnet.data.synthetic.coco_instances import generate_coco_detection
from hrnet.data.synthetic.coco_keypoints import generate_coco_keypoints
from hrnet.data.synthetic.seg_layouts import generate_segmentation
from hrnet.data.synthetic.skeletons import SKELETONS

pytestmark = pytest.mark.slow


def dvc(project: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["dvc", *args], cwd=project, env=project_env(), capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"dvc {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, env=project_env(), capture_output=True)


def write_params(project: Path, params: dict) -> None:
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def metrics(project: Path) -> dict:
    return json.loads((project / "reports" / "metrics.json").read_text())


def changed_stages(project: Path) -> set[str]:
    """The stages `dvc status` reports changed (the on-demand sweep and detector: none until asked for),
    through DVC's Python API: the Repo.status that `dvc status --json` prints, without a process per look
    (the command itself: the no-op test below)."""
    from dvc.repo import Repo

    with contextlib.chdir(project), Repo(".") as repo:  # stage names relative to the project, as dvc's
        return set(repo.status())


# ----------------------------------------------------------------------------- real-format fixtures
def coco_keypoints_2017(root: Path, skeleton: str = "coco") -> Path:
    """A COCO 2017 keypoints folder: annotations/person_keypoints_{train,val}2017.json, {train,val}2017/."""
    generate_coco_keypoints(
        root / "gen", 6, 3, image_size=(128, 128), seed=3, progress=False, skeleton=skeleton
    )
    return _as_coco_2017(root, "person_keypoints")


def stick_keypoints_2017(root: Path) -> Path:
    """The same in COCO layout with another keypoint set: 14 keypoints of a stick figure."""
    return coco_keypoints_2017(root, "stick")


def coco_instances_2017(root: Path) -> Path:
    generate_coco_detection(root / "gen", 6, 3, image_size=(96, 96), objects_per_image=(1, 3), seed=3)
    return _as_coco_2017(root, "instances")


def _as_coco_2017(root: Path, kind: str) -> Path:
    (root / "annotations").mkdir()
    for split in ("train", "val"):
        shutil.move(root / "gen" / "images" / split, root / f"{split}2017")
        shutil.move(
            root / "gen" / "annotations" / f"{kind}_{split}.json",
            root / "annotations" / f"{kind}_{split}2017.json",
        )
    shutil.rmtree(root / "gen")
    return root


def cityscapes(root: Path) -> Path:
    generate_cityscapes(root, num_train_images=4, num_val_images=2, image_size=(128, 64), seed=3)
    return root


def in_layout(layout: str):  # noqa: ANN201
    """A builder of the synthetic scenes written in a segmentation ``layout`` (a real dataset's)."""
    return lambda root: Path(
        generate_segmentation(root, 4, 2, image_size=(128, 64), seed=3, layout=layout)["root"]
    )


SEGMENTATION_PACKAGE = "segmentation_hrnet_w18_small_v2_64x64"
# what test_real_format... edits at data.root: a label file and an image folder of the layout
LAYOUT_FILES = {"cityscapes": ("gtFine/val/*/*_labelIds.png", "leftImg8bit")}
STICK = SKELETONS["stick"]
REAL_DATA = {
    "pose": ("coco", coco_keypoints_2017, "pose_hrnet_w18_small_v1_64x64", "AP"),
    # one's own keypoints: the category's names and skeleton, the sigmas given as a user gives them
    "pose-stick": ("coco", stick_keypoints_2017, "pose_hrnet_w18_small_v1_64x64", "AP"),
    "detection": ("coco", coco_instances_2017, "detection_hrnet_w18_small_v2p_96", "AP"),
    "segmentation": ("cityscapes", cityscapes, SEGMENTATION_PACKAGE, "mIoU"),
    **{
        f"segmentation-{layout}": (layout, in_layout(layout), SEGMENTATION_PACKAGE, "mIoU")
        for layout in ("pascal_context", "lip", "folder")
    },
}


@pytest.mark.parametrize("case", list(REAL_DATA))
def test_real_format_data_at_an_absolute_root_runs_every_stage(tmp_path, case):
    source, build, package, metric = REAL_DATA[case]
    task = case.split("-")[0]
    root = build(tmp_path / "datasets" / case)  # outside the project, as /datasets/coco would be
    own = {"pose": {"oks_sigmas": list(STICK.sigmas)}} if case == "pose-stick" else {}
    project = tiny_project(
        tmp_path / "project", commit=True, task=task, data={"source": source, "root": str(root)},
        train={"epochs": 1, "num_workers": 0, "limit_train_batches": 2}, **own,
    )  # fmt: skip
    if case == "pose":  # first a temporary experiment, run in another folder: the workspace reproduces
        dvc(project, "exp", "run", "--temp", "-n", "in-temp")  # with what it cached
        shown = json.loads(dvc(project, "exp", "show", "--json").stdout)
        assert "in-temp" in [e.get("name") for entry in shown for e in (entry.get("experiments") or [])]
    dvc(project, "repro")
    assert 0.0 <= metrics(project)[metric] <= 1.0
    assert (project / "dist" / package / "SHA256SUMS").is_file()
    if source == "coco":  # outside the project: absolute
        index = json.loads((project / "data" / "prepared" / "index" / "val.json").read_text())
        assert Path(index["image_dir"]) == root / "val2017"
    if case == "pose-stick":  # the data's 14 keypoints made the model, the metadata travels
        meta = json.loads((project / "dist" / package / "package.json").read_text())
        assert meta["num_joints"] == 14 and meta["keypoints"]["names"] == STICK.category["keypoints"]
        assert meta["keypoints"]["sigmas"] == list(STICK.sigmas) and len(meta["keypoints"]["flip_pairs"]) == 6
        assert meta["keypoints"]["skeleton"] == STICK.category["skeleton"]
        return  # DVC's view of data.root is the pose case's
    assert not (project / "data" / "synthetic").exists() or not any(
        p.suffix in (".jpg", ".png") for p in (project / "data" / "synthetic").rglob("*")
    )  # nothing synthetic was generated or read
    assert changed_stages(project) == set()
    if task == "segmentation":  # the package carries the class table of the data's layout
        index = json.loads((project / "data" / "prepared" / "index" / "val.json").read_text())
        meta = json.loads((project / "dist" / package / "package.json").read_text())
        assert index["layout"] == source and meta["class_table"] == index["classes"]

    if source not in LAYOUT_FILES and source != "coco":
        return  # DVC's view of data.root (one directory dep, whatever its layout): the cityscapes case's
    # DVC sees the data at data.root: an edited annotation or label, an added or removed image
    if task == "segmentation":
        edited = sorted(root.glob(LAYOUT_FILES[source][0]))[0]
    else:
        kind = "person_keypoints" if task == "pose" else "instances"
        edited = root / "annotations" / f"{kind}_val2017.json"
    original = edited.read_bytes()
    edited.write_bytes(original + (b"\0" if task == "segmentation" else b"\n"))
    assert "prepare" in changed_stages(project)
    if case == "pose":  # one case reruns on the edited data; the others undo the edit (DVC hashes content)
        dvc(project, "repro")
    else:
        edited.write_bytes(original)
    assert "prepare" not in changed_stages(project)
    image_dir = root / (LAYOUT_FILES[source][1] if task == "segmentation" else "train2017")
    image = next(image_dir.rglob("*.*g"))
    shutil.copy(image, image.with_name("extra_" + image.name))
    assert "prepare" in changed_stages(project)
    image.with_name("extra_" + image.name).unlink()
    assert "prepare" not in changed_stages(project)


@pytest.mark.parametrize("layout", ["pascal_context", "lip", "folder"])
def test_each_synthetic_segmentation_layout_is_written_and_prepared_in_it(tmp_path, layout):
    """`dvc exp run -S data.synthetic.layout=...` writes the embedded scenes in ``layout`` and prepare
    reads them in it (every stage on data of each layout: test_real_format_data... above)."""
    project = tiny_project(tmp_path / "project", commit=True, task="segmentation")
    dvc(project, "exp", "run", "-S", f"data.synthetic.layout={layout}", "prepare")
    index = json.loads((project / "data" / "prepared" / "index" / "val.json").read_text())
    assert index["layout"] == layout and len(index["pairs"]) == 2
    assert changed_stages(project) >= {"train"} and "prepare" not in changed_stages(project)


def test_a_synthetic_set_of_another_skeleton_is_written_and_prepared(tmp_path):
    """`dvc exp run -S data.synthetic.pose.skeleton=stick`: 14 keypoints with left_/right_ names and
    the generator's suggested sigmas reach the prepared index (every stage on a 14-keypoint set, to
    the package's metadata: the pose-stick case of test_real_format_data... above)."""
    project = tiny_project(tmp_path / "project", commit=True)
    dvc(project, "exp", "run", "-S", "data.synthetic.pose.skeleton=stick", "prepare")
    index = json.loads((project / "data" / "prepared" / "index" / "train.json").read_text())
    keypoints = index["meta"]["keypoints"]
    assert keypoints["names"] == STICK.category["keypoints"]
    assert keypoints["skeleton"] == STICK.category["skeleton"]
    assert keypoints["flip_pairs"] == [[2, 3], [4, 5], [6, 7], [8, 9], [10, 11], [12, 13]]
    assert keypoints["sigmas"] == list(STICK.sigmas)
    assert changed_stages(project) >= {"train"} and "prepare" not in changed_stages(project)


@pytest.mark.timeout(1800)  # eight dvc runs: about 3 min on 2 idle cores
def test_the_first_repro_then_noop_forced_killed_back_and_forth_and_test_time_runs(tmp_path):
    """The README's first `dvc repro` (on tiny data), which a second one leaves as it is; forced, killed
    and back-and-forth runs that never wedge the pipeline; then what a test-time setting or an edit of
    code reruns. One project throughout: each part starts from the first repro's outputs."""
    project = tiny_project(
        tmp_path / "project", commit=True, train={"epochs": 2, "num_workers": 0, "limit_train_batches": 2}
    )
    dvc(project, "repro")
    first = metrics(project)
    first_repro_is_complete_and_a_second_changes_nothing(project, first)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "first run")

    # a forced experiment trains again (the finished last.ckpt is not resumed) and writes every output
    # (`dvc repro -f` runs the same forced stages; `dvc exp run` is repro in the workspace plus the exp ref)
    forced = dvc(project, "exp", "run", "-f")
    assert "that run finished (2 of 2 epochs done); training again" in forced.stdout + forced.stderr
    assert (project / "dvclive" / "plots" / "metrics").is_dir()
    assert metrics(project) == first

    # killed between the last epoch and the end of the stage: last.ckpt is finished, nothing else
    for path in ("models/model.ckpt", "dvclive"):
        shutil.rmtree(project / path) if (project / path).is_dir() else (project / path).unlink()
    dvc(project, "repro")
    assert metrics(project) == first

    # params back and forth: fewer epochs, then the original ones again
    dvc(project, "exp", "run", "-S", "train.epochs=1")
    dvc(project, "exp", "run", "-S", "train.epochs=2")
    assert metrics(project) == first
    extended = dvc(project, "exp", "run", "-S", "train.epochs=3")  # extending a finished run resumes it
    assert "resuming from models/last.ckpt (2 of 3 epochs done)" in extended.stdout + extended.stderr
    # (the workspace is left up to date: the next part finds only evaluate and package changed)
    # queued experiments (`dvc exp run --queue`, `dvc queue start`): tests/test_study.py, whose study
    # queues four on one worker and reads their metrics

    only_what_test_time_settings_and_code_edits_affect_reruns(project)


def first_repro_is_complete_and_a_second_changes_nothing(project: Path, first: dict) -> None:
    assert all(0.0 <= first[key] <= 1.0 for key in ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR"))
    assert "AP" in first["baseline_mean_pose"]
    assert list((project / "reports/figures").glob("*.jpg"))
    package = project / "dist" / "pose_hrnet_w18_small_v1_64x64"
    assert (package / "model.pt2").is_file() and (package / "SHA256SUMS").is_file()
    assert (project / "dvclive/metrics.json").is_file()

    # a second repro is a no-op: DVC reports nothing changed and no stage rewrites its outputs
    outputs = [project / "models/model.ckpt", project / "reports/metrics.json", package / "model.pt2"]
    written = [path.stat().st_mtime_ns for path in outputs]
    # the on-demand pipelines (sweep/, detector/) have no stage until asked for: all is up to date
    assert dvc(project, "status").stdout.strip() == "Data and pipelines are up to date."
    dvc(project, "repro")
    assert [path.stat().st_mtime_ns for path in outputs] == written


def only_what_test_time_settings_and_code_edits_affect_reruns(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["evaluate"]["pose"]["flip_test"] = False
    write_params(project, params)
    assert changed_stages(project) == {"evaluate", "package"}
    dvc(project, "repro")
    # the sweep is its own pipeline: `dvc repro` never ran it, and training keys do not re-sweep
    assert not (project / "reports" / "tune").exists()

    bench = project / "hrnet" / "benchmarks" / "report.py"
    bench.write_text(bench.read_text() + "\n# edited\n")
    assert changed_stages(project) == set()
    package = project / "hrnet" / "package.py"
    package.write_text(package.read_text() + "\n# edited\n")
    assert changed_stages(project) == {"package"}
