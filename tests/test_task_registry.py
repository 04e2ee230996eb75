"""One registry of tasks: the schema's per-task sections, the paper heads and the data sources all
come from it, and reading it imports no torch."""

import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import yaml
from conftest import imported_modules, project_env, tiny_project

from hrnet.registry import Registry, RegistryError
from hrnet.tasks import TASKS, Task
from pipeline.common import run_stage
from pipeline.params import EvaluateConfig, Params
from pipeline.params.data import REAL_SOURCES, SyntheticConfig
from pipeline.params.schema import PAPER_HEADS
from pipeline.params.search import SearchConfig

ROOT = Path(__file__).resolve().parents[1]


def test_every_registered_task_fills_in_the_contract():
    assert TASKS.names() == ("pose", "segmentation", "detection")
    for name, task in TASKS.items():
        assert isinstance(task, Task) and task.name == name
        assert issubclass(task.module_class(), pl.LightningModule)
        for method in ("generate_synthetic", "prepare", "build_module", "build_datamodule", "evaluate",
                       "package_meta", "check_inputs", "run_name"):  # fmt: skip
            assert getattr(type(task), method) is not getattr(Task, method), f"{name} lacks {method}"


def test_every_per_task_part_of_the_schema_covers_exactly_the_tasks():
    names = set(TASKS)
    assert set(PAPER_HEADS) == set(REAL_SOURCES) == names
    assert set(SyntheticConfig.model_fields) - {"layout"} == set(SearchConfig.model_fields) == names
    assert names <= set(Params.model_fields) and names <= set(EvaluateConfig.model_fields)
    for name, task in TASKS.items():
        assert Params.model_fields[name].annotation is task.config
        assert EvaluateConfig.model_fields[name].annotation is task.test_config
        assert PAPER_HEADS[name] == task.default_head


def test_reading_the_registry_and_the_schema_imports_no_torch():
    code = "import sys, pipeline.params, hrnet.tasks\nfor n in hrnet.tasks.TASKS: hrnet.tasks.TASKS.get(n)\n"
    code += "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_registry_names_the_unknown_entry_and_the_valid_ones():
    registry: Registry[int] = Registry("widget")
    registry.register("one", 1)
    registry.register("json_dumps", "json:dumps")  # lazy: imported on first get
    assert registry.names() == ("one", "json_dumps") and registry.get("one") == 1
    assert registry.get("json_dumps")([1]) == "[1]"
    with pytest.raises(RegistryError, match=r"^unknown widget 'two'; valid: one, json_dumps$"):
        registry.get("two")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("one", 2)


def test_an_unknown_task_is_one_line_naming_task_and_the_valid_tasks(tmp_path, capsys):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["task"] = "keypoints"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(SystemExit) as info:
        run_stage(lambda params: pytest.fail(f"a stage ran with task {params.task!r}"), path)
    error = capsys.readouterr().err
    assert info.value.code == 2
    assert error.startswith(f"error: {path}: task: ") and error.count("\n") == 1, error
    assert "'keypoints'" in error and all(f"'{name}'" in error for name in TASKS), error


def test_heads_and_detectors_come_from_their_registries():
    from hrnet.models.registries import DETECTORS, NECKS
    from pipeline.params import ConfigError, parse_params

    assert NECKS.names() == ("v1", "v2", "v2p") and DETECTORS.names() == (
        "faster_rcnn",
        "fcos",
        "cascade_rcnn",
        "centernet",
        "mask_rcnn",
        "cascade_mask_rcnn",
        "htc",
    )
    for head in NECKS:
        assert parse_params({"model": {"head": head}}).model.head == head
        assert callable(NECKS.get(head).from_options)
    for name in DETECTORS:
        assert parse_params({"task": "detection", "detection": {"detector": name}}).detection.detector == name
    with pytest.raises(
        ConfigError,
        match=r"detection.detector: expected one of \['faster_rcnn', 'fcos', 'cascade_rcnn', 'centernet', "
        r"'mask_rcnn', 'cascade_mask_rcnn', 'htc'\]",
    ):
        parse_params({"detection": {"detector": "yolo"}})


def test_every_task_reads_registered_layouts_and_data_source_takes_them():
    from hrnet.data.layouts import LAYOUTS
    from pipeline.params import parse_params

    assert LAYOUTS.names() == ("coco", "cityscapes", "pascal_context", "lip", "folder")
    for name, task in TASKS.items():
        assert set(task.sources) <= set(LAYOUTS.names()), name
        for source in task.sources:
            assert LAYOUTS.get(source).name == source
            parse_params({"task": name, "data": {"source": source, "root": "/data"}})


@pytest.mark.parametrize("task", ["pose", "segmentation", "detection"])
def test_the_synthesize_and_prepare_stages_run_without_torch_or_lightning(task, tmp_path):
    """The two data stages, run as DVC runs them, list what they import (``-X importtime``): they need
    neither torch nor Lightning, whose import alone takes seconds per stage process."""
    project = tiny_project(tmp_path / "project", task=task)
    for stage in ("synthesize", "prepare"):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", f"pipeline.{stage}"],
            cwd=project, env=project_env(), capture_output=True, text=True,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        imported = imported_modules(out.stderr)
        assert "hrnet.data" in imported  # the listing is there to read
        assert not {m.split(".")[0] for m in imported} & {"torch", "lightning", "pytorch_lightning"}, stage
    assert (project / "data/prepared").is_dir()
