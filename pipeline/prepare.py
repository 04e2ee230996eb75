"""prepare stage: generates (synthetic) or locates (coco) the raw data and writes the person index.

Everything lands in ``data/prepared/`` at once: ``synthetic/`` (the generated COCO-format dataset,
when ``data.source`` is synthetic) and ``index/{train,val}.json`` (person instances of each split).
"""

from __future__ import annotations

import logging
from pathlib import Path

from hrnet.config import Params
from hrnet.data.coco_reader import coco_layout, load_person_instances
from hrnet.data.pose_dataset import index_path, write_index
from hrnet.data.synthetic_coco import generate_coco_keypoints
from hrnet.io import atomic_directory
from pipeline.common import PREPARED_DIR, run_stage
from pipeline.datamodules import INDEX_DIR, relative_to_index

log = logging.getLogger("pipeline.prepare")


def prepare(params: Params) -> None:
    data = params.data
    with atomic_directory(PREPARED_DIR) as tmp:
        if data.source == "synthetic":
            root = tmp / "synthetic"
            synthetic = data.synthetic
            counts = generate_coco_keypoints(
                root,
                num_train_images=synthetic.num_train_images,
                num_val_images=synthetic.num_val_images,
                image_size=tuple(synthetic.image_size),
                persons_per_image=tuple(synthetic.persons_per_image),
                seed=params.seed,
            )
            log.info("generated synthetic COCO keypoints: %s", counts)
        else:
            root = Path(data.root)
            if not root.is_dir():
                raise FileNotFoundError(f"{root}: data.root does not exist (data.source={data.source})")
        index_dir = tmp / INDEX_DIR.relative_to(PREPARED_DIR)
        for role, split in (("train", data.train_split), ("val", data.val_split)):
            ann_file, image_dir = coco_layout(data.source, root, split)
            records = load_person_instances(ann_file, image_dir)
            if not records:
                raise ValueError(f"{ann_file}: no person instance with a labelled keypoint")
            path = index_path(index_dir, role)
            meta = {"source": data.source, "split": split, "ann_file": relative_to_index(ann_file, path)}
            write_index(records, image_dir, path, meta=meta)
            log.info("%s: %d person instances from %s", role, len(records), ann_file)


def main() -> None:
    run_stage(prepare)


if __name__ == "__main__":
    main()
