"""Data: dataset formats, checks, samples and DataModules for every task.

Layout:

- ``formats/``: the readers of the formats on disk: ``formats.coco`` (the one COCO loader,
  keypoints and instances, records checked by ``formats.coco_records``) and
  ``formats.cityscapes`` (the Cityscapes folder layout);
- ``validation/``: the prepare stage's checks (layout, image files, a COCO or Cityscapes split),
  each reporting to the ``issues.IssueLog`` it is given (``data.on_bad_sample``);
- ``synthetic/``: the embedded synthetic datasets; ``images``: the one image reader;
- one Dataset/DataModule file per task: ``pose_dataset`` (with ``coco_reader``'s person records),
  ``segmentation_dataset`` (with ``cityscapes``' label table), ``detection_dataset`` (with
  ``detection_records``);
- ``coco_constants`` (COCO's published person keypoints and categories), ``keypoint_meta`` (the
  keypoint set of the data: names, skeleton, flip pairs, sigmas), ``transforms``, ``sampling``.

Only the light modules are imported here; import the ``*_dataset`` modules for the Lightning parts.
"""

from hrnet.data.coco_constants import (
    FLIP_PAIRS,
    KEYPOINT_NAMES,
    LOWER_BODY_IDS,
    NUM_KEYPOINTS,
    OKS_SIGMAS,
    PERSON_CATEGORY,
    SKELETON,
    UPPER_BODY_IDS,
)
from hrnet.data.coco_reader import coco_layout, load_person_instances

__all__ = [
    "FLIP_PAIRS",
    "KEYPOINT_NAMES",
    "LOWER_BODY_IDS",
    "NUM_KEYPOINTS",
    "OKS_SIGMAS",
    "PERSON_CATEGORY",
    "SKELETON",
    "UPPER_BODY_IDS",
    "coco_layout",
    "load_person_instances",
]
