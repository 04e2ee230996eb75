"""Tasks: :data:`TASKS`, the registry of task contracts (:class:`~hrnet.tasks.base.Task`) by name.

Each task lives in a folder of its own (``hrnet/tasks/<name>/``: ``task.py`` the contract,
``config.py`` its params sections, ``module.py`` the LightningModule, ``prepare.py`` and
``stages.py`` what the pipeline stages run). A task of another installed package registers
through the ``hrnet.tasks`` entry-point group; its value names a :class:`Task` instance.
Importing this package loads no torch.
"""

from __future__ import annotations

from hrnet.registry import Registry
from hrnet.tasks.base import Task

TASKS: Registry[Task] = Registry("task", group="hrnet.tasks")
for _name in ("pose", "segmentation", "detection"):
    TASKS.register(_name, f"hrnet.tasks.{_name}.task:TASK")


def get_task(name: str) -> Task:
    """The registered task ``name`` (a one-line ``RegistryError`` listing the valid names otherwise)."""
    return TASKS.get(name)


__all__ = ["TASKS", "Task", "get_task"]
