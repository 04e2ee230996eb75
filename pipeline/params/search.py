"""The ``tune`` section: what a Ray Tune sweep searches for each task, and its budget."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from hrnet.tasks import TASKS
from pipeline.params.base import Section, per_task

TUNABLE_SECTIONS = ("model", "train", *TASKS.names())  # a task's section is named after the task


class SearchDimension(Section):
    """One searched value of the tune stage: a dotted params key and its distribution."""

    param: str = Field(description="dotted params.yaml key, e.g. pose.lr")
    distribution: Literal["loguniform", "uniform", "randint", "choice"]
    low: int | float | None = None
    high: int | float | None = Field(None, description="randint: exclusive")
    values: tuple[Any, ...] | None = Field(None, description="choice only")

    @model_validator(mode="after")
    def _bounds(self) -> SearchDimension:
        section = self.param.split(".", 1)[0]
        if section not in TUNABLE_SECTIONS or "." not in self.param or self.param == "train.epochs":
            raise ValueError(
                f"{self.param}: only keys under {', '.join(TUNABLE_SECTIONS)} can be searched "
                "(and not train.epochs: set tune.epochs)"
            )
        if self.distribution == "choice":
            if not self.values or self.low is not None or self.high is not None:
                raise ValueError(f"{self.param}: choice takes a non-empty values list and no low/high")
            return self
        if self.values is not None or self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"{self.param}: {self.distribution} takes low < high and no values")
        if self.distribution == "loguniform" and self.low <= 0:
            raise ValueError(f"{self.param}: loguniform takes low > 0")
        if self.distribution == "randint" and not (isinstance(self.low, int) and isinstance(self.high, int)):
            raise ValueError(f"{self.param}: randint takes integer low and high")
        return self


class TaskSearch(Section):
    """What a sweep varies for one task, and the metric (logged by its module) that ranks the trials."""

    metric: str
    mode: Literal["min", "max"]
    space: tuple[SearchDimension, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_params(self) -> TaskSearch:
        keys = [dim.param for dim in self.space]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"space: {', '.join(repeated)} searched twice")
        return self


def _default_search(task: Any) -> TaskSearch:
    defaults = task.search
    return TaskSearch(
        metric=defaults.metric, mode=defaults.mode, space=tuple(vars(dim) for dim in defaults.space)
    )


class SearchConfig(per_task("TaskSearches", kind=TaskSearch, default=_default_search)):  # type: ignore[misc]
    """One search per task (``tune.search.<task>``, defaulting to the task's own); the tune stage
    runs the one of ``params.task``."""

    @model_validator(mode="after")
    def _own_sections(self) -> SearchConfig:
        for task in TASKS:
            for dim in getattr(self, task).space:
                section = dim.param.split(".", 1)[0]
                if section in TASKS and section != task:
                    raise ValueError(
                        f"{task}.space: {dim.param}: a {task} sweep searches model, train and {task} keys"
                    )
        return self


class TuneConfig(Section):
    """The tune stage: a Ray Tune search over params keys, on the prepared data."""

    search: SearchConfig = SearchConfig()
    num_samples: int = Field(4, ge=1)
    epochs: int = Field(2, ge=1, description="per trial; ASHA's max_t")
    limit_train_batches: float | int | None = Field(
        4, description="per trial; null: train.limit_train_batches"
    )
    scheduler: Literal["asha", "fifo"] = "asha"
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2.0, gt=1)
    searcher: Literal["random", "optuna"] = "random"
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)
    workers_per_trial: int = Field(1, ge=1)
    max_concurrent_trials: int | None = Field(None, ge=1)
    num_cpus: int | None = Field(None, ge=1, description="local Ray only (address null)")
    address: str | None = None
    storage_path: str | None = None
    max_failures: int = Field(1, ge=-1)

    def for_task(self, task: str) -> TaskSearch:
        return getattr(self.search, task)

    @model_validator(mode="after")
    def _budget(self) -> TuneConfig:
        if self.grace_period > self.epochs:
            raise ValueError(f"grace_period {self.grace_period} exceeds epochs {self.epochs}")
        return self


OnDemand = Annotated[tuple[Literal["run"], ...], AfterValidator(lambda value: _at_most_one(value))]


def _at_most_one(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(value) > 1:
        raise ValueError(f"expected [] or [run], got {list(value)}")
    return value


class OnDemandConfig(Section):
    """The pipelines of their own (sweep/dvc.yaml, detector/dvc.yaml): each stage exists, for
    ``dvc repro``, ``dvc exp run`` and ``dvc status``, only while its list holds ``run`` (a DVC
    ``foreach`` over the list), so a new checkout's ``dvc status`` lists only the main pipeline."""

    sweep: OnDemand = ()
    person_detector: OnDemand = ()
