"""One adapter per task, each with the same functions the stages call.

``synthesize(params, out_dir)``, ``prepare(params, out_dir)``, ``build_datamodule(params, prepared_dir)``,
``build_module(params, prepared_dir)``, ``MODULE`` (the LightningModule class),
``evaluate(module, params, prepared_dir, out_dir) -> metrics`` and ``package_meta(params)``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TASKS = ("pose", "segmentation", "detection")


def get_task(name: str) -> ModuleType:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return importlib.import_module(f"pipeline.tasks.{name}")
