"""Metrics: COCO keypoints and boxes (pycocotools), segmentation confusion matrices, OKS-NMS."""

from hrnet.evaluation.nms import oks_nms

__all__ = ["oks_nms"]
