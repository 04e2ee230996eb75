"""The params schema is the one place a default lives: every library constructor that takes a task
setting by name defaults to the value of the task's config section (what params.yaml ships)."""

import dataclasses
import inspect

import pytest

from hrnet.tasks import TASKS


@pytest.mark.parametrize("name", list(TASKS))
def test_library_constructors_default_to_the_task_config(name):
    task = TASKS.get(name)
    defaults = {field.name: getattr(task.config(), field.name) for field in dataclasses.fields(task.config)}
    checked = 0
    for parameter in inspect.signature(task.module_class()).parameters.values():
        if parameter.name in defaults and parameter.default is not inspect.Parameter.empty:
            expected = defaults[parameter.name]
            assert parameter.default == expected, (
                f"{task.module_class().__name__}({parameter.name}={parameter.default!r}) but "
                f"params {name}.{parameter.name} defaults to {expected!r}"
            )
            checked += 1
    assert checked >= 3  # the optimiser settings at least: the comparison is not empty
