"""The ``data`` section: which dataset, where, and the size of the embedded synthetic one."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from hrnet.data.layouts import LAYOUTS
from hrnet.tasks import TASKS
from pipeline.params.base import Section, per_task


class SyntheticConfig(per_task("SyntheticTasks", "synthetic_config")):  # type: ignore[misc]
    """``data.synthetic``: the layout the embedded data is written in, and per task its size
    (``data.synthetic.<task>``)."""

    layout: str | None = None  # null: the task's own layout; else one of its synthetic_layouts


# the real layouts each task reads besides its embedded synthetic data
REAL_SOURCES: dict[str, tuple[str, ...]] = {name: task.sources for name, task in TASKS.items()}
Source = Literal[("synthetic", *LAYOUTS.names())]  # the registered layouts (hrnet.data.layouts)


SYNTHETIC_ROOT = "data/synthetic"  # where the synthesize stage writes the embedded dataset


class DataConfig(Section):
    source: Source = "synthetic"  # type: ignore[valid-type]
    root: str = Field(SYNTHETIC_ROOT, min_length=1, description="the dataset folder; a DVC dependency")
    train_split: str = "train"
    val_split: str = "val"
    on_bad_sample: Literal["fail", "skip"] = "fail"
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _root_for_real_data(self) -> DataConfig:
        if self.source != "synthetic" and Path(self.root) == Path(SYNTHETIC_ROOT):
            raise ValueError(
                f"data.root: required when data.source is {self.source!r} (the folder holding the "
                f"{self.source} dataset; got {self.root!r}, where the embedded synthetic data lives)"
            )
        return self
