"""Typed schema of ``params.yaml``, the pipeline's single source of settings.

Every knob that changes a result is declared here, with its default written out in ``params.yaml``
as well; the stages never read a value that is not declared. Unknown keys are refused with the
closest valid name, and invalid values with their dotted key path. One module per group of sections:
``data``, ``training`` (model, train), ``evaluate`` (evaluate, package),
``search`` (tune); ``schema`` joins them into :class:`Params` and loads the file. Each task's own
sections (``<task>``, ``evaluate.<task>``, ``data.synthetic.<task>``, ``tune.search.<task>``) are its
config classes in the library (``hrnet.tasks``), the one place their defaults live.
"""

from pipeline.params.base import ConfigError, Section
from pipeline.params.data import SYNTHETIC_ROOT, DataConfig
from pipeline.params.evaluate import EvaluateConfig, PackageConfig
from pipeline.params.schema import PAPER_HEADS, Params, load_params, parse_params
from pipeline.params.search import TaskSearch, TuneConfig
from pipeline.params.training import ModelConfig, TrainConfig

__all__ = [
    "PAPER_HEADS",
    "SYNTHETIC_ROOT",
    "ConfigError",
    "DataConfig",
    "EvaluateConfig",
    "ModelConfig",
    "PackageConfig",
    "Params",
    "Section",
    "TaskSearch",
    "TrainConfig",
    "TuneConfig",
    "load_params",
    "parse_params",
]
