"""Metrics: COCO keypoints and boxes (pycocotools), segmentation confusion matrices."""
