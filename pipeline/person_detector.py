"""person_detector stage (detector/dvc.yaml): a person detector for top-down pose evaluation.

Trains this project's detection model (``model.name`` with head v2p, the ``detection`` section's
settings, ``evaluate.pose.person_detector``'s epochs) on the person boxes of the prepared pose
train split (its COCO keypoints file is read as COCO instances), then writes its boxes on the val
images as COCO results to ``data/person_detector/detections.json``, with the detector's own box AP
in ``data/person_detector/metrics.json``. Pose is scored at those boxes with
``dvc exp run -S evaluate.pose.boxes=data/person_detector/detections.json``, which runs this stage
first: ``evaluate`` then depends on the file.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hrnet.io import atomic_write_json, replace_directory
from hrnet.process import run_program
from hrnet.tasks import TASKS
from hrnet.tasks.base import prepared_index_path
from hrnet.tasks.detection.prepare import write_checked_index
from hrnet.tasks.pose.prepare import read_split
from pipeline.common import PREPARED_DIR, run_stage
from pipeline.params import Params, parse_params

OUT_DIR = Path("data/person_detector")
DETECTIONS = OUT_DIR / "detections.json"
METRICS = OUT_DIR / "metrics.json"


def detector_params(params: Params) -> Params:
    """The detection run: the pose run's model, seed and devices, the detector's own epochs."""
    raw = params.model_dump(mode="json")
    settings = params.evaluate.pose.person_detector
    raw["task"] = "detection"
    raw["model"].update(head="v2p", pretrained=None)
    raw["train"].update(epochs=settings.epochs, limit_train_batches=settings.limit_train_batches)
    return parse_params(raw, source="params.yaml (evaluate.pose.person_detector)")


def write_detection_index(prepared_dir: Path, out_dir: Path) -> None:
    """A detection index of the prepared pose splits: their keypoint files serve as instances files."""
    for role in ("train", "val"):
        split = read_split(prepared_dir, role)
        path = prepared_index_path(out_dir, role)
        write_checked_index(path, Path(split.meta["ann_file"]), split.image_dir, role)


def person_detector(params: Params) -> None:
    from pipeline.common.fitting import build_trainer, setup_fit  # torch, Lightning: after params validate

    detection = TASKS["detection"]
    det_params = detector_params(params)
    OUT_DIR.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".person_detector.", dir=OUT_DIR.parent) as tmp:
        work = Path(tmp)
        write_detection_index(PREPARED_DIR, work / "prepared")
        datamodule, module = setup_fit(det_params, work / "prepared")
        build_trainer(det_params).fit(module, datamodule=datamodule)
        metrics = detection.evaluate(module.eval(), det_params, work / "prepared", work)
        out = work / "out"
        out.mkdir()
        found = json.loads((work / "predictions" / "bbox_results.json").read_text())
        fields = ("image_id", "category_id", "bbox", "score")  # pycocotools' loadRes adds more
        atomic_write_json(out / DETECTIONS.name, [{k: d[k] for k in fields} for d in found], indent=None)
        (work / "figures").mkdir(exist_ok=True)  # a DVC out, even when evaluate.num_figures is 0
        (work / "figures").replace(out / "figures")
        atomic_write_json(out / METRICS.name, {"task": "person detection", **metrics})
        replace_directory(out, OUT_DIR)


def main() -> None:
    run_stage(person_detector)


if __name__ == "__main__":
    run_program(main)
