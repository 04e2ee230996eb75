"""The keypoint set comes from the data and two settings (hrnet.data.keypoint_meta): flip pairs
derived from names or given, OKS sigmas given or COCO's, and every user of it: the flip test scored
by COCOeval, the keypoint checks of prepare, a checkpoint of another set refused."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hrnet.codecs.heatmap import MSRAHeatmapCodec
from hrnet.data import coco_constants as coco
from hrnet.data.formats.coco import load_coco
from hrnet.data.issues import IssueLog
from hrnet.data.keypoint_meta import (
    COCO_PERSON,
    body_groups,
    derive_flip_pairs,
    meta_from_category,
    resolve_flip_pairs,
)
from hrnet.data.synthetic.skeletons import SKELETONS
from hrnet.data.transforms import affine_transform_points, box_to_center_scale, get_affine_transform
from hrnet.errors import DataError
from hrnet.evaluation.evaluators import KeypointEvaluator
from hrnet.tasks.pose.module import PoseEstimationModule

STICK = SKELETONS["stick"]
NAMES = STICK.category["keypoints"]


def stick(**settings) -> object:
    return meta_from_category(
        STICK.category, settings.get("flip_pairs"), settings.get("sigmas", STICK.sigmas)
    )


def test_flip_pairs_are_derived_from_side_names_in_four_spellings():
    names = ["head", "left_eye", "right_eye", "L_Paw", "R_Paw", "ear_left", "ear_right", "hock_l", "hock_r"]
    assert derive_flip_pairs(names) == ((1, 2), (3, 4), (5, 6), (7, 8))
    assert derive_flip_pairs(["left_eye", "nose"]) == ()  # no partner: maps to itself
    assert COCO_PERSON.flip_pairs == coco.FLIP_PAIRS  # COCO's names give COCO's pairs
    assert stick().flip_indices == (0, 1, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12)


def test_pose_flip_pairs_overrides_by_name_or_index_and_bad_pairs_are_one_line():
    assert resolve_flip_pairs(NAMES, [["left_hand", "right_hand"], [10, 11]]) == ((6, 7), (10, 11))
    assert resolve_flip_pairs(NAMES, []) == ()  # no pairs: a flip swaps nothing
    for bad, says in (
        ([["left_hand", "tail"]], "'tail' is not a keypoint name"),
        ([[0, 14]], "index 14 out of range (expected 0..13)"),
        ([["left_hand", "right_hand"], ["left_hand", "neck"]], "names a keypoint twice"),
        ([["head"]], "is not a pair"),
    ):
        with pytest.raises(DataError, match="pose.flip_pairs") as error:
            resolve_flip_pairs(NAMES, bad)
        assert says in str(error.value) and "\n" not in str(error.value)


def test_sigmas_are_required_for_another_keypoint_set_and_must_match_its_length():
    assert COCO_PERSON.sigmas == tuple(coco.OKS_SIGMAS)  # COCO's 17 keep COCO's sigmas
    with pytest.raises(DataError, match=r"pose.oks_sigmas: required for these 14 keypoints") as error:
        stick(sigmas=None)
    assert "a list of 14 per-keypoint OKS sigmas" in str(error.value)
    with pytest.raises(DataError, match=r"pose.oks_sigmas: 17 values given \(expected 14 positive sigmas"):
        stick(sigmas=coco.OKS_SIGMAS)
    assert stick().sigmas == STICK.sigmas


def test_half_body_groups_come_from_lower_limb_names_or_half_body_is_off():
    assert (COCO_PERSON.upper_body_ids, COCO_PERSON.lower_body_ids) == (
        coco.UPPER_BODY_IDS,
        coco.LOWER_BODY_IDS,
    )
    assert stick().lower_body_ids == tuple(range(8, 14)) and stick().half_body
    hand = [f"{finger}_{joint}" for finger in ("thumb", "index") for joint in ("base", "tip")]
    assert body_groups(hand) == ((0, 1, 2, 3), ())
    assert not meta_from_category({"id": 1, "keypoints": hand}, oks_sigmas=[0.03] * 4).half_body


# ----------------------------------------------------------------------------- the flip test, scored
def _ground_truth(path: Path, rng: np.random.Generator) -> np.ndarray:
    """Four 128x128 images, one stick figure each with 14 labelled keypoints inside its box."""
    joints = rng.uniform(30, 98, (4, len(NAMES), 2)).round(1)
    images = [{"id": i + 1, "file_name": f"{i}.jpg", "width": 128, "height": 128} for i in range(4)]
    anns = [
        {"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "area": 4900.0,
         "bbox": [29.0, 29.0, 70.0, 70.0], "num_keypoints": len(NAMES),
         "keypoints": np.concatenate([joints[i], np.full((len(NAMES), 1), 2)], 1).reshape(-1).tolist()}
        for i in range(4)
    ]  # fmt: skip
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [STICK.category]}))
    return joints


def _flip_test_ap(ann_file: Path, joints: np.ndarray, flip_pairs) -> float:
    """A model that sees the truth: on a crop its heatmaps are the ground truth's Gaussians, on the
    mirrored crop the mirrored ones with left and right swapped (as the data's true pairs say). The
    codec's flip test with ``flip_pairs`` averages the two; COCOeval scores with the stick sigmas."""
    truth, used = stick(), stick(flip_pairs=flip_pairs)
    heatmap = (16, 16)
    codec = MSRAHeatmapCodec(
        (64, 64), heatmap, flip_test=True, shift_heatmap=False, flip_indices=used.flip_indices
    )
    draw = MSRAHeatmapCodec(heatmap, heatmap, sigma=1.0)
    centers, scales = zip(*(box_to_center_scale([29, 29, 70, 70], 1.0) for _ in joints))
    maps = np.stack([
        draw.encode(affine_transform_points(j, get_affine_transform(c, s, 0, heatmap)), np.ones(len(j)))[0]
        for j, c, s in zip(joints, centers, scales)
    ])  # fmt: skip
    plain = torch.from_numpy(maps)
    mirrored = plain[:, list(truth.flip_indices)].flip(-1)
    crops = torch.rand(len(joints), 3, 64, 64)

    def model(images: torch.Tensor) -> torch.Tensor:
        return plain if torch.equal(images, crops) else mirrored

    keypoints, scores = codec.predict(model, crops, np.array(centers), np.array(scales))
    evaluator = KeypointEvaluator(ann_file, keypoints=truth)
    evaluator.update(range(4), range(1, 5), keypoints, scores, np.array(scales))
    return evaluator.compute()["AP"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' numpy-2 copy= warning
def test_the_flip_test_uses_the_derived_pairs_and_a_wrong_pair_lowers_the_ap(tmp_path):
    ann_file = tmp_path / "val.json"
    joints = _ground_truth(ann_file, np.random.default_rng(0))
    derived = _flip_test_ap(ann_file, joints, None)
    wrong = [list(pair) for pair in derive_flip_pairs(NAMES)]
    wrong[2], wrong[4] = ["left_hand", "right_knee"], ["left_knee", "right_hand"]  # hands with knees
    assert derived > 0.99
    assert _flip_test_ap(ann_file, joints, wrong) < derived - 0.2


# ----------------------------------------------------------------------------- prepare and checkpoints
def test_keypoint_arrays_of_another_length_than_the_categorys_are_bad_samples(tmp_path):
    ann_file = tmp_path / "train.json"
    _ground_truth(ann_file, np.random.default_rng(1))
    data = json.loads(ann_file.read_text())
    data["annotations"][1]["keypoints"] += [0, 0, 0] * 3  # 17x3 = 51 values: COCO's length, not 14x3
    ann_file.write_text(json.dumps(data))
    with pytest.raises(DataError) as error:
        load_coco(ann_file, "keypoints")
    assert str(error.value).startswith(str(ann_file)) and "annotation 2" in str(error.value)
    assert "keypoints has 51 values (expected 14x3 = 42 numbers" in str(error.value)
    kept = load_coco(ann_file, "keypoints", issues=IssueLog("skip"))
    assert kept.dropped == 1 and [a["id"] for a in kept.dataset["annotations"]] == [1, 3, 4]


def test_a_checkpoint_of_another_keypoint_set_is_refused_in_one_line():
    checkpoint = {"hyper_parameters": {"keypoints": stick().to_dict()}}
    resuming = SimpleNamespace(keypoint_meta=COCO_PERSON)  # a module built on COCO-keypoint data
    with pytest.raises(DataError) as error:
        PoseEstimationModule.on_load_checkpoint(resuming, checkpoint)
    message = str(error.value)
    assert message.startswith("the checkpoint has 14 keypoints (head, neck, left_shoulder, ...)")
    assert "prepared data has 17 (nose, left_eye, right_eye, ...)" in message and "\n" not in message
    PoseEstimationModule.on_load_checkpoint(SimpleNamespace(keypoint_meta=stick()), checkpoint)  # same set
    from hrnet.tasks.pose.stages import _predict  # evaluate's validation pass: refused before any work

    with pytest.raises(DataError, match=r"^the checkpoint has 14 keypoints .* the prepared data has 17"):
        _predict(SimpleNamespace(keypoint_meta=stick()), None, SimpleNamespace(keypoints=COCO_PERSON), None)


def test_prepare_reads_the_set_from_the_train_file_and_refuses_a_val_file_of_another(tmp_path):
    from hrnet.tasks.pose.prepare import _keypoint_meta, _same_category

    train, val = tmp_path / "train.json", tmp_path / "val.json"
    _ground_truth(train, np.random.default_rng(2))
    params = SimpleNamespace(
        pose=SimpleNamespace(flip_pairs=None, oks_sigmas=None), data=SimpleNamespace(source="coco")
    )
    with pytest.raises(DataError) as error:
        _keypoint_meta(params, train)  # real data of another set: the sigmas must be given
    assert str(error.value).startswith(f"{train}: pose.oks_sigmas: required for these 14 keypoints")
    params.pose.oks_sigmas = list(STICK.sigmas)
    found = _keypoint_meta(params, train)
    assert found == stick()
    params.data.source = "synthetic"  # the embedded stick set brings its suggested sigmas
    params.pose.oks_sigmas = None
    assert _keypoint_meta(params, train) == found
    val.write_text(json.dumps({"images": [], "annotations": [], "categories": [coco.PERSON_CATEGORY]}))
    with pytest.raises(DataError) as error:
        _same_category(found, val)
    assert str(error.value).startswith(f"{val}: keypoint category 1 with 17 keypoints (nose, left_eye")
    assert "expected the train file's: category 1 with 14 keypoints head, neck" in str(error.value)


def test_a_package_draws_and_reports_its_own_skeleton():
    from hrnet.tasks.pose.inference import INFERENCE, PosePrediction
    from hrnet.viz import draw_skeletons

    meta = stick().to_dict() | {"category_id": 3}
    package = SimpleNamespace(meta={"input_size": [64, 64], "keypoints": meta})
    joints = np.random.default_rng(3).uniform(10, 90, (1, 14, 2))
    found = PosePrediction(joints, np.ones((1, 14)), np.array([[0.0, 0, 99, 99]]), np.ones(1))
    image = np.zeros((100, 100, 3), np.uint8)
    drawn = INFERENCE.draw(package, image, found, 0.2)
    np.testing.assert_array_equal(
        drawn, draw_skeletons(image, joints, np.ones((1, 14)), 0.2, meta["skeleton"])
    )
    (record,) = INFERENCE.results(package, found, 0, "a.jpg")
    assert record["category_id"] == 3 and len(record["keypoints"]) == 42
