"""Semantic segmentation metrics, inference helpers and outputs (label-value PNGs, overlays) of a class table.

Metric convention (the one of ``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling``):
a class's IoU is ``tp / (tp + fp + fn)`` over pixels whose ground truth is not ignored, and is
NaN when that denominator is 0 (the class is neither in the ground truth nor predicted on a
non-ignored pixel); the mean IoU averages the non-NaN classes. A class absent from the ground
truth but predicted somewhere therefore scores 0. (The official HRNet code divides by
``max(1, union)`` and averages all 19 classes, counting absent classes as 0.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hrnet.data.cityscapes import CLASS_NAMES, NUM_CLASSES, TABLE
from hrnet.data.class_table import IGNORE_INDEX, ClassTable
from hrnet.data.images import IMAGENET_MEAN, IMAGENET_STD
from hrnet.evaluation.distributed import sum_across_ranks  # noqa: F401  (re-exported)
from hrnet.io import atomic_path

ArrayLike = torch.Tensor | np.ndarray


# ----------------------------------------------------------------------------- metrics
def confusion_matrix(
    pred: ArrayLike,
    label: ArrayLike,
    num_classes: int = NUM_CLASSES,
    ignore_index: int = IGNORE_INDEX,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """(C, C) int64 counts, rows = ground truth, columns = prediction; adds into ``out`` if given.

    ``pred`` and ``label`` hold train ids of the same shape; pixels whose label is
    ``ignore_index`` are skipped; any other label or prediction outside ``[0, C)`` raises.
    """
    pred_t, label_t = torch.as_tensor(pred), torch.as_tensor(label)
    if pred_t.shape != label_t.shape:
        raise ValueError(f"prediction shape {tuple(pred_t.shape)} != label shape {tuple(label_t.shape)}")
    device = out.device if out is not None else label_t.device
    label_t = label_t.to(device=device, dtype=torch.int64).reshape(-1)
    pred_t = pred_t.to(device=device, dtype=torch.int64).reshape(-1)
    keep = label_t != ignore_index
    label_t, pred_t = label_t[keep], pred_t[keep]
    if label_t.numel() and (
        int(label_t.min()) < 0 or int(label_t.max()) >= num_classes
        or int(pred_t.min()) < 0 or int(pred_t.max()) >= num_classes
    ):  # fmt: skip
        raise ValueError(f"labels/predictions must be in [0, {num_classes}) or {ignore_index}")
    counts = torch.bincount(label_t * num_classes + pred_t, minlength=num_classes * num_classes)
    counts = counts.reshape(num_classes, num_classes)
    if out is None:
        return counts
    if out.shape != counts.shape:
        raise ValueError(f"accumulator shape {tuple(out.shape)} != ({num_classes}, {num_classes})")
    return out.add_(counts)


def iou_from_confusion(cm: ArrayLike, class_names: Sequence[str] | None = None) -> dict:
    """``{"mIoU", "pixel_accuracy", "mean_accuracy", "per_class_iou": {name: IoU or NaN}}``.

    See the module docstring for the NaN convention; ``class_names`` defaults to the Cityscapes
    train-id names for 19 classes and ``class_<i>`` otherwise.
    """
    m = torch.as_tensor(cm).detach().cpu().to(torch.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {tuple(m.shape)}")
    n = m.shape[0]
    names = list(class_names) if class_names is not None else (
        list(CLASS_NAMES) if n == NUM_CLASSES else [f"class_{i}" for i in range(n)]
    )  # fmt: skip
    if len(names) != n:
        raise ValueError(f"{len(names)} class names for {n} classes")
    tp, gt, predicted = m.diagonal(), m.sum(1), m.sum(0)
    union = gt + predicted - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, math.nan))
    acc = torch.where(gt > 0, tp / gt.clamp(min=1), torch.full_like(tp, math.nan))
    total = float(m.sum())
    return {
        "mIoU": _nanmean(iou),
        "pixel_accuracy": float(tp.sum()) / total if total > 0 else math.nan,
        "mean_accuracy": _nanmean(acc),
        "per_class_iou": {name: float(v) for name, v in zip(names, iou.tolist(), strict=True)},
    }


def _nanmean(values: torch.Tensor) -> float:
    valid = ~torch.isnan(values)
    return float(values[valid].mean()) if bool(valid.any()) else math.nan


# ----------------------------------------------------------------------------- inference
def model_align_corners(model: nn.Module) -> bool:
    """The ``align_corners`` of a segmentation model (LightningModule or bare model); False if none."""
    value = getattr(model, "align_corners", None)
    if isinstance(value, bool):
        return value
    config = getattr(getattr(model, "backbone", None), "config", None)
    return bool(getattr(config, "align_corners", False))


@torch.no_grad()
def predict_whole(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """Logits (N, C, H, W) for a normalised batch (N, 3, H, W), upsampled bilinearly.

    The upsampling uses the model's ``align_corners``, as the official code does.
    """
    logits = model(image)
    return F.interpolate(
        logits, size=image.shape[-2:], mode="bilinear", align_corners=model_align_corners(model)
    )


@torch.no_grad()
def predict_sliding(
    model: nn.Module,
    image: torch.Tensor,
    crop_size: Sequence[int],
    stride: Sequence[int] | None = None,
    num_classes: int = NUM_CLASSES,
) -> torch.Tensor:
    """Logits (N, C, H, W) averaged over ``crop_size`` (w, h) windows placed every ``stride``.

    The last window of a row/column is shifted back to end at the border (as the official
    Cityscapes tester does); an image smaller than the crop is padded with zeros (the mean
    colour after normalisation) and the padding cropped off again.
    """
    cw, ch = int(crop_size[0]), int(crop_size[1])
    sw, sh = (int(stride[0]), int(stride[1])) if stride is not None else (cw * 2 // 3, ch * 2 // 3)
    if min(cw, ch, sw, sh) < 1:
        raise ValueError(f"crop_size and stride must be positive, got {crop_size}, {stride}")
    n, _, h, w = image.shape
    padded = F.pad(image, (0, max(cw - w, 0), 0, max(ch - h, 0)))
    ph, pw = padded.shape[-2:]
    total = padded.new_zeros((n, num_classes, ph, pw))
    count = padded.new_zeros((1, 1, ph, pw))
    for y0 in _window_starts(ph, ch, sh):
        for x0 in _window_starts(pw, cw, sw):
            window = padded[:, :, y0 : y0 + ch, x0 : x0 + cw]
            total[:, :, y0 : y0 + ch, x0 : x0 + cw] += predict_whole(model, window)
            count[:, :, y0 : y0 + ch, x0 : x0 + cw] += 1
    return (total / count)[:, :, :h, :w]


def _window_starts(length: int, window: int, stride: int) -> list[int]:
    steps = max(math.ceil((length - window) / stride), 0) + 1
    return sorted({min(i * stride, length - window) for i in range(steps)})


@torch.no_grad()
def predict_multiscale(
    model: nn.Module,
    image: torch.Tensor,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    mode: str = "softmax",
    crop_size: Sequence[int] | None = None,
    stride: Sequence[int] | None = None,
    num_classes: int = NUM_CLASSES,
    flip_permutation: Sequence[int] | None = None,
) -> torch.Tensor:
    """Scores (N, C, H, W) averaged over ``scales`` (and horizontal flips when ``flip``).

    A flipped prediction's channels are read in ``flip_permutation``'s order (the class table's
    :meth:`~hrnet.data.class_table.ClassTable.flip_permutation`: LIP's left arm is the mirrored
    image's right arm), as the official LIP tester does.

    ``mode="softmax"`` averages class probabilities, ``mode="logits"`` raw logits. Each scaled
    image is predicted whole, or with :func:`predict_sliding` when ``crop_size`` is given.
    """
    if mode not in ("softmax", "logits"):
        raise ValueError(f"mode must be 'softmax' or 'logits', got {mode!r}")
    if not scales:
        raise ValueError("scales must not be empty")
    h, w = image.shape[-2:]
    total, terms = None, 0
    for scale in scales:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        scaled = (
            image if size == (h, w) else F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        )
        for flipped in (False, True) if flip else (False,):
            inp = scaled.flip(-1) if flipped else scaled
            out = predict_whole(model, inp) if crop_size is None else predict_sliding(
                model, inp, crop_size, stride, num_classes
            )  # fmt: skip
            if flipped:
                out = out.flip(-1) if flip_permutation is None else out.flip(-1)[:, list(flip_permutation)]
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=model_align_corners(model))
            out = out.softmax(1) if mode == "softmax" else out
            total = out if total is None else total + out
            terms += 1
    assert total is not None
    return total / terms


# ----------------------------------------------------------------------------- outputs
def _as_uint8_ids(train_ids: ArrayLike) -> np.ndarray:
    arr = train_ids.detach().cpu().numpy() if isinstance(train_ids, torch.Tensor) else np.asarray(train_ids)
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"train ids must be in [0, 255], got range [{arr.min()}, {arr.max()}]")
    return arr.astype(np.uint8)


def train_ids_to_label_ids(pred: ArrayLike, table: ClassTable = TABLE) -> np.ndarray:
    """The label values (uint8) ``table`` stores for a train-id map (default Cityscapes label ids,
    as ``*_labelIds`` result PNGs); ignore and unknown ids become the table's first ignore value."""
    return table.to_values()[_as_uint8_ids(pred)]


def colorize(train_id_map: ArrayLike, table: ClassTable = TABLE) -> np.ndarray:
    """(H, W, 3) RGB uint8 image in ``table``'s class colours (ignore -> black)."""
    return table.palette()[_as_uint8_ids(train_id_map)]


def denormalize(image: torch.Tensor) -> np.ndarray:
    """A normalised (3, H, W) tensor back to an RGB uint8 (H, W, 3) array."""
    mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=image.device).view(3, 1, 1)
    rgb = (image.detach() * std + mean).clamp(0, 1) * 255.0
    return rgb.round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _write_png(path: str | Path, array: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"{path}: could not encode PNG")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def write_label_png(path: str | Path, train_id_map: ArrayLike, table: ClassTable = TABLE) -> None:
    """Write a prediction as a PNG (8-bit grey) of ``table``'s label values, atomically."""
    _write_png(path, train_ids_to_label_ids(train_id_map, table))


def write_overlay(
    path: str | Path,
    image_rgb: np.ndarray,
    train_id_map: ArrayLike,
    alpha: float = 0.5,
    label_map: ArrayLike | None = None,
    table: ClassTable = TABLE,
) -> None:
    """Write ``image`` blended with the colourised prediction (``alpha`` = colour weight), atomically.

    With ``label_map`` the ground-truth colours are put beside the overlay for comparison.
    Maps of another size than the image are resized (nearest).
    """
    image_rgb = np.asarray(image_rgb, dtype=np.uint8)
    h, w = image_rgb.shape[:2]

    def colours(ids: ArrayLike) -> np.ndarray:
        col = colorize(ids, table)
        return col if col.shape[:2] == (h, w) else cv2.resize(col, (w, h), interpolation=cv2.INTER_NEAREST)

    blend = cv2.addWeighted(image_rgb, 1.0 - alpha, colours(train_id_map), alpha, 0.0)
    if label_map is not None:
        blend = np.concatenate([blend, colours(label_map)], axis=1)
    _write_png(path, cv2.cvtColor(blend, cv2.COLOR_RGB2BGR))
