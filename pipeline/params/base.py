"""What every params section shares: the error a bad params file raises, and the section base."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from hrnet.errors import UserError


class ConfigError(UserError, ValueError):
    """A params file that does not match the schema; the message is one line."""


class Section(BaseModel):
    """A params.yaml mapping: unknown keys are refused, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def per_task(
    model_name: str,
    attribute: str | None = None,
    *,
    kind: type | None = None,
    default: Callable[[Any], Any] | None = None,
) -> type[Section]:
    """A section with one field per registered task (``hrnet.tasks.TASKS``): typed by the task's
    config class ``attribute`` (or ``kind``) and defaulting to its defaults (or to ``default(task)``).
    The schema names no task itself, so a task installed as a plugin gets its sections too."""
    from hrnet.tasks import TASKS

    fields: dict[str, Any] = {}
    for name, task in TASKS.items():
        field_type = kind or getattr(task, str(attribute))
        fields[name] = (field_type, default(task) if default else field_type())
    return create_model(model_name, __base__=Section, **fields)
