"""Cityscapes layout reader, label mapping, dataset samples and the synthetic generator."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.labels import name2label

from hrnet.data.cityscapes import (
    CLASS_NAMES,
    IGNORE_INDEX,
    TRAIN_ID_TO_LABEL_ID,
    label_id_lut,
    read_label_ids,
)
from hrnet.data.formats.cityscapes import list_cityscapes_pairs
from hrnet.data.images import read_image
from hrnet.data.segmentation_dataset import CityscapesSegDataset
from hrnet.data.synthetic.cityscapes import generate_cityscapes, main, render_scene

torch.set_num_threads(1)
FIXTURE = Path(__file__).parent / "fixtures" / "cityscapes_tiny"


@pytest.fixture
def tiny_copy(tmp_path) -> Path:
    root = tmp_path / "cs"
    shutil.copytree(FIXTURE, root)
    return root


def _one_line_error(excinfo, *fragments: str) -> None:
    text = str(excinfo.value)
    assert "\n" not in text
    for fragment in fragments:
        assert fragment in text, (fragment, text)


def test_label_mapping_matches_cityscapesscripts():
    lut = label_id_lut()
    assert lut.shape == (256,) and lut.dtype == np.uint8
    assert (lut[7], lut[8], lut[11], lut[26], lut[33]) == (0, 1, 2, 13, 18)
    assert lut[0] == lut[1] == lut[4] == lut[9] == lut[29] == lut[255] == IGNORE_INDEX
    for train_id, name in enumerate(CLASS_NAMES):
        assert name2label[name].trainId == train_id
        assert lut[name2label[name].id] == train_id
    assert sorted(set(lut.tolist()) - {IGNORE_INDEX}) == list(range(19))
    assert label_id_lut(250)[0] == 250
    with pytest.raises(ValueError, match="ignore_index"):
        label_id_lut(5)


def test_fixture_pairs_and_samples():
    pairs = list_cityscapes_pairs(FIXTURE, "val", check_label_values=True)
    assert [p[0].name for p in pairs] == [
        "minicity_000000_000019_leftImg8bit.png",
        "minicity_000001_000019_leftImg8bit.png",
    ]
    assert all(lb.name.endswith("_gtFine_labelIds.png") for _, lb in pairs)
    assert len(list_cityscapes_pairs(FIXTURE, "train")) == 2

    dataset = CityscapesSegDataset(pairs, train=False)
    sample = dataset[0]
    assert sample["image"].shape == (3, 16, 32) and sample["image"].dtype == torch.float32
    label = sample["label"]
    assert label.shape == (16, 32) and label.dtype == torch.uint8
    assert int(sample["meta"]["index"]) == 0
    # hand-drawn pixels: sky, building, road, car, person, static (-> ignore), unlabeled corner
    assert label[0, 0] == 10 and label[4, 0] == 2 and label[13, 0] == 0
    assert label[10, 22] == 13 and label[8, 4] == 11 and label[14, 13] == IGNORE_INDEX
    assert label[2, 31] == IGNORE_INDEX
    raw = read_label_ids(pairs[0][1])
    assert torch.equal(label, torch.from_numpy(label_id_lut()[raw]))
    # the sky is blue-ish after normalisation: blue channel above red
    assert sample["image"][2, 0, 0] > sample["image"][0, 0, 0]


def test_fixture_val_split_holds_every_train_id_and_void():
    pairs = list_cityscapes_pairs(FIXTURE, "val", check_label_values=True)
    seen = set().union(*(np.unique(label_id_lut()[read_label_ids(lb)]).tolist() for _, lb in pairs))
    assert seen == set(range(19)) | {IGNORE_INDEX}
    assert CLASS_NAMES[16] == "train"


def test_train_augmentation_geometry():
    pairs = list_cityscapes_pairs(FIXTURE, "train")
    reference = CityscapesSegDataset(pairs, train=False)[0]
    identity = CityscapesSegDataset(pairs, train=True, crop_size=(32, 16), scale_range=(1, 1), flip=False)[0]
    assert torch.equal(identity["label"], reference["label"])
    assert torch.allclose(identity["image"], reference["image"], atol=1e-5)

    double = CityscapesSegDataset(pairs, train=True, crop_size=(64, 32), scale_range=(2, 2), flip=False)[0]
    expected = reference["label"].repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(double["label"], expected)

    # a crop bigger than the scaled image is padded with ignore (label) and zeros (image)
    padded = CityscapesSegDataset(pairs, train=True, crop_size=(48, 24), scale_range=(1, 1), flip=False)[0]
    assert padded["label"].shape == (24, 48)
    assert (padded["label"] == IGNORE_INDEX).sum() >= 48 * 24 - 32 * 16
    assert padded["image"][:, 20:, 40:].abs().max() < 0.01  # the mean colour, rounded to uint8

    flips = set()
    dataset = CityscapesSegDataset(pairs, train=True, crop_size=(32, 16), scale_range=(1, 1), seed=3)
    for epoch in range(12):  # EpochSampler's key for sample 0 of epoch e
        label = dataset[(epoch, 0)]["label"]
        assert torch.equal(label, reference["label"]) or torch.equal(label, reference["label"].flip(-1))
        flips.add(torch.equal(label, reference["label"]))
    assert flips == {True, False}

    a = CityscapesSegDataset(pairs, train=True, crop_size=(24, 12), seed=1)
    b = CityscapesSegDataset(pairs, train=True, crop_size=(24, 12), seed=1)
    for epoch in range(3):
        sa, sb = a[(epoch, 1)], b[(epoch, 1)]
        assert torch.equal(sa["label"], sb["label"]) and torch.equal(sa["image"], sb["image"])
        assert set(sa["label"].unique().tolist()) <= set(range(19)) | {IGNORE_INDEX}


def test_missing_paths(tmp_path, tiny_copy):
    with pytest.raises(FileNotFoundError) as exc:
        list_cityscapes_pairs(tmp_path / "nowhere", "train")
    _one_line_error(exc, "nowhere", "root not found")
    with pytest.raises(FileNotFoundError) as exc:
        list_cityscapes_pairs(tiny_copy, "test")
    _one_line_error(exc, str(tiny_copy / "leftImg8bit" / "test"))
    label = tiny_copy / "gtFine/val/minicity/minicity_000001_000019_gtFine_labelIds.png"
    label.unlink()
    with pytest.raises(FileNotFoundError) as exc:
        list_cityscapes_pairs(tiny_copy, "val")
    _one_line_error(exc, str(label), "label file not found")
    empty = tmp_path / "empty"
    (empty / "leftImg8bit" / "train").mkdir(parents=True)
    (empty / "gtFine" / "train").mkdir(parents=True)
    with pytest.raises(ValueError) as exc:
        list_cityscapes_pairs(empty, "train")
    _one_line_error(exc, "leftImg8bit")


def test_bad_label_files(tiny_copy):
    label = tiny_copy / "gtFine/train/tinytown/tinytown_000001_000019_gtFine_labelIds.png"
    original = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)

    cv2.imwrite(str(label), original[::2, ::2])
    with pytest.raises(ValueError) as exc:
        list_cityscapes_pairs(tiny_copy, "train")
    _one_line_error(exc, str(label), "16x8", "32x16")

    cv2.imwrite(str(label), cv2.merge([original] * 3))
    with pytest.raises(ValueError) as exc:
        list_cityscapes_pairs(tiny_copy, "train")
    _one_line_error(exc, str(label), "greyscale")

    bad = original.copy()
    bad[0, :3] = (40, 200, 34)
    cv2.imwrite(str(label), bad)
    pairs = list_cityscapes_pairs(tiny_copy, "train")  # header checks only: passes
    with pytest.raises(ValueError) as exc:
        list_cityscapes_pairs(tiny_copy, "train", check_label_values=True)
    _one_line_error(exc, str(label), "[34, 40, 200]", "not in the Cityscapes label table")
    with pytest.raises(ValueError) as exc:
        CityscapesSegDataset(pairs, train=True, crop_size=(16, 16))[1]
    _one_line_error(exc, str(label))

    label.write_bytes(b"not a png")
    with pytest.raises(ValueError) as exc:
        list_cityscapes_pairs(tiny_copy, "train")
    _one_line_error(exc, str(label), "not a PNG")


def test_synthetic_generator_layout_and_determinism(tmp_path):
    a = generate_cityscapes(tmp_path / "a", 3, 2, image_size=(96, 48), seed=7)
    generate_cityscapes(tmp_path / "b", 3, 2, image_size=(96, 48), seed=7)
    assert a["train"]["images"] == 3 and a["val"]["cities"] == ["renderstadt"]
    expected_ids = set(TRAIN_ID_TO_LABEL_ID.tolist()) | {0, 1}  # the 19 evaluated classes + void
    for split, count in (("train", 3), ("val", 2)):
        pairs_a = list_cityscapes_pairs(tmp_path / "a", split, check_label_values=True)
        pairs_b = list_cityscapes_pairs(tmp_path / "b", split)
        assert len(pairs_a) == count
        for (ia, la), (ib, lb) in zip(pairs_a, pairs_b, strict=True):
            assert ia.read_bytes() == ib.read_bytes() and la.read_bytes() == lb.read_bytes()
            assert set(np.unique(read_label_ids(la)).tolist()) <= expected_ids
    main(
        [
            "--root",
            str(tmp_path / "c"),
            "--num-train",
            "1",
            "--num-val",
            "1",
            "--width",
            "64",
            "--height",
            "32",
        ]
    )
    assert len(list_cityscapes_pairs(tmp_path / "c", "val")) == 1


def test_synthetic_scenes_draw_every_train_id_and_void():
    seen: set[int] = set()
    for index in range(40):
        _, label = render_scene(np.random.default_rng([0, 0, index]), (128, 64))
        seen |= set(np.unique(label_id_lut()[label]).tolist())
    assert seen == set(range(19)) | {IGNORE_INDEX}


@pytest.mark.parametrize("decoder", ["pyspng", "opencv"])
def test_frames_decode_to_the_same_rgb_with_either_decoder(decoder, tmp_path, monkeypatch):
    import hrnet.data.images as images

    if decoder == "pyspng" and images.pyspng is None:
        pytest.skip("pyspng is not installed (extra 'fast')")
    if decoder == "opencv":
        monkeypatch.setattr(images, "pyspng", None)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), rgb[..., ::-1])  # OpenCV writes BGR
    assert np.array_equal(read_image(frame), rgb)
    grey = tmp_path / "grey.png"  # not 8-bit RGB: OpenCV's conversion on both paths
    cv2.imwrite(str(grey), rgb[..., 0])
    assert np.array_equal(read_image(grey), np.repeat(rgb[..., :1], 3, axis=2))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(frame.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"truncated.png: not a decodable image$"):
        read_image(truncated)
