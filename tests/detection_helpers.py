"""What the detection framework tests share: `hrnet predict` on a package, checked against the evaluate
stage's own detections (reports/predictions/bbox_results.json, and segm_results.json for masks)."""

from __future__ import annotations

import json
from pathlib import Path

import conftest
import pytest
import torch
from filelock import FileLock

from hrnet.cli import main
from hrnet.data.coco_masks import decode_segmentation
from hrnet.models.backbone import HighResolutionNet
from hrnet.tasks.detection.prepare import read_split
from pipeline.common import CHECKPOINT, PREPARED_DIR


def _rows(records: list[dict], boxes: list[dict], min_score: float) -> list[tuple]:
    """(category, score, bbox, segmentation or None) per record scoring over ``min_score``, best
    first; ``boxes``: the records holding each one's ``bbox`` (the same list, or bbox_results.json
    for segm_results.json, which follows it)."""
    rows = [
        (r["category_id"], r["score"], boxes[i]["bbox"], r.get("segmentation"))
        for i, r in enumerate(records)
        if r["score"] >= min_score + 1e-3  # one side may round a score at the cut either way
    ]
    return sorted(rows, key=lambda row: (-row[1], row[2]))


def assert_predict_gives_evaluated(
    project: Path, package: Path, out: Path, min_score: float = 0.0, images: int = 2
) -> int:
    """Runs ``hrnet predict`` (in this process, from ``project``) on the first val images and asserts,
    image by image, the evaluate stage's detections scoring over ``min_score`` + 1e-3: category, score
    within 1e-3, box within 0.05 px, and for mask packages the decoded RLE mask (IoU >= 0.9 where the
    union has 25 px or more, else at most 2 px differ: both binarise one model's probabilities at 0.5,
    so only pixels within float rounding of 0.5 may flip). Returns the number of detections compared."""
    predictions = project / "reports/predictions"
    boxes = json.loads((predictions / "bbox_results.json").read_text())
    masked = json.loads((package / "package.json").read_text()).get("produces_masks", False)
    evaluated = json.loads((predictions / "segm_results.json").read_text()) if masked else boxes
    folder = out / "images"
    folder.mkdir(parents=True)
    sizes = {}
    for record in read_split(project / PREPARED_DIR, "val").records[:images]:
        source = Path(record["file_name"])
        source = source if source.is_absolute() else project / source
        (folder / source.name).write_bytes(source.read_bytes())
        sizes[source.name] = (record["image_id"], record["height"], record["width"])
    args = ["predict", "--package", str(package), str(folder), "--out", str(out / "predicted")]
    assert main([*args, "--threshold", str(min_score)]) == 0
    predicted = json.loads((out / "predicted/results.json").read_text())
    compared = 0
    for name, (image_id, height, width) in sizes.items():
        mine = [r for r in predicted if r["file_name"] == name]
        mine = _rows(mine, mine, min_score)
        indices = [i for i, r in enumerate(evaluated) if r["image_id"] == image_id]
        theirs = _rows([evaluated[i] for i in indices], [boxes[i] for i in indices], min_score)
        assert len(mine) == len(theirs), (package.name, name, len(mine), len(theirs))
        for a, b in zip(mine[:10], theirs[:10], strict=True):
            assert a[0] == b[0] and a[1] == pytest.approx(b[1], abs=1e-3), (name, a[:3], b[:3])
            assert a[2] == pytest.approx(b[2], abs=0.05), (name, a[:3], b[:3])
            if masked:
                m, t = (decode_segmentation(x[3], height, width).astype(bool) for x in (a, b))
                union, differ = (m | t).sum(), (m ^ t).sum()
                assert (1 - differ / union >= 0.9) if union >= 25 else differ <= 2, (name, union, differ)
            compared += 1
    return compared


def pretrained_backbone(raw: dict) -> Path:
    """The HRNet backbone of the detector trained on ``raw`` (params as a dict, model.head v2p or v2:
    every branch's fused output computed, so the weights load into every head) by
    :func:`conftest.trained_template`, saved as a state dict for ``model.pretrained``: a detection
    backbone starts, in practice, from weights trained elsewhere."""
    from pipeline.common.checkpoints import load_module
    from pipeline.params import parse_params

    folder = conftest.trained_template(raw)
    weights = folder / "backbone.pth"
    with FileLock(f"{folder}.lock"):
        if not weights.is_file():
            params = parse_params(raw)
            model = load_module(params, folder / CHECKPOINT).model
            backbone = next(m for m in model.modules() if isinstance(m, HighResolutionNet))
            torch.save(backbone.state_dict(), weights.with_suffix(".tmp"))
            weights.with_suffix(".tmp").rename(weights)
    return weights
