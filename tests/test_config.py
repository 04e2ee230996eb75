import dataclasses
from pathlib import Path

import pytest
import yaml

from pipeline.params import PAPER_HEADS, ConfigError, ModelConfig, Params, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


def _default() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_shipped_params_are_valid_and_explicit():
    raw = _default()
    params = parse_params(raw)
    # The shipped file holds the schema's defaults: Params() built in code trains what `dvc repro` trains.
    assert params.model_dump() == Params().model_dump()

    # Every schema default is written out in params.yaml: no hidden knob changes a result.
    def assert_explicit(raw_section: dict, model) -> None:
        is_dataclass = dataclasses.is_dataclass(model)
        names = [f.name for f in dataclasses.fields(model)] if is_dataclass else model.model_fields
        assert set(raw_section) == set(names), type(model).__name__
        for key, value in raw_section.items():
            if isinstance(value, dict):
                assert_explicit(value, getattr(model, key))

    assert_explicit(raw, params)


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (("pose", "learning_rate"), 0.1, "unknown key 'pose.learning_rate'; did you mean 'pose.lr'?"),
        (("modle",), {}, "unknown key 'modle'; did you mean 'model'?"),
        (("pose", "lr"), -0.01, "pose.lr: Input should be greater than 0"),
        (("train", "epochs"), "many", "train.epochs: Input should be a valid integer"),
        (("model", "name"), "hrnet_w33", "model.name: expected one of"),
        (
            ("model", "head"),
            "v3",
            "model.head: expected one of ['v1', 'v2', 'v2p'] (the registered heads), got 'v3'",
        ),
        (("pose", "input_size"), [100, 128], "pose.input_size: expected [width, height] both positive"),
        (("segmentation", "crop_size"), [64, 0], "segmentation.crop_size: expected [width, height]"),
        (("data", "source"), "coco", "data.root: required when data.source is 'coco'"),
        (("data", "source"), "cityscapes", "data.root: required when data.source is 'cityscapes'"),
        (("data", "synthetic", "layout"), "lip", "data.synthetic.layout: task 'pose' cannot write"),
    ],
)
def test_bad_values_name_the_key(path, value, fragment):
    raw = _default()
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as info:
        parse_params(raw, "params.yaml")
    message = str(info.value)
    assert fragment in message
    assert message.startswith("params.yaml: ")
    assert "\n" not in message


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_the_synthetic_layout_is_one_the_task_writes():
    segmentation = {"task": "segmentation", "data": {"synthetic": {"layout": "pascal_context"}}}
    assert parse_params(segmentation).data.synthetic.layout == "pascal_context"
    segmentation["data"]["synthetic"]["layout"] = "coco"
    expected = r"expected one of \['cityscapes', 'pascal_context', 'lip', 'folder'\]"
    with pytest.raises(ConfigError, match=expected):
        parse_params(segmentation)


def test_a_null_head_is_the_papers_head_for_the_task():
    heads = {task: parse_params({"task": task, "model": {"head": None}}).model.head for task in PAPER_HEADS}
    assert heads == {"pose": "v1", "segmentation": "v2", "detection": "v2p"}
    assert parse_params({"task": "detection"}).model.head == "v2p"  # absent: the same
    assert parse_params({"task": "detection", "model": {"head": "v1"}}).model.head == "v1"  # chosen: kept
    assert Params(task="segmentation", model=ModelConfig()).model.head == "v2"  # built in code: the same


@pytest.mark.parametrize(
    ("setting", "task", "accelerator", "expected"),
    [
        (None, "pose", "cpu", True),
        (None, "detection", "cpu", True),
        (None, "pose", "gpu", "warn"),
        (None, "segmentation", "gpu", "warn"),
        (None, "detection", "gpu", False),  # torchvision's deterministic RoIAlign is compiled Python
        ("warn", "detection", "gpu", "warn"),
        (True, "detection", "gpu", True),
        (False, "pose", "cpu", False),
    ],
)
def test_deterministic_null_resolves_per_task_and_accelerator(setting, task, accelerator, expected):
    train = parse_params({"train": {"deterministic": setting, "accelerator": accelerator}}).train
    assert train.deterministic_mode(task) == expected
    assert train.deterministic_mode(task, "cpu") == (True if setting is None else setting)


def test_tune_trials_validate_every_epoch_whatever_training_does():
    """ASHA's time unit is a reported validation: a trial overrides train.check_val_every_n_epoch."""
    from pipeline.tune_trials import trial_budget

    params = parse_params({"train": {"check_val_every_n_epoch": 4}})
    assert params.train.check_val_every_n_epoch == 4
    assert trial_budget(params)["train.check_val_every_n_epoch"] == 1
    with pytest.raises(ConfigError, match="check_val_every_n_epoch"):
        parse_params({"train": {"check_val_every_n_epoch": 0}})
