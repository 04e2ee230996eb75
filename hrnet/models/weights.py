"""Loading HRNet checkpoints written by the official repositories, timm, mm* and this project.

Key mapping (applied to every checkpoint key, in this order):

1. Containers are unwrapped: ``{"state_dict": ...}``, ``{"model_state_dict": ...}``,
   ``{"model": ...}``, ``{"net": ...}`` (repeatedly, while the values are not all tensors); only
   tensor values are kept.
2. Wrapper prefixes are stripped: ``module.`` (DataParallel), ``model.`` (segmentation FullModel,
   Lightning modules), ``_orig_mod.`` (torch.compile).
3. mm* layouts are normalised: ``keypoint_head.final_layer.`` / ``head.final_layer.`` ->
   ``final_layer.``; HRFPN ``neck.reduction_conv.conv.`` / ``neck.fpn_convs.{i}.conv.`` drop ``.conv``.
4. A key whose first component is a backbone module (``conv1 bn1 conv2 bn2 layer1 transition1-3
   stage2-4``), flat (official pose/segmentation/ImageNet, timm) or under ``backbone.``, goes to
   the model's backbone; every other key keeps its name (``neck.*``, ``final_layer.*``,
   ``last_layer.*``) and is used only if the model has it with the same shape.

Pretrained weights load only into the official architecture: a model built with any ablation
option (``fusion``, ``fusion_downsample``, ``fusion_op``, ``streams``) is refused with one line
before the file is read (``fusion_op="multiply"`` even has the official keys).

The backbone is matched strictly (missing keys, unknown keys or shape mismatches raise one
:class:`CheckpointError`), except that ``num_batches_tracked`` buffers may be absent and that the
lower-branch fusion layers of the last stage-4 module are ignored when the model (pose V1) does
not have them. Task-head and neck tensors are loaded only when their shapes match; everything else
(ImageNet ``incre_modules``/``downsamp_modules``/``final_layer``/``classifier``, losses, ...) is
ignored. Ignored, skipped and missing keys are reported in one logged message.
"""

from __future__ import annotations

import logging
import pickle
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hrnet.errors import MissingFileError, UserError

from .backbone import HighResolutionNet

logger = logging.getLogger(__name__)

BACKBONE_ROOTS = frozenset(
    {"conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "transition2", "transition3"}
    | {"stage2", "stage3", "stage4"}
)
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
_STRIP_PREFIXES = ("module.", "model.", "_orig_mod.")
_RENAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(?:keypoint_head|head)\.final_layer\."), "final_layer."),
    (re.compile(r"^neck\.reduction_conv\.conv\."), "neck.reduction_conv."),
    (re.compile(r"^neck\.fpn_convs\.(\d+)\.conv\."), r"neck.fpn_convs.\1."),
)


class CheckpointError(UserError, ValueError):
    """A checkpoint cannot be read or does not fit the model."""


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did with every key."""

    path: str
    model_name: str
    loaded: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # checkpoint keys this model does not use
    skipped: list[str] = field(default_factory=list)  # head/neck keys whose shapes differ
    missing: list[str] = field(default_factory=list)  # model keys left at their initial values

    @property
    def clean(self) -> bool:
        return not (self.ignored or self.skipped or self.missing)

    def message(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors from {self.path} into {self.model_name}"]
        for title, keys in (
            ("ignored checkpoint keys (not used by this model)", self.ignored),
            ("skipped checkpoint keys (shape differs from the model)", self.skipped),
            ("model keys not in the checkpoint (left at initialisation)", self.missing),
        ):
            if keys:
                lines.append(f"{title} [{len(keys)}]:")
                lines += [f"  {group}" for group in _compress(keys)]
        return "\n".join(lines)


def _compress(keys: Iterable[str]) -> list[str]:
    """Group keys by owning module: ``a.b.{weight,bias}`` (every key stays visible)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        module, _, leaf = key.rpartition(".")
        groups[module].append(leaf)
    out = []
    for module, leaves in groups.items():
        tail = leaves[0] if len(leaves) == 1 else "{" + ",".join(leaves) + "}"
        out.append(f"{module}.{tail}" if module else tail)
    return out


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a checkpoint's tensors with ``torch.load(weights_only=True)`` and unwrap containers."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"checkpoint {path} does not exist")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"refusing to load {path}: it carries pickled Python objects, not only tensors "
            f"(torch.load(weights_only=True) said: {reason}). Re-save just the state dict with "
            "torch.save(model.state_dict(), path) from a trusted environment."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    for _ in range(4):
        if not isinstance(obj, Mapping) or all(isinstance(v, Tensor) for v in obj.values()):
            break
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(f"checkpoint {path} contains no tensors")
    return tensors


def canonical_key(key: str) -> str:
    """Apply the prefix rules; backbone keys come out flat (``conv1.weight``, ``stage2.0...``)."""
    stripped = True
    while stripped:
        stripped = False
        for prefix in _STRIP_PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix) :], True
    for pattern, repl in _RENAMES:
        key = pattern.sub(repl, key)
    if key.startswith("backbone.") and key.split(".", 2)[1] in BACKBONE_ROOTS:
        key = key[len("backbone.") :]
    return key


def _find_backbone(model: nn.Module) -> tuple[str, HighResolutionNet]:
    for name, module in model.named_modules():
        if isinstance(module, HighResolutionNet):
            return (f"{name}." if name else ""), module
    raise TypeError(f"{type(model).__name__} contains no HighResolutionNet backbone")


def _stage2_widths(flat: Mapping[str, Tensor]) -> tuple[int, int] | None:
    a, b = flat.get("transition1.0.0.weight"), flat.get("transition1.1.0.0.weight")
    return None if a is None or b is None else (int(a.shape[0]), int(b.shape[0]))


def _lower_fuse_keys(backbone: HighResolutionNet) -> re.Pattern[str]:
    """Last stage-4 module's fusion into branches 1-3 (absent in single-output, pose V1, models)."""
    last = len(backbone.stage4) - 1
    return re.compile(rf"^stage4\.{last}\.fuse_layers\.[1-9]\d*\.")


def load_pretrained(model: nn.Module, path: str | Path) -> LoadReport:
    """Load the checkpoint at ``path`` into ``model`` (a task model, backbone+neck or bare backbone;
    a ResNet-FPN detector's backbone: :func:`~hrnet.models.resnet_fpn.load_resnet_weights`)."""
    resnet_fpn = sys.modules.get(f"{__package__}.resnet_fpn")  # not imported: no ResNet-FPN was built
    resnets = [] if resnet_fpn is None else [
        (name, m) for name, m in model.named_modules() if isinstance(m, resnet_fpn.ResNetFPN)
    ]  # fmt: skip
    if resnets:
        name, resnet = resnets[0]
        report = LoadReport(path=str(path), model_name=resnet.name)
        loaded = resnet_fpn.load_resnet_weights(resnet, path)
        report.loaded = [f"{name}.{key}" if name else key for key in loaded]
        logger.info(report.message())
        return report
    prefix, backbone = _find_backbone(model)
    model_name = backbone.config.name
    if not backbone.config.is_official:  # checked first: a multiply variant has the official keys
        raise CheckpointError(
            f"checkpoint {path}: pretrained weights load only into the official architecture; {model_name} "
            f"is built with {backbone.config.variant} (expected fusion=full, fusion_downsample=strided_conv, "
            "fusion_op=sum, streams=progressive)"
        )
    ckpt = {canonical_key(k): v for k, v in read_state_dict(path).items()}
    report = LoadReport(path=str(path), model_name=model_name)

    model_sd = model.state_dict()
    model_bb = {k[len(prefix) :]: v for k, v in model_sd.items() if k.startswith(prefix)}
    ck_w, model_w = _stage2_widths(ckpt), _stage2_widths(model_bb)
    if ck_w and model_w and ck_w != model_w:
        raise CheckpointError(
            f"checkpoint {path} is HRNet-W{ck_w[0]} (stage2 widths {ck_w[0]}/{ck_w[1]}) but the model is "
            f"{model_name} ({model_w[0]}/{model_w[1]})"
        )

    lower_fuse = _lower_fuse_keys(backbone)
    to_load: dict[str, Tensor] = {}
    unexpected, mismatched = [], []
    for key, tensor in ckpt.items():
        if key.split(".", 1)[0] in BACKBONE_ROOTS:
            target = model_bb.get(key)
            if target is None:
                if not backbone.multi_scale_output and lower_fuse.match(key):
                    report.ignored.append(key)
                else:
                    unexpected.append(key)
            elif target.shape != tensor.shape:
                mismatched.append(f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(target.shape)}")
            else:
                to_load[prefix + key] = tensor
        elif key in model_sd and not key.startswith(prefix):
            if model_sd[key].shape == tensor.shape:
                to_load[key] = tensor
            else:
                report.skipped.append(
                    f"{key} (checkpoint {tuple(tensor.shape)} vs model {tuple(model_sd[key].shape)})"
                )
        else:
            report.ignored.append(key)

    missing_bb = [k for k in model_bb if k not in ckpt and not k.endswith("num_batches_tracked")]
    if missing_bb or unexpected or mismatched:
        parts = [f"checkpoint {path} does not match the {model_name} backbone:"]
        for title, keys in (
            ("missing backbone keys", missing_bb),
            ("unexpected backbone keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if keys:
                parts.append(f"{title} [{len(keys)}]:")
                parts += [f"  {g}" for g in (keys if title == "shape mismatches" else _compress(keys))]
        if missing_bb and all(lower_fuse.match(k) for k in missing_bb) and not unexpected and not mismatched:
            parts.append(
                "the checkpoint is a single-output (pose V1) backbone: its last module fuses into branch 0 "
                "only; build the model with head='v1' to use it"
            )
        raise CheckpointError("\n".join(parts))

    result = model.load_state_dict(to_load, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    report.loaded = sorted(to_load)
    report.missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if report.clean:
        logger.info(report.message())
    else:
        logger.warning(report.message())
    return report
