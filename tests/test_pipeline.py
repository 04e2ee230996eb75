"""End to end: the real DVC pipeline on a tiny synthetic dataset, as a user runs it."""

import json
import subprocess

import pytest
import yaml
from conftest import project_env, tiny_params

pytestmark = pytest.mark.slow


def dvc(project, *args, check=True):
    result = subprocess.run(
        ["dvc", *args], cwd=project, env=project_env(), capture_output=True, text=True, timeout=900
    )
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_repro_then_noop_then_experiment(project):
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    subprocess.run(["git", "commit", "-qam", "tiny"], cwd=project, check=True, env=project_env())

    dvc(project, "repro")
    metrics = json.loads((project / "reports/metrics.json").read_text())
    for key in ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR"):
        assert 0.0 <= metrics[key] <= 1.0
    assert "AP" in metrics["baseline_mean_pose"]
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

    subprocess.run(["git", "add", "-A"], cwd=project, check=True, env=project_env())
    subprocess.run(["git", "commit", "-qm", "baseline run"], cwd=project, check=True, env=project_env())
    dvc(project, "exp", "run", "-S", "train.epochs=2", "-n", "two-epochs")
    shown = json.loads(dvc(project, "exp", "show", "--json").stdout)
    names = [exp.get("name") for entry in shown for exp in (entry.get("experiments") or [])]
    assert "two-epochs" in names
