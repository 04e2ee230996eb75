"""Training options in params.yaml do what they say, through the train stage's setup_fit and build_trainer.

Trainer options (bf16-mixed on CPU, accumulate_grad_batches, gradient_clip_val, compile), the
optimizers, the detection torchvision preset, model.pretrained for every task, and run-to-run
determinism on the weights for every task. All on the tiny synthetic data of one prepare run.
"""

import contextlib
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import tiny_params

from hrnet.models import create_backbone
from hrnet.tasks import TASKS
from pipeline.common.fitting import build_trainer, setup_fit
from pipeline.params import parse_params
from pipeline.prepare import prepare
from pipeline.synthesize import synthesize
from pipeline.train import run_identity

torch.set_num_threads(1)

QUIET = {"enable_progress_bar": False, "logger": False, "num_sanity_val_steps": 0}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> dict[str, Path]:
    """data/prepared of each task, tiny."""
    out = {}
    for task in ("pose", "segmentation", "detection"):
        root = tmp_path_factory.mktemp(task)
        with contextlib.chdir(root):
            params = parse_params(tiny_params(task=task))
            synthesize(params)
            prepare(params)
        out[task] = root / "data" / "prepared"
    return out


def params_for(task: str, **overrides):
    return parse_params(json.loads(json.dumps(tiny_params(task=task, **overrides))))


class Probe(pl.Callback):
    """Records the forward dtype, gradient norms before/after clipping, and optimizer steps."""

    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()
        self.before_clip: list[float] = []
        self.after_clip: list[float] = []

    def on_train_start(self, trainer, module) -> None:
        module.model.register_forward_hook(lambda _m, _i, out: self.dtypes.add(out.dtype))

    @staticmethod
    def _norm(module) -> float:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self.before_clip.append(self._norm(module))  # Lightning clips after this hook

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches == 0:
            self.after_clip.append(self._norm(module))  # the gradients the optimizer stepped with


@pytest.mark.slow
def test_bf16_accumulation_and_clipping(prepared):
    params = params_for(
        "pose", train={"precision": "bf16-mixed", "accumulate_grad_batches": 2, "gradient_clip_val": 0.05}
    )
    datamodule, module = setup_fit(params, prepared["pose"])
    probe = Probe()
    trainer = build_trainer(params, callbacks=[probe], limit_val_batches=0, **QUIET)
    trainer.fit(module, datamodule=datamodule)
    batches = len(datamodule.train_dataloader())
    assert batches >= 2 and trainer.global_step == batches // 2  # one optimizer step per 2 batches
    assert probe.dtypes == {torch.bfloat16}  # the network ran under bf16 autocast
    assert len(probe.after_clip) == trainer.global_step
    assert max(probe.before_clip) > 0.05 and max(probe.after_clip) <= 0.05 * 1.001


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_compile_trains_through_the_stage(prepared):
    """Dynamo captures the network's forward and AOTAutograd its backward through the stage's fit.
    The aot_eager backend traces exactly as inductor does and skips only the kernel generation, which
    is torch's (cold, inductor's CPU codegen alone took 110 CPU-seconds of the suite for this step)."""
    train = {"compile": True, "compile_backend": "aot_eager", "limit_train_batches": 1}
    params = params_for("pose", train=train)
    datamodule, module = setup_fit(params, prepared["pose"])
    assert isinstance(module, torch._dynamo.eval_frame.OptimizedModule)
    before = {k: v.detach().clone() for k, v in module.named_parameters()}
    counters = torch._dynamo.utils.counters
    counters.clear()
    build_trainer(params, limit_val_batches=0, **QUIET).fit(module, datamodule=datamodule)
    assert counters["stats"]["unique_graphs"] > 0  # dynamo compiled the forward
    assert counters["aot_autograd"]["total"] > 0  # with the backend the params chose
    assert not counters["inductor"]
    assert any(not torch.equal(v, before[k]) for k, v in module.named_parameters())


def one_step(params, prepared_dir: Path):
    datamodule, module = setup_fit(params, prepared_dir)
    trainer = build_trainer(params, max_steps=1, limit_val_batches=0, **QUIET)
    before = {k: v.detach().clone() for k, v in module.named_parameters()}
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 1
    assert any(not torch.equal(v, before[k]) for k, v in module.named_parameters())
    return trainer.optimizers[0]


@pytest.mark.slow
def test_pose_optimizers_and_the_detection_torchvision_preset(prepared):
    sgd = one_step(params_for("pose", pose={"optimizer": "sgd", "momentum": 0.8}), prepared["pose"])
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0.8
    adamw = one_step(params_for("pose", pose={"optimizer": "adamw", "weight_decay": 0.01}), prepared["pose"])
    assert type(adamw) is torch.optim.AdamW and adamw.defaults["weight_decay"] == 0.01

    det = params_for("detection", detection={"preset": "torchvision", "optimizer": "sgd"})
    datamodule, module = setup_fit(det, prepared["detection"])
    assert module.model.rpn._post_nms_top_n["testing"] == 1000  # torchvision's default, not the small preset
    assert type(one_step(det, prepared["detection"])) is torch.optim.SGD


@pytest.mark.parametrize("task", ["pose", "segmentation", "detection"])
def test_model_pretrained_in_params_loads_the_backbone(prepared, task, tmp_path):
    torch.manual_seed(123)  # not the run's seed: these weights cannot come from its initialisation
    weights = create_backbone("hrnet_w18_small").state_dict()
    path = tmp_path / "backbone.pth"
    torch.save(weights, path)
    plain = TASKS[task].build_module(params_for(task), prepared[task]).model.state_dict()
    loaded = TASKS[task].build_module(params_for(task, model={"pretrained": str(path)}), prepared[task])
    state = loaded.model.state_dict()
    checked = 0
    for key, tensor in weights.items():
        if not key.startswith("backbone.") or "conv" not in key:  # the trunk every head shares
            continue
        (match,) = [k for k in state if k == key or k.endswith(f".{key}")]
        assert torch.equal(state[match], tensor), match
        assert not torch.equal(plain[match], tensor)
        checked += 1
    assert checked >= 40  # every conv of the w18-small trunk


def fit_weights(params, prepared_dir: Path) -> dict[str, torch.Tensor]:
    datamodule, module = setup_fit(params, prepared_dir)
    build_trainer(params, limit_val_batches=0, **QUIET).fit(module, datamodule=datamodule)
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("task", ["pose", "segmentation", "detection"])
def test_same_params_same_weights(prepared, task):
    params = params_for(task, train={"limit_train_batches": 2})
    first, second = fit_weights(params, prepared[task]), fit_weights(params, prepared[task])
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert params.seed == 42
    other = fit_weights(params.model_copy(update={"seed": 7}), prepared[task])
    assert any(not torch.equal(first[k], other[k]) for k in first)  # the seed matters: a real check


class ValidatedEpochs(pl.Callback):
    def __init__(self) -> None:
        self.epochs: list[int] = []

    def on_validation_epoch_end(self, trainer, module) -> None:
        if not trainer.sanity_checking:
            self.epochs.append(trainer.current_epoch)


@pytest.mark.slow
def test_validating_less_often_keeps_the_weights_and_still_validates_the_last_epoch(prepared):
    """train.check_val_every_n_epoch: fewer validations, the same training (and the same resumable run)."""
    runs = {}
    for every in (1, 3):
        params = params_for(
            "detection", train={"epochs": 3, "limit_train_batches": 1, "check_val_every_n_epoch": every}
        )
        datamodule, module = setup_fit(params, prepared["detection"])
        seen = ValidatedEpochs()
        build_trainer(params, callbacks=[seen], **QUIET).fit(module, datamodule=datamodule)
        runs[every] = (seen.epochs, module.state_dict(), run_identity(params))
    assert runs[1][0] == [0, 1, 2] and runs[3][0] == [2]
    assert all(torch.equal(runs[1][1][k], runs[3][1][k]) for k in runs[1][1])
    assert runs[1][2] == runs[3][2]
