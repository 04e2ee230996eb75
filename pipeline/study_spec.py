"""A study file (``studies/<name>.yaml``): variants of params.yaml, seeds, and the paper's figures.

A study is data: each variant is a set of ``dvc exp run -S`` overrides on top of the study's shared ones,
run once per seed; the paper's number (or finding) is kept beside each variant so the report can put the
two side by side. Loading checks every override against the params schema, so a misspelt key or a bad
value is refused before anything is queued.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from hrnet.errors import InputError, UserError
from hrnet.io import read_yaml
from pipeline.params import parse_params

SLUG = re.compile(r"^[a-z0-9][a-z0-9_]*$")
# A variant's paper entry: a number (same scale as the paper's table) or a finding in words.
PaperValue = float | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError(f"{value!r} is not a slug (lower-case letters, digits, _)")
    return value


Slug = Annotated[str, AfterValidator(_slug)]


class Variant(_Strict):
    name: Slug = Field(description="short slug, part of each experiment's name")
    label: str | None = Field(None, description="as the report writes it; default: name")
    set: dict[str, Any] = Field(default_factory=dict, description="-S overrides of this variant")
    metrics: list[str] | None = Field(None, description="keys of reports/metrics.json; default: the study's")
    paper: dict[str, PaperValue] = Field(default_factory=dict, description="metric -> the paper's figure")
    group: Slug | None = Field(None, description="the report ranks a group's variants among themselves only")


class Study(_Strict):
    name: Slug
    title: str
    description: str = ""
    paper_source: str = Field(description="where the paper's figures come from (paper, table/figure)")
    metrics: list[str] = Field(min_length=1, description="keys of reports/metrics.json, dotted for nested")
    set: dict[str, Any] = Field(default_factory=dict, description="-S overrides shared by every variant")
    seeds: list[int] = Field(min_length=2, description="params.yaml `seed` of each repetition (>= 2)")
    targets: list[str] = Field(default_factory=lambda: ["evaluate"], description="stages dvc exp run runs")
    variants: list[Variant] = Field(min_length=2)
    _base: dict[str, Any] = PrivateAttr(default_factory=dict)  # params.yaml the overrides apply to

    @model_validator(mode="after")
    def _distinct(self) -> Study:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variants: names repeat: {names}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: values repeat: {self.seeds}")
        for variant in self.variants:
            if "seed" in variant.set or "seed" in self.set:
                raise ValueError("seed is set by `seeds`, not by `set`")
        return self

    def metrics_of(self, variant: Variant) -> list[str]:
        return variant.metrics or self.metrics


@dataclass(frozen=True)
class Run:
    """One experiment of a study: a variant at one seed."""

    study: str
    variant: Variant
    seed: int
    overrides: dict[str, Any]
    params: dict[str, Any]  # the whole params.yaml this run trains with

    @property
    def name(self) -> str:
        """Unique per overrides: editing a variant's values makes new experiments, never reuses old ones."""
        digest = hashlib.sha1(json.dumps(self.overrides, sort_keys=True).encode()).hexdigest()[:6]
        return f"{self.study}-{self.variant.name}-s{self.seed}-{digest}".replace("_", "-")

    def set_args(self) -> list[str]:
        """``-S key=value`` arguments (values in YAML flow style, which DVC's override parser reads)."""
        args = []
        for key, value in self.overrides.items():
            text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
            args += ["-S", f"{key}={text}"]
        return args


def runs(study: Study) -> list[Run]:
    """Every (variant, seed) of the study, variant by variant."""
    found = []
    for variant in study.variants:
        for seed in study.seeds:
            overrides = {**study.set, **variant.set, "seed": seed}
            found.append(Run(study.name, variant, seed, overrides, apply_overrides(study._base, overrides)))
    return found


def load_study(path: str | Path, params_file: str | Path = "params.yaml") -> Study:
    """Reads and checks a study file; every run's params must pass the params.yaml schema."""
    path = Path(path)
    raw = read_yaml(path, "study file not found (expected studies/<name>.yaml)", InputError)
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping with name, title, metrics, seeds, variants")
    try:
        study = Study.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        raise InputError(f"{path}: {where}: {error['msg']}") from None
    if study.name != path.stem:
        raise InputError(f"{path}: name: {study.name!r} must equal the file's stem {path.stem!r}")
    study._base = yaml.safe_load(Path(params_file).read_text())
    for variant in study.variants:
        overrides = {**study.set, **variant.set, "seed": study.seeds[0]}
        check_params(study._base, overrides, f"{path}: variant {variant.name}")
    return study


def apply_overrides(base: dict, overrides: dict[str, Any], where: str = "overrides") -> dict[str, Any]:
    """params.yaml's values with dotted ``-S`` overrides applied; unknown keys refused in one line."""
    params = copy.deepcopy(base)
    for key, value in overrides.items():
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise InputError(f"{where}: {key}: params.yaml has no section {part!r}")
            node = node[part]
        if leaf not in node:
            raise InputError(f"{where}: {key}: params.yaml has no such key")
        node[leaf] = value
    return params


def check_params(base: dict, overrides: dict[str, Any], where: str) -> None:
    """The overridden params pass the params.yaml schema (types, choices, cross-field rules)."""
    try:
        parse_params(apply_overrides(base, overrides, where), where)
    except UserError as exc:
        raise InputError(str(exc)) from None
