import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]


def _share_cores_between_workers() -> None:
    """Each pytest-xdist worker, and every stage process it starts (they inherit the environment),
    gets its share of the cores as torch/OpenMP threads. Left at the default, each of two workers on
    two cores runs two spinning OpenMP threads: measured, one training run then took 385 s instead of
    9.5 s alone. Only speed and float rounding depend on it; runs that a test compares bit for bit
    are made in the same environment. Users running one process keep torch's default. Set before
    anything imports torch."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // workers))


_share_cores_between_workers()


# Modules whose tests run one after another in one worker: each starts local Rays (one at a time) and
# builds its Ray sweep or cluster once. pytest-xdist's own `xdist_group` mark does nothing under
# pytest 9 (the group is appended to a nodeid attribute pytest no longer reads: seen spreading
# test_tune over three workers, its sweep built three times), so the scheduler below groups them.
SHARED_WORKER_MODULES = ("tests/test_tune.py", "tests/test_ray_cluster.py")


# A module-scoped (or session-scoped) fixture is built once per worker that runs one of its module's tests:
# measured, test_mask_package's trained Mask R-CNN was built on three workers, test_package_precision's
# packages on three. Such a module is one unit of the scheduler below, so its fixtures are built once.
_SHARED_FIXTURE = re.compile(r"""@pytest\.fixture\(scope="(?:module|session)"\)""")
_IMPORTED_TEST_MODULE = re.compile(r"^from (test_\w+) import", re.MULTILINE)


@functools.cache
def shares_fixtures(module: str) -> bool:
    """Whether the test module ``module`` (a path relative to the project, as in a nodeid) defines or
    imports from another test module a fixture that outlives one test."""
    text = (ROOT / module).read_text()
    imported = (f"tests/{name}.py" for name in _IMPORTED_TEST_MODULE.findall(text))
    return bool(_SHARED_FIXTURE.search(text)) or any(shares_fixtures(other) for other in imported)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Like ``--dist load`` (one test a unit, in the collection order above), except that the tests
    of :data:`SHARED_WORKER_MODULES` are one unit, and each module sharing fixtures between its tests
    (:func:`shares_fixtures`) is one unit, each sent to one worker."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedWorkerScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            if module.startswith(SHARED_WORKER_MODULES):
                return "ray"
            return module if shares_fixtures(module) else nodeid

    return SharedWorkerScheduling(config, log)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per core plus one. The end-to-end tests spend part of their time
    waiting (stage processes starting, DVC, Ray), and measured on 2 cores two workers kept them
    busy 154% of the time; the extra worker fills that wait. ``--maxprocesses`` still caps it."""
    return len(os.sched_getaffinity(0)) + 1


# Small enough for a CPU test, large enough that every stage does real work.
TINY_OVERRIDES = {
    "data": {
        "synthetic": {
            "pose": {"num_train_images": 6, "num_val_images": 3, "image_size": [128, 128]},
            "segmentation": {"num_train_images": 4, "num_val_images": 2, "image_size": [128, 64]},
            "detection": {"num_train_images": 6, "num_val_images": 3, "image_size": [96, 96]},
        },
    },
    "train": {"epochs": 1, "num_workers": 0},
    "pose": {"input_size": [64, 64], "batch_size": 4, "lr_milestones": [1], "eval_batch_size": 8},
    "segmentation": {"crop_size": [64, 64], "base_size": 128, "batch_size": 2, "eval_batch_size": 2},
    "detection": {"min_size": 96, "max_size": 96, "batch_size": 2, "eval_batch_size": 2, "warmup_steps": 1},
    "evaluate": {"num_figures": 2},
    "tune": {"num_samples": 2, "epochs": 1, "limit_train_batches": 1, "grace_period": 1},
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest modules first: those with slow tests, the ones with raised timeouts leading. Under
    pytest-xdist the minutes-long end-to-end runs then start early and the many short tests fill the
    workers at the end, instead of one long test finishing alone. A module's tests stay together and
    in order, so that its module-scoped fixtures are built once."""

    def cost(item: pytest.Item) -> tuple[bool, float]:
        timeout = item.get_closest_marker("timeout")
        return item.get_closest_marker("slow") is None, -float(timeout.args[0] if timeout else 0)

    modules: dict[str, tuple[bool, float]] = {}
    for item in items:
        name = item.nodeid.split("::")[0]
        modules[name] = min(modules.get(name, (True, 0.0)), cost(item))
    items.sort(key=lambda item: modules[item.nodeid.split("::")[0]])  # stable: order kept within


def deep_update(base: dict, overrides: dict) -> dict:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def tiny_params(**extra) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    deep_update(params, TINY_OVERRIDES)
    return deep_update(params, extra)


def project_env() -> dict[str, str]:
    """Environment in which stage commands' ``python`` is this interpreter."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GIT_AUTHOR_NAME", "test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@localhost")
    env.setdefault("GIT_COMMITTER_NAME", "test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@localhost")
    env["DVC_NO_ANALYTICS"] = "1"
    return env


# What a local `dvc repro` leaves in the checkout that git does not ignore: never copied into a test project
RUN_OUTPUTS = ("reports/", "dvclive/")


def copy_project(dest: Path) -> Path:
    """A fresh git repository holding the project's tracked and non-ignored files (not run outputs)."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not name.startswith(RUN_OUTPUTS):
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    env = project_env()
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(command, cwd=dest, check=True, env=env)
    return dest


@pytest.fixture(scope="session")
def ray_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's home of every local Ray this test process starts (tests/tune_helpers.users_home).
    One for all: Ray's token loader keeps the token it first read for the process's life, so a Ray
    started under a second home gets no token file there and its GCS server dies at start
    ("Token authentication is enabled but Ray couldn't find an authentication token")."""
    return tmp_path_factory.mktemp("ray_home")


@pytest.fixture
def project(tmp_path) -> Path:
    return copy_project(tmp_path / "project")


def imported_modules(importtime_stderr: str) -> set[str]:
    """The modules a ``python -X importtime`` process imported, from its stderr."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in importtime_stderr.splitlines()
        if line.startswith("import time:") and not line.endswith("| imported package")
    }


def stage(project: Path, name: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Runs ``python -m pipeline.<name>`` in ``project`` as DVC would; a failure shows its output."""
    result = subprocess.run(
        [sys.executable, "-m", f"pipeline.{name}"],
        cwd=project, env=project_env(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


# Where prepared templates live: one folder for the whole test run, shared by the xdist workers
# (set by the session fixture below; None outside pytest, e.g. when a helper is imported by hand)
_TEMPLATES: Path | None = None


@pytest.fixture(scope="session", autouse=True)
def _prepared_templates(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> None:
    """Under pytest-xdist each worker has its own basetemp (``pytest-N/popen-gwK``); their parent
    ``pytest-N`` belongs to this test run only, so the workers share templates there. In one process
    the basetemp itself is this run's."""
    global _TEMPLATES
    base = tmp_path_factory.getbasetemp()
    _TEMPLATES = (base if worker_id == "master" else base.parent) / "prepared-templates"
    _TEMPLATES.mkdir(exist_ok=True)


def template_folder(kind: str, inputs: str) -> Path:
    """The folder, shared by this test run's workers, of a ``kind`` of template built from ``inputs``
    (lock it with ``FileLock(f"{folder}.lock")`` while building)."""
    assert _TEMPLATES is not None, "templates need the session fixture of tests/conftest.py"
    return _TEMPLATES / f"{kind}-{hashlib.sha256(inputs.encode()).hexdigest()[:16]}"


def _prepared_template(params: dict) -> Path:
    """A project in which synthesize and prepare have run (as their own processes, as DVC runs them)
    on ``params``; built once per test run for each set of the params those two stages read (seed,
    task, data, pose.flip_pairs, pose.oks_sigmas: their params in dvc.yaml) and reused by every test
    asking for the same."""
    keypoint_set = {key: params["pose"].get(key) for key in ("flip_pairs", "oks_sigmas")}
    inputs = json.dumps({key: params[key] for key in ("seed", "task", "data")} | keypoint_set, sort_keys=True)
    template = template_folder("prepared", inputs)
    with FileLock(f"{template}.lock"):
        if not (template / ".prepared").exists():
            shutil.rmtree(template, ignore_errors=True)  # a build that failed half way
            project = copy_project(template)
            (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            stage(project, "synthesize")
            stage(project, "prepare")
            (template / ".prepared").write_text(inputs)
    return template


def tiny_project(root: Path, *, commit: bool = False, prepared: bool = False, **overrides) -> Path:
    """A project copy (:func:`copy_project`) whose params.yaml is :func:`tiny_params` with
    ``overrides``; with ``commit`` that params.yaml is committed, with ``prepared`` the synthesize and
    prepare stages have run in it: it is a copy of the test run's template for those data params."""
    params = tiny_params(**overrides)
    if prepared:
        shutil.copytree(
            _prepared_template(params), root, symlinks=True, ignore=shutil.ignore_patterns(".prepared")
        )
        project = root
    else:
        project = copy_project(root)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if commit:
        subprocess.run(["git", "commit", "-qam", "tiny params"], cwd=project, check=True, env=project_env())
    return project


def trained_template(raw: dict) -> Path:
    """A project folder in which synthesize, prepare and train have run, in this process, on the params
    ``raw`` (a dict; its params.yaml); built once per test run for each ``raw`` and shared by the xdist
    workers: a learning test and the tests that start from its weights (tests/detection_helpers.py)
    train once. Copy it (:func:`copy_trained`) before running later stages."""
    from pipeline.params import parse_params
    from pipeline.prepare import prepare
    from pipeline.synthesize import synthesize
    from pipeline.train import train

    text = json.dumps(raw, sort_keys=True)
    folder = template_folder("trained", text)
    with FileLock(f"{folder}.lock"):
        if not (folder / ".trained").exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed half way
            folder.mkdir(parents=True)
            (folder / "params.yaml").write_text(text)
            params = parse_params(raw)
            with contextlib.chdir(folder):  # the stages read and write relative to the project
                synthesize(params)
                prepare(params)
                train(params)
            (folder / ".trained").touch()
    return folder


def copy_trained(template: Path, dest: Path) -> None:
    """The run outputs of a :func:`trained_template` (data, models, dvclive, params.yaml) into ``dest``."""
    for name in ("data", "models", "dvclive"):
        shutil.copytree(template / name, dest / name, symlinks=True)
    shutil.copy2(template / "params.yaml", dest / "params.yaml")
