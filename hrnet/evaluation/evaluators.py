"""Evaluators: ``update`` with each batch, ``compute`` once per pass, ``reset`` before the next.

One evaluator per task, used by the LightningModules' validation (during training and by the
evaluate stage alike). Under DDP each rank updates with its own shard; ``compute`` then combines
them (COCO results gathered to rank 0 for pycocotools, the confusion matrix all-reduced) and
returns the same metrics on every rank. Every sample carries an id, and a sample seen twice (a
padding sampler, an id repeated within a rank) counts once, so the metrics equal the
single-process ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrnet.data.cityscapes import IGNORE_INDEX, NUM_CLASSES
from hrnet.data.coco_masks import encode_masks
from hrnet.data.keypoint_meta import COCO_PERSON, KeypointMeta
from hrnet.evaluation.coco_boxes import evaluate_boxes, foreground, to_coco_detections
from hrnet.evaluation.coco_keypoints import evaluate_keypoints, to_coco_results
from hrnet.evaluation.coco_segm import evaluate_masks, to_coco_segmentations
from hrnet.evaluation.distributed import (
    broadcast_from_zero,
    gather_first_copies,
    owned_elsewhere,
    sum_across_ranks,
)
from hrnet.evaluation.rescoring import score_people
from hrnet.evaluation.segmentation import confusion_matrix, iou_from_confusion


def _ids(sample_ids: Sequence[int] | torch.Tensor | np.ndarray) -> list[int]:
    if isinstance(sample_ids, torch.Tensor):
        return [int(i) for i in sample_ids.detach().cpu().reshape(-1).tolist()]
    return [int(i) for i in np.asarray(sample_ids).reshape(-1)]


class KeypointEvaluator:
    """COCO keypoint AP of top-down predictions, scored as the official evaluation does.

    Each person crop is rescored (box score x mean confident joint score), then OKS-NMS runs per
    image, then ``COCOeval(iouType="keypoints")`` on ``ann_file``. ``box_scores`` maps a sample id
    (the dataset index) to its box's score, 1 when not given (ground-truth boxes). ``keypoints``
    is the data's keypoint set: its sigmas make OKS-NMS and COCOeval, its category the results'.

    After :meth:`compute`, rank 0 also holds ``results`` (the COCO results list) and
    ``predictions``: sample ids (N,), keypoints (N, K, 2) and scores (N, K) in sample-id order;
    every rank holds ``last_stats``.
    """

    def __init__(
        self,
        ann_file: str | Path,
        box_scores: Sequence[float] | np.ndarray | None = None,
        keypoint_score_threshold: float = 0.2,
        oks_nms_threshold: float = 0.9,
        soft_nms: bool = False,
        keypoints: KeypointMeta = COCO_PERSON,
    ) -> None:
        self.ann_file = Path(ann_file)
        self.keypoints = keypoints
        self.box_scores = None if box_scores is None else np.asarray(box_scores, dtype=np.float64)
        self.keypoint_score_threshold = keypoint_score_threshold
        self.oks_nms_threshold, self.soft_nms = oks_nms_threshold, soft_nms
        self.reset()

    def reset(self) -> None:
        self._samples: dict[int, tuple[int, np.ndarray, np.ndarray, np.ndarray]] = {}
        self.results: list[dict[str, Any]] = []
        self.predictions: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.last_stats: dict[str, float] = {}

    def update(
        self,
        sample_ids: Sequence[int] | torch.Tensor,
        image_ids: Sequence[int] | torch.Tensor,
        keypoints: np.ndarray,
        scores: np.ndarray,
        crop_scales: np.ndarray | torch.Tensor,
    ) -> None:
        """One batch: keypoints (N, K, 2) in image pixels, their scores (N, K), and the crops'
        ``scale`` (N, 2) in ``PIXEL_STD`` units (OKS-NMS compares people by crop area)."""
        if isinstance(crop_scales, torch.Tensor):
            crop_scales = crop_scales.detach().cpu().numpy()
        rows = zip(_ids(sample_ids), _ids(image_ids), keypoints, scores, np.asarray(crop_scales))
        for sample, image, kps, kp_scores, scale in rows:
            self._samples.setdefault(sample, (image, np.asarray(kps), np.asarray(kp_scores), scale))

    def compute(self) -> dict[str, float]:
        """The ten COCO keypoint stats by name, the same on every rank."""
        gathered = gather_first_copies(list(self._samples.items()))
        stats = None if gathered is None else self._score(dict(gathered))
        self.last_stats = broadcast_from_zero(stats)
        return self.last_stats

    def _score(self, samples: dict[int, tuple[int, np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, float]:
        ids = np.fromiter(samples, dtype=np.int64, count=len(samples))
        if not len(ids):
            self.results = []
            self.predictions = (ids, np.zeros((0, 0, 2)), np.zeros((0, 0)))
            return evaluate_keypoints(self.ann_file, [], self.keypoints.sigmas)
        image_ids = np.array([samples[i][0] for i in ids], dtype=np.int64)
        keypoints = np.stack([samples[i][1] for i in ids])
        scores = np.stack([samples[i][2] for i in ids])
        scales = np.stack([samples[i][3] for i in ids])
        box_scores = np.ones(len(ids)) if self.box_scores is None else self.box_scores[ids]
        threshold = self.keypoint_score_threshold
        meta = self.keypoints
        kept, _ = score_people(
            image_ids, keypoints, scores, box_scores, scales, threshold, self.oks_nms_threshold,
            self.soft_nms, meta.sigmas,
        )  # fmt: skip
        self.results = to_coco_results(
            image_ids[kept], keypoints[kept], scores[kept], box_scores[kept], threshold, meta.category_id
        )
        self.predictions = (ids, keypoints, scores)
        return evaluate_keypoints(self.ann_file, self.results, meta.sigmas)


class SegmentationEvaluator:
    """A confusion matrix over every pixel whose label is not ``ignore_index``, all-reduced over ranks.

    ``confusion`` is this rank's matrix, on the device of the predictions; :meth:`compute` returns
    :func:`~hrnet.evaluation.segmentation.iou_from_confusion` of the sum over ranks, with each sample
    id counted once, and keeps that sum as ``total``.
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        ignore_index: int = IGNORE_INDEX,
        class_names: Sequence[str] | None = None,
    ) -> None:
        """``class_names``: the class table's names in train-id order (default: Cityscapes' for 19)."""
        self.num_classes, self.ignore_index, self.class_names = num_classes, ignore_index, class_names
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.reset()

    def reset(self) -> None:
        self.confusion = torch.zeros_like(self.confusion)
        # per sample: its flat nonzero cells and counts (sparse: a handful of cells per image), kept so
        # that a copy another rank also saw can be taken out again
        self._samples: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.total = self.confusion.clone()

    def update(
        self,
        preds: torch.Tensor,
        labels: torch.Tensor,
        sample_ids: Sequence[int] | torch.Tensor | None = None,
    ) -> None:
        """Predicted and ground-truth train ids (N, H, W) of the samples ``sample_ids`` (N,); without
        ids every sample counts (no duplicate can be recognised)."""
        if self.confusion.device != preds.device:
            self.confusion = self.confusion.to(preds.device)
        if sample_ids is None:
            confusion_matrix(preds, labels, self.num_classes, self.ignore_index, out=self.confusion)
            return
        for pred, label, sample in zip(preds, labels, _ids(sample_ids)):
            if sample in self._samples:
                continue
            counts = confusion_matrix(pred, label, self.num_classes, self.ignore_index).reshape(-1)
            cells = counts.nonzero().reshape(-1)
            self._samples[sample] = (cells.cpu(), counts[cells].cpu())
            self.confusion.view(-1).index_add_(0, cells, counts[cells])

    def compute(self) -> dict[str, Any]:
        local = self.confusion.clone()
        for sample in owned_elsewhere(list(self._samples)):
            cells, counts = self._samples[sample]
            local.view(-1).index_add_(0, cells.to(local.device), -counts.to(local.device))
        self.total = sum_across_ranks(local)
        return iou_from_confusion(self.total, self.class_names)


class DetectionEvaluator:
    """COCO bbox AP of torchvision-style detections (labels 1..C), scored on rank 0 with pycocotools;
    when the detections carry ``masks`` (a mask framework's), also COCO segm AP on the same file.

    ``label_to_category`` maps the model's labels to COCO category ids. Only the images predicted on
    are scored (a partial pass is scored on its images). Masks are encoded to COCO's compressed RLE
    as they arrive, so that neither memory nor the DDP gather holds dense masks. After
    :meth:`compute`, rank 0 also holds ``results`` (the COCO bbox results list), ``segm_results``
    (the same detections' masks, in the same order; empty without masks), ``image_ids`` (sorted),
    ``detections`` (boxes, scores and labels by image id) and ``masks`` (each image's RLEs, by image
    id, for mask detections); every rank holds ``last_stats``.
    """

    def __init__(self, ann_file: str | Path, label_to_category: Mapping[int, int]) -> None:
        self.ann_file = Path(ann_file)
        self.label_to_category = {int(k): int(v) for k, v in label_to_category.items()}
        self.reset()

    def reset(self) -> None:
        self._images: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, list | None]] = {}
        self.results: list[dict[str, Any]] = []
        self.segm_results: list[dict[str, Any]] = []
        self.image_ids: list[int] = []
        self.detections: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.masks: dict[int, list[dict[str, Any]]] = {}
        self.last_stats: dict[str, float] = {}

    def update(self, image_ids: Sequence[int] | torch.Tensor, outputs: Sequence[Mapping[str, Any]]) -> None:
        """One batch: the COCO image ids and the detector's outputs (``boxes`` xyxy, ``scores``, ``labels``,
        optionally ``masks`` (N, 1, H, W) probabilities); label 0, the background slot, is dropped."""
        for image_id, output in zip(_ids(image_ids), map(foreground, outputs)):
            if image_id in self._images:
                continue
            found = tuple(_numpy(output[key]) for key in ("boxes", "scores", "labels"))
            rles = encode_masks(_numpy(output["masks"])) if "masks" in output else None
            self._images[image_id] = (*found, rles)  # type: ignore[assignment]

    def compute(self) -> dict[str, float]:
        """The twelve COCO bbox stats by name, with masks also the twelve segm stats (``segm_AP``, ...),
        the same on every rank."""
        gathered = gather_first_copies(list(self._images.items()))
        stats = None
        if gathered is not None:
            self.image_ids = [image_id for image_id, _ in gathered]
            columns = [list(column) for column in zip(*(found for _, found in gathered))]
            boxes, scores, labels, masks = columns or ([], [], [], [])
            self.results = to_coco_detections(self.image_ids, boxes, scores, labels, self.label_to_category)
            stats = evaluate_boxes(self.ann_file, self.results, image_ids=self.image_ids)
            self.detections = {i: (b, s, c) for i, b, s, c in zip(self.image_ids, boxes, scores, labels)}
            with_masks = [m is not None for m in masks]
            if any(with_masks):
                if not all(with_masks):
                    raise ValueError("DetectionEvaluator: some images' detections carry masks, others not")
                self.masks = dict(zip(self.image_ids, masks))
                self.segm_results = to_coco_segmentations(
                    self.image_ids, masks, scores, labels, self.label_to_category
                )
                stats |= evaluate_masks(self.ann_file, self.segm_results, image_ids=self.image_ids)
        self.last_stats = broadcast_from_zero(stats)
        return self.last_stats


def _numpy(value: Any) -> np.ndarray:
    """A detector output as numpy; reduced-precision floats (bf16-mixed or fp16 autocast, which numpy
    cannot hold or pycocotools should not score) become float32."""
    if not isinstance(value, torch.Tensor):
        return np.asarray(value)
    value = value.detach().cpu()
    if value.dtype in (torch.bfloat16, torch.float16):
        value = value.float()
    return value.numpy()
