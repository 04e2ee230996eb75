"""The registry of tasks: :data:`TASKS` maps each task name to the :class:`~pipeline.tasks.base.Task`
its adapter module (``pipeline/tasks/<name>.py``) fills in.

Its names are the library's (``hrnet.models.TASKS``), which the params schema's ``task`` accepts;
tests/test_task_registry.py checks that the three agree.
"""

from __future__ import annotations

from pipeline.tasks import detection, pose, segmentation
from pipeline.tasks.base import Task

_ADAPTERS = {"pose": pose, "segmentation": segmentation, "detection": detection}

TASKS: dict[str, Task] = {
    name: Task(
        name=name,
        lightning_module=adapter.MODULE,
        generate_synthetic=adapter.GENERATE_SYNTHETIC,
        prepare=adapter.prepare,
        build_datamodule=adapter.build_datamodule,
        build_module=adapter.build_module,
        evaluate=adapter.evaluate,
        package_meta=adapter.package_meta,
    )
    for name, adapter in _ADAPTERS.items()
}

__all__ = ["TASKS", "Task"]
