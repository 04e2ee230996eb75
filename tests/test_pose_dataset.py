"""TopDownPoseDataset samples, the index files and the PoseDataModule loaders."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hrnet.codecs.heatmap import MSRAHeatmapCodec
from hrnet.data.images import IMAGENET_MEAN, IMAGENET_STD, read_image
from hrnet.data.pose_dataset import (
    TopDownPoseDataset,
    index_path,
    load_index,
    read_index,
    write_index,
)
from hrnet.data.transforms import affine_transform_points, box_to_center_scale, get_affine_transform
from hrnet.tasks.pose.datamodule import PoseDataModule
from hrnet.tasks.pose.inference import predict_pose

INPUT, HEATMAP = (192, 256), (48, 64)
WIDTH, HEIGHT = 200, 160
R_WRIST, L_WRIST = 10, 9
JOINTS = np.array(
    [[100, 40], [104, 36], [96, 36], [108, 38], [92, 38], [115, 55], [85, 55], [120, 72], [80, 72],
     [122, 88], [120, 90], [110, 100], [90, 100], [112, 118], [88, 118], [112, 135], [88, 135]],
    dtype=float,
)  # fmt: skip
BBOX = [70.0, 28.0, 60.0, 112.0]


def make_record(image_id: int = 1, image_file: str = "000000000001.jpg") -> dict:
    keypoints = [[float(x), float(y), 2] for x, y in JOINTS]
    keypoints[15] = [0.0, 0.0, 0]  # left ankle unlabeled
    return {"image_id": image_id, "ann_id": image_id * 10, "image_file": image_file, "bbox": list(BBOX),
            "keypoints": keypoints, "area": 3000.0}  # fmt: skip


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    """Grey image with a red dot on the right wrist, and its mirror image (near-lossless JPEGs)."""
    root = tmp_path_factory.mktemp("images")
    image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    cv2.circle(image, tuple(int(v) for v in JOINTS[R_WRIST]), 3, (0, 0, 255), -1)  # BGR red
    cv2.imwrite(str(root / "000000000001.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 100])
    cv2.imwrite(str(root / "000000000002.jpg"), cv2.flip(image, 1), [cv2.IMWRITE_JPEG_QUALITY, 100])
    return root


@pytest.fixture
def codec() -> MSRAHeatmapCodec:
    return MSRAHeatmapCodec(INPUT, HEATMAP, sigma=2.0)


def denormalise(image: torch.Tensor) -> np.ndarray:
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    return (image.permute(1, 2, 0).numpy() * std + mean) * 255


def red_spot(rgb: np.ndarray) -> np.ndarray:
    redness = rgb[..., 0] - rgb[..., 1:].mean(-1)
    y, x = np.unravel_index(redness.argmax(), redness.shape)
    return np.array([x, y], dtype=float)


def test_eval_sample_shapes_values_and_target_location(image_dir, codec):
    ds = TopDownPoseDataset([make_record()], image_dir, INPUT, codec, train=False)
    sample = ds[0]
    assert sample["image"].shape == (3, 256, 192) and sample["image"].dtype == torch.float32
    assert sample["image"].is_contiguous()
    assert sample["target"].shape == (17, 64, 48) and sample["target"].dtype == torch.float32
    assert sample["target_weight"].shape == (17, 1) and sample["target_weight"].dtype == torch.float32
    meta = sample["meta"]
    assert meta["center"].shape == (2,) and meta["scale"].shape == (2,)
    assert meta["image_id"].item() == 1 and meta["index"].item() == 0 and meta["rotation"].item() == 0
    assert meta["area"].item() == 3000.0

    center, scale = box_to_center_scale(BBOX, INPUT[0] / INPUT[1])
    np.testing.assert_allclose(meta["center"].numpy(), center)
    np.testing.assert_allclose(meta["scale"].numpy(), scale)
    grey = denormalise(sample["image"])[5, 5]  # inside the image, away from the dot
    np.testing.assert_allclose(grey, [128, 128, 128], atol=2)

    in_crop = affine_transform_points(JOINTS, get_affine_transform(center, scale, 0, INPUT))
    weight = sample["target_weight"][:, 0].numpy()
    assert weight[15] == 0 and weight.sum() == 16
    for k in np.flatnonzero(weight):
        peak = np.unravel_index(sample["target"][k].argmax().item(), (64, 48))
        assert peak == tuple(np.floor(in_crop[k, ::-1] / 4 + 0.5).astype(int))
    # The red dot (RGB order) lands on the right wrist's crop location.
    assert np.abs(red_spot(denormalise(sample["image"])) - in_crop[R_WRIST]).max() <= 2


def test_flip_mirrors_image_joints_and_center(image_dir, codec):
    ds = TopDownPoseDataset([make_record()], image_dir, INPUT, codec, train=True)
    ds._augment = lambda rng, c, s, j, v: (c, s, 0.0, True)  # force a pure flip
    sample = ds[0]
    center, _ = box_to_center_scale(BBOX, INPUT[0] / INPUT[1])
    assert sample["meta"]["center"][0].item() == pytest.approx(WIDTH - 1 - center[0])
    # The red (right) wrist is now the left wrist: its channel peaks on the red dot.
    peak = np.unravel_index(sample["target"][L_WRIST].argmax().item(), (64, 48))
    assert np.abs(red_spot(denormalise(sample["image"])) - np.array(peak[::-1]) * 4).max() <= 4
    weight = sample["target_weight"][:, 0].numpy()
    assert weight[16] == 0 and weight[15] == 1  # the unlabeled left ankle became the right ankle

    # Same crop as cropping the mirrored file without flipping.
    mirrored = make_record(image_file="000000000002.jpg")
    plain = TopDownPoseDataset([mirrored], image_dir, INPUT, codec, train=False)
    plain.centers[0] = sample["meta"]["center"].numpy()
    expected = plain[0]["image"]
    assert (sample["image"] - expected).abs().mean() < 0.02


def test_the_dataset_crops_a_box_to_the_pixels_inference_crops_it_to(image_dir, codec):
    """The network sees the same input for a box in the evaluate stage (the dataset) as in
    ``hrnet predict`` (crop, normalise, run), and the keypoints are mapped back through the same crop."""
    boxes = [BBOX, [150.0, 100.0, 80.0, 90.0]]  # the second runs off the 200 x 160 image: zeros outside
    records = [{**make_record(), "bbox": box} for box in boxes]
    dataset = TopDownPoseDataset(records, image_dir, INPUT, codec, train=False)
    heatmaps = torch.rand(len(boxes), 17, HEATMAP[1], HEATMAP[0], generator=torch.Generator().manual_seed(0))
    seen = []

    def network(images: torch.Tensor) -> torch.Tensor:
        seen.append(images)
        return heatmaps

    image = read_image(image_dir / "000000000001.jpg")
    ((keypoints, scores, _),) = predict_pose(network, [image], [boxes], codec.with_test(flip_test=False))
    (inputs,) = seen
    for i in range(len(boxes)):
        assert torch.equal(inputs[i], dataset[i]["image"])
    expected = codec.decode_keypoints(heatmaps, dataset.centers, dataset.scales)
    np.testing.assert_array_equal(keypoints, expected[0])
    np.testing.assert_array_equal(scores, expected[1])


def test_train_augmentation_runs_and_is_reproducible(image_dir, codec):
    records = [make_record() for _ in range(24)]
    ds = TopDownPoseDataset(records, image_dir, INPUT, codec, train=True, aug={"half_body_prob": 0.5}, seed=7)
    first = [ds[i] for i in range(len(records))]
    rotations = [s["meta"]["rotation"].item() for s in first]
    scales = [s["meta"]["scale"][1].item() for s in first]
    assert any(r != 0 for r in rotations) and any(r == 0 for r in rotations)
    assert all(abs(r) <= 80 for r in rotations) and len(set(scales)) > 5
    for s in first:
        assert torch.isfinite(s["image"]).all()
        assert set(s["target_weight"].unique().tolist()) <= {0.0, 1.0}
        assert s["target"].min() >= 0 and s["target"].max() <= 1
    # Augmentation is a function of (seed, epoch, index): repeatable, new each epoch and seed.
    again = [ds[i] for i in range(len(records))]
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(first, again, strict=True))
    n = len(records)
    next_epoch = [ds[(1, i)]["meta"]["rotation"].item() for i in range(n)]  # an EpochSampler key
    assert next_epoch != rotations
    other_seed = TopDownPoseDataset(records, image_dir, INPUT, codec, train=True, seed=8)
    assert [other_seed[i]["meta"]["rotation"].item() for i in range(n)] != rotations


def test_bad_images_raise_errors_naming_the_file(image_dir, codec, tmp_path):
    good = (image_dir / "000000000001.jpg").read_bytes()
    (tmp_path / "garbage.jpg").write_bytes(b"not an image at all")
    (tmp_path / "cut.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    cases = [
        ("garbage.jpg", ValueError, "garbage.jpg"),
        ("cut.jpg", ValueError, "cut.jpg: truncated"),
        ("empty.jpg", ValueError, "empty"),
        ("missing.jpg", FileNotFoundError, "missing.jpg"),
    ]
    for name, error, message in cases:
        ds = TopDownPoseDataset([make_record(image_file=name)], tmp_path, INPUT, codec, train=False)
        with pytest.raises(error, match=message):
            ds[0]


def test_constructor_checks(image_dir, codec):
    with pytest.raises(ValueError, match="unknown augmentation keys"):
        TopDownPoseDataset([make_record()], image_dir, INPUT, codec, train=True, aug={"flip_prob": 0.5})
    with pytest.raises(ValueError, match="codec input size"):
        TopDownPoseDataset([make_record()], image_dir, (96, 128), codec, train=False)


def test_index_round_trip_is_relative_and_atomic(image_dir, tmp_path):
    records = [make_record(), make_record(2, "000000000002.jpg")]
    path = tmp_path / "prepared" / "val.json"
    write_index(records, image_dir, path, meta={"source": "test"})
    payload = json.loads(path.read_text())
    assert not Path(payload["image_dir"]).is_absolute() and payload["num_records"] == 2
    loaded, loaded_dir = read_index(path)
    assert loaded == records and loaded_dir.resolve() == image_dir.resolve()
    assert load_index(path).meta == {"source": "test"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["val.json"]  # no temp files left
    payload["version"] = 99
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="version 99"):
        read_index(path)
    with pytest.raises(FileNotFoundError, match="train.json"):
        read_index(tmp_path / "prepared" / "train.json")


@pytest.fixture
def index_dir(image_dir, tmp_path) -> Path:
    write_index([make_record(i + 1) for i in range(5)], image_dir, index_path(tmp_path, "train"))
    write_index([make_record(i + 1) for i in range(5)], image_dir, index_path(tmp_path, "val"))
    return tmp_path


def test_datamodule_train_and_val_loaders(index_dir):
    dm = PoseDataModule(index_dir, input_size=(48, 64), batch_size=2, num_workers=0, seed=1)
    dm.setup("fit")
    train = dm.train_dataloader()
    batches = list(train)
    assert len(batches) == 2  # 5 instances, drop_last
    batch = batches[0]
    assert batch["image"].shape == (2, 3, 64, 48)
    assert batch["target"].shape == (2, 17, 16, 12) and batch["target_weight"].shape == (2, 17, 1)
    assert batch["meta"]["center"].shape == (2, 2) and batch["meta"]["image_id"].dtype == torch.int64
    val = list(dm.val_dataloader())
    assert torch.cat([b["meta"]["index"] for b in val]).tolist() == [0, 1, 2, 3, 4]
    assert dm.val_index is not None and len(dm.val_index.records) == 5


def test_datamodule_with_workers_is_reproducible(index_dir):
    def first_batch() -> dict:
        dm = PoseDataModule(index_dir, input_size=(48, 64), batch_size=4, num_workers=2, seed=3)
        return next(iter(dm.train_dataloader()))

    a, b = first_batch(), first_batch()
    assert torch.equal(a["meta"]["index"], b["meta"]["index"])
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["meta"]["scale"], b["meta"]["scale"])
