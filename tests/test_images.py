"""One image reader for every task: the same one-line errors, truncated JPEGs refused everywhere."""

import cv2
import numpy as np
import pytest

from hrnet.data.detection_dataset import DetectionDataset
from hrnet.data.images import read_image


@pytest.fixture
def jpeg(tmp_path):
    path = tmp_path / "photo.jpg"
    rgb = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(path), rgb[..., ::-1])
    return path


def test_bad_files_give_one_line_naming_the_file(jpeg, tmp_path):
    assert read_image(jpeg).shape == (32, 48, 3)
    assert np.array_equal(read_image(jpeg, rgb=False), read_image(jpeg)[..., ::-1])
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(jpeg.read_bytes()[:-200])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image at all")
    for path, message in [
        (truncated, "truncated JPEG (no end-of-image marker)"),
        (empty, "image file is empty"),
        (garbage, "not a decodable image"),
    ]:
        with pytest.raises(ValueError) as raised:
            read_image(path)
        assert str(raised.value) == f"{path}: {message}"
    with pytest.raises(FileNotFoundError, match=r"nowhere.jpg: image file not found$"):
        read_image(tmp_path / "nowhere.jpg")


def test_the_detection_dataset_refuses_a_truncated_jpeg(jpeg, tmp_path):
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(jpeg.read_bytes()[:-200])
    record = {"file_name": str(truncated), "width": 48, "height": 32, "boxes": [[1, 1, 9, 9]], "labels": [1],
              "image_id": 1}  # fmt: skip
    with pytest.raises(ValueError, match="truncated JPEG"):
        DetectionDataset([record])[0]
