"""CenterNet ("Objects as Points", Zhou et al. 2019) on the finest map of the HRNet representation
(stride 4; with v2p the finest pyramid level): per class a heatmap of object centres, and per
location the box size (w, h) and the centre's sub-pixel offset, in output-map pixels.

torchvision has no CenterNet. From torchvision: ``GeneralizedRCNNTransform`` (normalise, resize,
batch; its ``postprocess`` maps boxes back to input-image coordinates) and ``clip_boxes_to_image``.
Our own, after the paper and its reference implementation: the heads (3x3 conv, BatchNorm, ReLU,
1x1 conv; heatmap bias -2.19, a 0.1 prior; the BatchNorm is not CenterNet's: the V2p level is
unnormalised, and without it the first focal loss measured 175 on W18-small-v2 V2p, 2.9 with it, and
training on one image spiked), the targets (:func:`encode`: a Gaussian at each centre whose
radius is CenterNet's ``gaussian_radius`` at overlap 0.7, sigma = diameter / 6), the losses
(penalty-reduced focal loss, alpha 2, beta 4; L1 on size, weight 0.1, and offset, weight 1, at the
centres, over the object count) and the decoding (:func:`decode`: 3x3 max-pool peaks, top-K over
classes and locations, K = ``topk``, 100 by default). Same contract as torchvision's detectors:
``model(images, targets)`` in training returns the losses, in eval a list of dicts with ``boxes``
(xyxy), ``scores`` and ``labels`` (1..C); scripted, ``(losses, detections)``."""

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import boxes as box_ops

PROJECTION_MULTIPLE = 1
MIN_OVERLAP = 0.7
FOCAL_ALPHA, FOCAL_BETA = 2.0, 4.0
SIZE_WEIGHT, OFFSET_WEIGHT = 0.1, 1.0
HEATMAP_BIAS = -2.19  # sigmoid(-2.19) = 0.1


def gaussian_radius(height: float, width: float, min_overlap: float = MIN_OVERLAP) -> float:
    """CenterNet's radius: the smallest of three corner-shift cases keeping IoU >= ``min_overlap``
    (kept as the reference implementation computes it, its halved roots included)."""
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def encode(
    boxes: Tensor, labels: Tensor, num_classes: int, shape: tuple[int, int], stride: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One image's targets on an output map of ``shape`` (h, w): heatmap (C, h, w), and per object
    its size (N, 2) and offset (N, 2) in map pixels and its centre's flat index (N,)."""
    height, width = shape
    heat = boxes.new_zeros((num_classes, height, width))
    ys = torch.arange(height, dtype=boxes.dtype, device=boxes.device)[:, None]
    xs = torch.arange(width, dtype=boxes.dtype, device=boxes.device)[None, :]
    scaled = boxes / stride
    centres = torch.stack([(scaled[:, 0] + scaled[:, 2]) / 2, (scaled[:, 1] + scaled[:, 3]) / 2], 1)
    cells = centres.floor()
    cells[:, 0].clamp_(0, width - 1)
    cells[:, 1].clamp_(0, height - 1)
    sizes = scaled[:, 2:] - scaled[:, :2]
    for (cx, cy), (w, h), label in zip(cells.tolist(), sizes.tolist(), labels.tolist()):
        radius = max(0, int(gaussian_radius(math.ceil(h), math.ceil(w))))
        sigma = (2 * radius + 1) / 6
        dx, dy = xs - cx, ys - cy
        window = (dx.abs() <= radius) & (dy.abs() <= radius)
        gaussian = torch.exp(-(dx**2 + dy**2) / (2 * sigma**2)) * window
        heat[label - 1] = torch.maximum(heat[label - 1], gaussian)
    index = (cells[:, 1] * width + cells[:, 0]).long()
    return heat, sizes, centres - cells, index


def focal_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Penalty-reduced pixel-wise focal loss over the number of centres (at least 1)."""
    pred = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1).to(pred.dtype)
    pos = torch.log(pred) * (1 - pred) ** FOCAL_ALPHA * positive
    neg = torch.log(1 - pred) * pred**FOCAL_ALPHA * (1 - target) ** FOCAL_BETA * (1 - positive)
    return -(pos.sum() + neg.sum()) / positive.sum().clamp(min=1)


def decode(
    heat_logits: Tensor, size: Tensor, offset: Tensor, stride: int, topk: int, score_thresh: float,
    image_sizes: list[tuple[int, int]],
) -> list[dict[str, Tensor]]:  # fmt: skip
    """Boxes (xyxy, in the resized image's pixels) at the ``topk`` highest 3x3 peaks above
    ``score_thresh``, per image of the batch."""
    heat = heat_logits.sigmoid()
    heat = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat).to(heat.dtype)
    _, classes, height, width = heat.shape
    scores, indices = heat.flatten(1).topk(min(topk, classes * height * width))
    detections: list[dict[str, Tensor]] = []
    for i, image_size in enumerate(image_sizes):
        pixel = indices[i] % (height * width)
        wh = size[i].flatten(1)[:, pixel]
        off = offset[i].flatten(1)[:, pixel]
        cx = (pixel % width).to(heat.dtype) + off[0]
        cy = torch.div(pixel, width, rounding_mode="floor").to(heat.dtype) + off[1]
        boxes = torch.stack([cx - wh[0] / 2, cy - wh[1] / 2, cx + wh[0] / 2, cy + wh[1] / 2], 1) * stride
        boxes = box_ops.clip_boxes_to_image(boxes, image_size)
        keep = scores[i] > score_thresh
        labels = torch.div(indices[i], height * width, rounding_mode="floor") + 1
        detections.append({"boxes": boxes[keep], "scores": scores[i][keep], "labels": labels[keep]})
    return detections


def _head(in_channels: int, channels: int, outputs: int, bias: float = 0.0) -> nn.Sequential:
    last = nn.Conv2d(channels, outputs, 1)
    nn.init.constant_(last.bias, bias)
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
        last,
    )


class CenterNet(nn.Module):
    """See the module docstring. ``level``: the key of the backbone map the heads read."""

    registry_name = "centernet"

    def __init__(
        self, backbone: nn.Module, num_classes: int, level: str, stride: int, min_size: int, max_size: int,
        score_thresh: float = 0.05, topk: int = 100, head_channels: int = 64, **transform_kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__()
        self.backbone = backbone
        self.transform = GeneralizedRCNNTransform(
            min_size, max_size, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], **transform_kwargs
        )
        channels = int(backbone.out_channels)
        self.heatmap = _head(channels, head_channels, num_classes, HEATMAP_BIAS)
        self.size = _head(channels, head_channels, 2)
        self.offset = _head(channels, head_channels, 2)
        self.num_classes = num_classes
        self.level = level
        self.stride = stride
        self.score_thresh = score_thresh
        self.topk = topk

    @torch.jit.unused
    def compute_loss(
        self, heat: Tensor, size: Tensor, offset: Tensor, targets: list[dict[str, Tensor]]
    ) -> dict[str, Tensor]:
        """The three losses of a batch (targets in the transform's resized coordinates)."""
        shape = (heat.shape[-2], heat.shape[-1])
        encoded = [encode(t["boxes"], t["labels"], self.num_classes, shape, self.stride) for t in targets]
        heat_target = torch.stack([e[0] for e in encoded])
        size_error, offset_error = heat.new_zeros(()), heat.new_zeros(())
        for i, (_, sizes, offsets, index) in enumerate(encoded):
            size_error = size_error + (size[i].flatten(1)[:, index].T - sizes).abs().sum()
            offset_error = offset_error + (offset[i].flatten(1)[:, index].T - offsets).abs().sum()
        count = 2 * sum(len(e[3]) for e in encoded) + 1e-4  # CenterNet's RegL1Loss: over mask elements
        return {
            "loss_heatmap": focal_loss(heat, heat_target),
            "loss_size": SIZE_WEIGHT * size_error / count,
            "loss_offset": OFFSET_WEIGHT * offset_error / count,
        }

    def dense_maps(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The heads on the level they read: heatmap logits (N, C, h, w), size and offset (N, 2, h, w)."""
        return self.heatmap(x), self.size(x), self.offset(x)

    def forward(
        self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> tuple[dict[str, Tensor], list[dict[str, Tensor]]]:
        original_sizes: list[tuple[int, int]] = []
        for image in images:
            original_sizes.append((image.shape[-2], image.shape[-1]))
        batch, targets = self.transform(images, targets)
        x = self.backbone(batch.tensors)[self.level]
        heat, size, offset = self.dense_maps(x)
        losses: dict[str, Tensor] = {}
        detections: list[dict[str, Tensor]] = []
        if self.training:
            if targets is None:
                raise ValueError("CenterNet needs targets in training")
            losses = self.compute_loss(heat, size, offset, targets)
        else:
            detections = decode(
                heat, size, offset, self.stride, self.topk, self.score_thresh, batch.image_sizes
            )
            detections = self.transform.postprocess(detections, batch.image_sizes, original_sizes)
        if torch.jit.is_scripting():
            return losses, detections
        return self.eager_outputs(losses, detections)

    @torch.jit.unused
    def eager_outputs(self, losses: dict[str, Tensor], detections: list[dict[str, Tensor]]) -> Any:
        return losses if self.training else detections


def build(features: nn.Module, num_classes: int, settings: dict[str, Any], **kwargs: Any) -> nn.Module:
    """``kwargs``: ``topk``, ``head_channels``; the rest go to ``GeneralizedRCNNTransform``, which
    ignores the two-stage detectors' ``rpn_*`` / ``box_*`` settings, as FCOS's does."""
    strides = [int(s) for s in features.strides]
    finest = strides.index(min(strides))
    return CenterNet(
        features, num_classes, str(finest), strides[finest], settings["min_size"], settings["max_size"],
        score_thresh=settings["score_threshold"], **kwargs,
    )  # fmt: skip
