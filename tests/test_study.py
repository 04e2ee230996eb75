"""Studies: the shipped study files, their runs' names and overrides, and the report beside the paper."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import copy_project, project_env, tiny_params

from hrnet.errors import UserError
from pipeline.study import only_variants, progress_line, states
from pipeline.study_report import DONE, FAILED, MISSING, Experiment, collect, ordering, write_report
from pipeline.study_spec import load_study, runs

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))
SHIPPED = {
    "fusion_units",
    "fusion_downsample",
    "fusion_op",
    "streams",
    "pose_resolution",
    "heads",
    "detectors",
}


def test_every_shipped_study_loads_and_its_overrides_pass_the_params_schema():
    assert {path.stem for path in STUDIES} == SHIPPED
    for path in STUDIES:
        study = load_study(path, ROOT / "params.yaml")
        assert len(study.seeds) >= 2
        names = [run.name for run in runs(study)]
        assert len(names) == len(set(names)) == len(study.variants) * len(study.seeds)


def test_heads_study_reports_ap_s_for_detection():
    study = load_study(ROOT / "studies/heads.yaml", ROOT / "params.yaml")
    detection = [v for v in study.variants if v.set.get("task") == "detection"]
    assert {v.set["model.head"] for v in detection} == {"v1", "v2", "v2p"}
    assert all("AP_S" in study.metrics_of(v) for v in detection)


def test_detectors_study_runs_every_framework_on_v2p_and_a_resnet_fpn_beside_the_paper():
    from hrnet.models.registries import DETECTORS

    study = load_study(ROOT / "studies/detectors.yaml", ROOT / "params.yaml")
    pairs: dict[str, set[str]] = {}
    for run in runs(study):
        assert run.params["task"] == "detection" and run.params["model"]["head"] is None  # null: V2p
        pairs.setdefault(run.params["detection"]["detector"], set()).add(run.params["model"]["name"])
    # every registered framework (cascade_mask_rcnn and htc too, once registered), on both backbones
    assert pairs == {name: {"hrnet_w18_small", "resnet18"} for name in DETECTORS.names()}
    assert study.metrics == ["AP", "AP_S"] and study.seeds == [42, 1]
    for variant in study.variants:
        assert variant.group == variant.set["detection.detector"]  # the report pairs a framework's backbones
        if variant.set["detection.detector"] != "centernet":  # the paper has no W18 / ResNet CenterNet
            assert 20 < variant.paper["AP_S"] < variant.paper["AP"] < 45, variant.name  # COCO val, x100


def write_study(tmp_path: Path, **changes) -> Path:
    spec = {
        "name": "tiny",
        "title": "Tiny",
        "paper_source": "a table",
        "metrics": ["AP"],
        "set": {"train.epochs": 1},
        "seeds": [1, 2],
        "variants": [
            {"name": "a", "set": {"model.fusion": "full"}, "paper": {"AP": 73.4}},
            {"name": "b", "set": {"model.fusion": "final"}, "paper": {"AP": 70.8}},
        ],
    }
    spec.update(changes)
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_run_names_change_with_the_overrides_so_stale_results_are_never_reused(tmp_path):
    first = runs(load_study(write_study(tmp_path), ROOT / "params.yaml"))
    again = runs(load_study(write_study(tmp_path), ROOT / "params.yaml"))
    changed = runs(load_study(write_study(tmp_path, set={"train.epochs": 2}), ROOT / "params.yaml"))
    assert [r.name for r in first] == [r.name for r in again]
    assert not {r.name for r in first} & {r.name for r in changed}
    assert first[0].name.startswith("tiny-a-s1-")
    assert first[0].set_args() == ["-S", "train.epochs=1", "-S", "model.fusion=full", "-S", "seed=1"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"seeds": [1]}, "seeds"),
        ({"variants": [{"name": "a"}, {"name": "a"}]}, "names repeat"),
        ({"set": {"model.fusoin": "full"}}, "model.fusoin"),
        ({"set": {"model.fusion_op": "sometimes"}}, "model.fusion_op"),
        ({"set": {"modell.fusion": "full"}}, "modell"),
        ({"set": {"seed": 3}}, "seed is set by `seeds`"),
        ({"variants": [{"name": "Bad Name"}, {"name": "b"}]}, "slug"),
        ({"name": "other"}, "stem"),
    ],
)
def test_bad_study_files_are_refused_in_one_line_naming_the_field(tmp_path, changes, expected):
    path = write_study(tmp_path, **changes)
    if changes.get("name") == "other":
        path = path.rename(tmp_path / "tiny.yaml")
    with pytest.raises(UserError) as info:
        load_study(path, ROOT / "params.yaml")
    message = str(info.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_states_count_done_failed_and_missing_runs(tmp_path):
    study = load_study(write_study(tmp_path), ROOT / "params.yaml")
    names = [r.name for r in runs(study)]
    found = {names[0]: Experiment(DONE, {"AP": 0.5}), names[1]: Experiment(FAILED)}
    assert list(states(study, found).values()) == [DONE, FAILED, MISSING, MISSING]
    assert progress_line(study, found) == "tiny: 1/4 done, 1 failed, 2 not run"


def test_report_gives_mean_and_std_per_variant_beside_the_paper(tmp_path):
    study = load_study(write_study(tmp_path), ROOT / "params.yaml")
    scores = [0.50, 0.54, 0.60, 0.62]  # a: seeds 1, 2; b: seeds 1, 2
    found = {run.name: Experiment(DONE, {"AP": s}) for run, s in zip(runs(study), scores, strict=True)}
    rows = collect(study, found)
    assert [(r.variant, r.values) for r in rows] == [("a", {1: 50.0, 2: 54.0}), ("b", {1: 60.0, 2: 62.0})]
    assert rows[0].mean == pytest.approx(52.0) and rows[0].std == pytest.approx(2.8284, abs=1e-4)
    # here b beats a, the paper has a > b: the report says the pair is out of the paper's order
    expected = "AP: paper a > b; here b > a. 0 of 1 pairs in the paper's order by the mean, 0 on every seed."
    assert ordering(rows, "AP") == expected

    md, png, js = write_report(study, found, tmp_path / "out")
    text = md.read_text()
    assert "| a | `model.fusion=full` | AP | 52.0 ± 2.8 | 50.0, 54.0 | 73.4 |" in text
    assert "| b | `model.fusion=final` | AP | 61.0 ± 1.4 | 60.0, 62.0 | 70.8 |" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(js.read_text())["rows"][1]["mean"] == pytest.approx(61.0)


def test_order_is_judged_seed_by_seed(tmp_path):
    """Seed 2's data is harder for both variants: the means overlap, yet a > b holds on each seed."""
    study = load_study(write_study(tmp_path), ROOT / "params.yaml")
    scores = [0.60, 0.40, 0.58, 0.38]  # a: 60, 40; b: 58, 38
    found = {run.name: Experiment(DONE, {"AP": s}) for run, s in zip(runs(study), scores, strict=True)}
    line = ordering(collect(study, found), "AP")
    assert line.endswith("1 of 1 pairs in the paper's order by the mean, 1 on every seed.")
    scores = [0.60, 0.40, 0.58, 0.42]  # b wins on seed 2
    found = {run.name: Experiment(DONE, {"AP": s}) for run, s in zip(runs(study), scores, strict=True)}
    assert ordering(collect(study, found), "AP").endswith("by the mean, 0 on every seed.")


def test_report_marks_rows_missing_a_seed(tmp_path):
    study = load_study(write_study(tmp_path), ROOT / "params.yaml")
    first = runs(study)[0]
    md, _, _ = write_report(study, {first.name: Experiment(DONE, {"AP": 0.5})}, tmp_path / "out")
    text = md.read_text()
    assert "| a | `model.fusion=full` | AP | 50.0 (n=1) | 50.0, – | 73.4 |" in text
    assert "Incomplete: 2 row(s)" in text


@pytest.mark.slow
def test_a_study_runs_as_queued_dvc_experiments_skips_what_ran_and_reports(tmp_path):
    """`python -m pipeline.study run` then `report`, as the README writes them, in a fresh project."""
    project = copy_project(tmp_path / "project")
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    write_study(project / "studies", set={"train.limit_train_batches": 1})
    env = project_env()
    for command in (["git", "add", "-A"], ["git", "commit", "-qm", "tiny study"]):
        subprocess.run(command, cwd=project, check=True, env=env)

    def study_cmd(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "pipeline.study", *args]
        return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=1500)

    first = study_cmd("run", "studies/tiny.yaml", "--poll", "10")  # each check is a `dvc exp show`
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert first.stdout.count("queued tiny-") == 4
    assert "tiny: 4/4 done" in first.stdout
    # progress shows while the queue runs (dvc queue start's workers must not hold the command up)
    assert re.search(r"tiny: [0-3]/4 done", first.stdout), first.stdout

    again = study_cmd("run", "studies/tiny.yaml")  # nothing to wait for: no check after the first
    assert again.returncode == 0, again.stderr[-3000:]
    assert "skipping 4 experiment(s)" in again.stdout and "queued tiny-" not in again.stdout

    report = study_cmd("report", "studies/tiny.yaml")
    assert report.returncode == 0, report.stderr[-3000:]
    rows = json.loads((project / "reports/studies/tiny.json").read_text())["rows"]
    assert [len(row["values"]) for row in rows] == [2, 2]
    assert all(0.0 <= value <= 100.0 for row in rows for value in row["values"].values())
    assert "| a | `model.fusion=full` | AP |" in (project / "reports/studies/tiny.md").read_text()
    assert (project / "reports/studies/tiny.png").stat().st_size > 0


def test_a_run_done_under_another_name_with_the_same_params_counts_as_done(tmp_path):
    """Studies share their baseline variant: one experiment serves every study that needs its params."""
    study = load_study(write_study(tmp_path), ROOT / "params.yaml")
    first = runs(study)[0]
    found = {"fusion-units-full-s1-abcdef": Experiment(DONE, {"AP": 0.5}, first.params)}
    assert states(study, found)[first.name] == DONE
    assert collect(study, found)[0].values == {1: 50.0}
    other = dict(first.params, seed=99)
    assert states(study, {"x": Experiment(DONE, {"AP": 0.5}, other)})[first.name] == MISSING


def test_report_orders_each_task_on_its_own_without_paper_numbers(tmp_path):
    """The heads study: pose AP and detection AP are different scores and are never ranked together."""
    variants = [
        {"name": "pose_v1", "set": {"task": "pose", "model.head": "v1"}},
        {"name": "pose_v2", "set": {"task": "pose", "model.head": "v2"}},
        {"name": "det_v1", "set": {"task": "detection", "model.head": "v1"}},
        {"name": "det_v2p", "set": {"task": "detection", "model.head": "v2p"}},
    ]
    study = load_study(write_study(tmp_path, set={}, variants=variants), ROOT / "params.yaml")
    scores = [0.50, 0.40, 0.55, 0.45, 0.20, 0.10, 0.30, 0.25]
    found = {run.name: Experiment(DONE, {"AP": s}) for run, s in zip(runs(study), scores, strict=True)}
    md, _, _ = write_report(study, found, tmp_path / "out")
    text = md.read_text()
    assert "- pose AP: here pose_v2 (50.0) > pose_v1 (45.0); on every seed: pose_v2 > pose_v1." in text
    assert "- detection AP: here det_v2p (27.5) > det_v1 (15.0); on every seed: det_v2p > det_v1." in text


def test_report_ranks_each_variant_group_against_the_paper_on_its_own(tmp_path):
    """The detectors study: each framework's two backbones are one group; frameworks are not ranked
    against each other (Cascade's paper AP is above Faster R-CNN's whatever the backbone)."""
    variants = [
        {"name": "a_v2p", "group": "a", "set": {"model.fusion": "full"}, "paper": {"AP": 38.0}},
        {"name": "a_r18", "group": "a", "set": {"model.fusion": "final"}, "paper": {"AP": 37.6}},
        {"name": "b_v2p", "group": "b", "set": {"model.fusion": "across_stage"}, "paper": {"AP": 41.3}},
        {
            "name": "b_r18",
            "group": "b",
            "set": {"model.fusion": "full", "model.head": "v2"},
            "paper": {"AP": 41.1},
        },
    ]
    study = load_study(write_study(tmp_path, variants=variants), ROOT / "params.yaml")
    scores = [0.30, 0.32, 0.20, 0.21, 0.10, 0.12, 0.15, 0.11]  # a: v2p > r18; b: r18 > v2p on seed 1 only
    found = {run.name: Experiment(DONE, {"AP": s}) for run, s in zip(runs(study), scores, strict=True)}
    md, _, _ = write_report(study, found, tmp_path / "out")
    text = md.read_text()
    agree = "1 of 1 pairs in the paper's order by the mean, 1 on every seed."
    assert f"- a AP: paper a_v2p > a_r18; here a_v2p > a_r18. {agree}" in text
    disagree = "0 of 1 pairs in the paper's order by the mean, 0 on every seed."
    assert f"- b AP: paper b_v2p > b_r18; here b_r18 > b_v2p. {disagree}" in text
    assert "- AP:" not in text  # no ranking across the groups
    assert {r.group for r in collect(study, found)} == {"a", "b"}


def test_run_can_be_limited_to_chosen_variants(tmp_path):
    """`run --variant b` reruns one variant after a fix; an unknown name is refused in one line."""
    study = load_study(write_study(tmp_path), ROOT / "params.yaml")
    assert [v.name for v in only_variants(study, ["b"]).variants] == ["b"]
    assert len(runs(only_variants(study, ["b"]))) == 2
    with pytest.raises(UserError, match=r"--variant c: not a variant of tiny \(expected one of a, b\)"):
        only_variants(study, ["c"])


def test_a_run_on_an_older_commit_matches_against_that_commits_params(tmp_path):
    """params.yaml gained a key since the experiment ran: the experiment still counts for the run."""
    study = load_study(write_study(tmp_path), ROOT / "params.yaml")
    first = runs(study)[0]
    old_base = {k: v for k, v in study._base.items() if k != "package"}  # that commit had no `package`
    old_params = {k: v for k, v in first.params.items() if k != "package"}
    exp = Experiment(DONE, {"AP": 0.5}, old_params, old_base)
    assert states(study, {"other-name": exp})[first.name] == DONE
    assert states(study, {"other-name": Experiment(DONE, {"AP": 0.5}, old_params)})[first.name] == MISSING


def test_a_hanging_exp_show_is_stopped_and_asked_again(tmp_path, monkeypatch):
    """`dvc exp show` racing a queued run that removes its workspace can hang for good (pygit2): the
    study's progress check stops it and asks again instead of waiting for ever."""
    import pipeline.study as study

    marker = tmp_path / "hung-once"
    fake = tmp_path / "dvc"
    fake.write_text(
        f"#!{sys.executable}\nimport pathlib, sys, time\nmarker = pathlib.Path({str(marker)!r})\n"
        "if not marker.exists():\n    marker.touch()\n    time.sleep(600)\nprint('[]')\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(study, "dvc_command", lambda: str(fake))
    monkeypatch.setattr(study, "SHOW_TIMEOUT_FLOOR_S", 2.0)
    started = time.monotonic()
    assert study.experiments() == {}
    assert marker.exists() and time.monotonic() - started < 30
