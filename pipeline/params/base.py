"""What every params section shares: the error a bad params file raises, and the section base."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from hrnet.errors import UserError


class ConfigError(UserError, ValueError):
    """A params file that does not match the schema; the message is one line."""


class Section(BaseModel):
    """A params.yaml mapping: unknown keys are refused, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)
