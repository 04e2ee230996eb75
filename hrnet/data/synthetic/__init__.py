"""Synthetic embedded datasets, byte-identical for a given seed.

``coco_keypoints`` (people, COCO person keypoints), ``coco_instances`` (eight object classes,
COCO instances) and ``cityscapes`` (street scenes, Cityscapes layout) each have a ``main`` CLI
(``python -m hrnet.data.synthetic.<module> --help``). They share ``canvas`` (drawing, colours,
noise) and ``writer`` (atomic COCO json, JPEG and PNG output).
"""

from hrnet.data.synthetic.cityscapes import generate_cityscapes, render_scene
from hrnet.data.synthetic.coco_instances import generate_coco_detection
from hrnet.data.synthetic.coco_keypoints import generate_coco_keypoints

__all__ = ["generate_cityscapes", "generate_coco_detection", "generate_coco_keypoints", "render_scene"]
