"""train stage: fits the task's LightningModule on the prepared data; writes models/model.ckpt.

The same command runs on one CPU, under ``torchrun`` or SLURM: Lightning's DDP strategy picks
up the cluster environment (ranks, world size, master address) from the launcher's variables.
At the end of every epoch ``models/last.ckpt`` is written (atomically). A rerun with the same
params and code resumes it when it is unfinished (killed, or ``train.epochs`` raised since);
a finished run, another architecture or changed params or code start from scratch, saying why.
So a forced rerun (``dvc repro -f``, ``dvc exp run -f``) trains again and writes every output.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from hrnet.process import run_program
from hrnet.tasks import TASKS
from pipeline.common import CHECKPOINT, LAST_CHECKPOINT, PREPARED_DIR, RUN_KEY, TRAIN_CODE, run_stage
from pipeline.params import Params

# torch, Lightning and DVCLive are imported where they are used: a params.yaml that does not validate is
# refused (run_stage) in a fraction of a second, before the seconds those imports take

log = logging.getLogger("pipeline.train")


def _code_digest() -> str:
    """Hash of the code that training runs: the same paths the train stage's DVC deps list."""
    project = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for entry in TRAIN_CODE:
        path = project / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(project).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def run_identity(params: Params) -> dict[str, str]:
    """What a resumable checkpoint must match: the architecture, plus every training input.

    ``train.epochs`` is left out so a finished run can be extended; how often it validates,
    evaluation, packaging and tuning settings do not change the weights.
    """
    training = params.model_dump(mode="json", include={"seed", "task", "model", "train", *TASKS})
    for key in ("epochs", "check_val_every_n_epoch"):
        training["train"].pop(key)
    fingerprint = hashlib.sha256(json.dumps(training, sort_keys=True).encode() + _code_digest().encode())
    return {
        "architecture": f"{params.task}/{params.model.name}/{params.model.head}",
        "fingerprint": fingerprint.hexdigest(),
    }


def resumable_checkpoint(path: Path, identity: dict[str, str], epochs: int) -> Path | None:
    """``path`` when it is an unfinished run of ``identity`` (fewer than ``epochs`` epochs done);
    otherwise None, with the reason logged."""
    import torch
    from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

    if not path.is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        recorded = checkpoint[RUN_KEY]
    except Exception as exc:  # a truncated or foreign file: report it, never load it
        rank_zero_warn(
            f"{path}: unreadable or foreign checkpoint ({type(exc).__name__}: {exc}); training from scratch"
        )
        return None
    if recorded.get("architecture") != identity["architecture"]:
        rank_zero_warn(
            f"refusing to resume from {path}: it holds {recorded.get('architecture')} but params ask for "
            f"{identity['architecture']}; training from scratch"
        )
        return None
    if recorded.get("fingerprint") != identity["fingerprint"]:
        rank_zero_info(f"not resuming from {path}: params or code changed since it was written")
        return None
    done = recorded.get("epochs_done")
    if not isinstance(done, int) or done >= epochs:
        rank_zero_info(
            f"not resuming from {path}: that run finished ({done} of {epochs} epochs done); training again"
        )
        return None
    rank_zero_info(f"resuming from {path} ({done} of {epochs} epochs done)")
    return path


def train(params: Params) -> None:
    from pytorch_lightning.utilities import rank_zero_info

    from pipeline.common.fitting import EpochCheckpoint, build_trainer, save_atomically, setup_fit
    from pipeline.common.live_logger import LiveLogger

    rank_zero_info(f"seed {params.seed}")
    datamodule, module = setup_fit(params, PREPARED_DIR)
    identity = run_identity(params)
    resume = resumable_checkpoint(LAST_CHECKPOINT, identity, params.train.epochs)
    logger = LiveLogger(
        dir="dvclive", save_dvc_exp=False, dvcyaml=None, report=None, resume=resume is not None
    )
    trainer = build_trainer(params, logger=logger, callbacks=[EpochCheckpoint(LAST_CHECKPOINT, identity)])
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    save_atomically(trainer, CHECKPOINT, weights_only=True)


def main() -> None:
    run_stage(train, uses_pretrained=True)


if __name__ == "__main__":
    run_program(main)
