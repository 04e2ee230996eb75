"""The list of tasks is written once: the pipeline's registry, the params schema and the library agree."""

from dataclasses import fields
from pathlib import Path
from typing import get_args

import pytest
import pytorch_lightning as pl
import yaml

import hrnet.models
from pipeline.common import run_stage
from pipeline.params import EvaluateConfig, Params
from pipeline.params.data import REAL_SOURCES, SyntheticConfig
from pipeline.params.search import SearchConfig
from pipeline.params.training import PAPER_HEADS
from pipeline.tasks import TASKS, Task

ROOT = Path(__file__).resolve().parents[1]


def test_the_registry_the_schema_and_the_library_name_the_same_tasks():
    assert tuple(TASKS) == get_args(Params.model_fields["task"].annotation) == hrnet.models.TASKS
    for name, task in TASKS.items():
        assert task.name == name
        assert issubclass(task.lightning_module, pl.LightningModule)
        assert all(callable(getattr(task, field.name)) for field in fields(Task) if field.name != "name")


def test_every_per_task_part_of_the_schema_covers_exactly_the_tasks():
    assert set(PAPER_HEADS) == set(REAL_SOURCES) == set(TASKS)
    assert set(SyntheticConfig.model_fields) == set(SearchConfig.model_fields) == set(TASKS)
    assert set(TASKS) <= set(Params.model_fields) and set(TASKS) <= set(EvaluateConfig.model_fields)


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
