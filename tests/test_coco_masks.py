"""COCO mask encodings (hrnet.data.coco_masks) against pycocotools' own area and IoU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from hrnet.data.coco_masks import box_masks, decode_segmentation, encode_masks


def test_polygons_rle_and_uncompressed_rle_decode_to_the_same_pixels() -> None:
    polygon = [[10.0, 10.0, 50.0, 10.0, 50.0, 40.0, 10.0, 40.0]]
    mask = decode_segmentation(polygon, 64, 80)
    assert mask.shape == (64, 80) and mask.dtype == np.uint8
    assert mask.sum() == 40 * 30 and mask[20, 30] == 1 and mask[5, 5] == 0
    (rle,) = encode_masks(mask[None])
    assert rle["size"] == [64, 80] and isinstance(rle["counts"], str)
    np.testing.assert_array_equal(decode_segmentation(rle, 64, 80), mask)
    uncompressed = {"size": [64, 80], "counts": [3, 4, 64 * 80 - 7]}  # column-major runs
    assert decode_segmentation(uncompressed, 64, 80).sum() == 4
    assert decode_segmentation([], 64, 80).sum() == 0
    with pytest.raises(ValueError, match="segmentation: expected polygons"):
        decode_segmentation("not a mask", 64, 80)


def test_predicted_probabilities_are_cut_at_one_half() -> None:
    probs = torch.zeros(2, 1, 16, 16)
    probs[0, 0, :4, :4] = 0.5
    probs[0, 0, 4:8, :4] = 0.49
    probs[1, 0, 8:, 8:] = 0.9
    rles = encode_masks(probs)
    assert [int(mask_utils.area(r | {"counts": r["counts"].encode()})) for r in rles] == [16, 64]
    assert encode_masks(torch.zeros(0, 1, 16, 16)) == []


def test_boxes_filled_as_masks_have_the_boxes_area() -> None:
    rles = box_masks([[2, 3, 10, 5], [0, 0, 16, 16]], 16, 16)
    assert [int(mask_utils.area(r | {"counts": r["counts"].encode()})) for r in rles] == [50, 256]
    assert box_masks([], 16, 16) == []
