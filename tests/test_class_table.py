"""The class tables: Cityscapes' as cityscapesscripts defines it, PASCAL-Context's and LIP's as the
official HRNet code scores them, a folder dataset's classes.yaml and its one-line errors; and the
LIP flip test, whose left/right swap a mirrored prediction needs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from hrnet.data.class_table import (
    IGNORE_INDEX,
    builtin_table,
    cityscapes_table,
    parse_classes,
    read_classes_yaml,
)
from hrnet.data.synthetic.seg_layouts import FOLDER_CLASSES
from hrnet.errors import DataError, MissingFileError


def test_cityscapes_table_keeps_the_19_train_ids_and_the_known_void_ids():
    from cityscapesscripts.helpers.labels import labels

    table = cityscapes_table()
    lut = table.lut()
    for lb in labels:
        if lb.id >= 0:
            assert lut[lb.id] == (lb.trainId if 0 <= lb.trainId < 255 else IGNORE_INDEX), lb.name
    assert table.num_classes == 19 and table.names[0] == "road" and table.colors[0] == (128, 64, 128)
    assert table.known_values()[:34].all() and not table.known_values()[34:].any()
    assert table.flip_pairs == () and table.flip_permutation() == list(range(19))


def test_pascal_context_scores_59_classes_and_ignores_background():
    table = builtin_table("pascal_context")
    lut = table.lut()
    assert table.num_classes == 59 and lut[0] == IGNORE_INDEX
    assert (
        lut[1:60].tolist() == list(range(59)) and table.names[0] == "aeroplane" and table.names[-1] == "wood"
    )
    assert table.unknown_values(np.array([[0, 59, 60]], np.uint8)) == [60]
    assert table.to_values()[:59].tolist() == list(range(1, 60))  # predictions written as label values


def test_lip_scores_background_and_swaps_left_and_right_limbs():
    table = builtin_table("lip")
    assert table.num_classes == 20 and table.lut()[0] == 0 and table.names[14:16] == ("left_arm", "right_arm")
    perm = table.flip_permutation()
    assert perm[14:] == [15, 14, 17, 16, 19, 18] and perm[:14] == list(range(14))
    assert table.flip_lut()[[14, 16, 18, 5, IGNORE_INDEX]].tolist() == [15, 17, 19, 5, IGNORE_INDEX]


def test_a_table_survives_the_round_trip_through_json():
    for table in (cityscapes_table(), builtin_table("lip"), parse_classes(FOLDER_CLASSES, "x")):
        assert type(table).from_dict(table.to_dict()) == table


def test_classes_yaml_reads_names_values_colours_ignore_and_flip_pairs(tmp_path):
    path = tmp_path / "classes.yaml"
    path.write_text(
        "ignore: [0, 255]\n"
        "classes:\n"
        "  - {name: left hand, value: 3, color: [1, 2, 3]}\n"
        "  - {name: right hand, value: 7}\n"
        "  - {name: body, value: 9}\n"
        "flip_pairs: [[left hand, right hand]]\n"
    )
    table = read_classes_yaml(path)
    assert table.names == ("left hand", "right hand", "body") and table.values == (3, 7, 9)
    assert table.colors[0] == (1, 2, 3) and table.colors[1] == (128, 128, 128)  # VOC colour of 7
    assert table.lut()[[0, 3, 7, 9, 255]].tolist() == [IGNORE_INDEX, 0, 1, 2, IGNORE_INDEX]
    assert table.flip_pairs == ((0, 1),)


GOOD = {"classes": [{"name": "a", "value": 1}, {"name": "b", "value": 2}]}
BAD_CLASSES = {
    "not a mapping": (["a"], "top level"),
    "no classes": ({"ignore": 255}, "classes"),
    "unknown field": ({**GOOD, "colours": []}, "colours"),
    "value out of range": ({"classes": [{"name": "a", "value": 256}]}, "classes[0].value"),
    "value twice": ({"classes": [{"name": "a", "value": 1}, {"name": "b", "value": 1}]}, "classes[1].value"),
    "value is ignored": ({**GOOD, "ignore": 2}, "classes[1].value"),
    "name twice": ({"classes": [{"name": "a", "value": 1}, {"name": "a", "value": 2}]}, "classes[1].name"),
    "bad colour": ({"classes": [{"name": "a", "value": 1, "color": [1, 2]}]}, "classes[0].color"),
    "bad ignore": ({**GOOD, "ignore": "void"}, "ignore"),
    "unknown flip class": ({**GOOD, "flip_pairs": [["a", "c"]]}, "flip_pairs[0]"),
    "class in two pairs": (
        {
            "classes": [{"name": n, "value": v} for v, n in enumerate("abc", 1)],
            "flip_pairs": [["a", "b"], ["a", "c"]],
        },
        "flip_pairs",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CLASSES))
def test_a_bad_classes_yaml_fails_in_one_line_naming_the_file_and_field(tmp_path, case):
    data, field = BAD_CLASSES[case]
    path = tmp_path / "classes.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DataError) as exc:
        read_classes_yaml(path)
    message = str(exc.value)
    assert "\n" not in message and message.startswith(f"{path}: {field}: expected"), message


def test_a_missing_or_unparsable_classes_yaml_fails_in_one_line(tmp_path):
    with pytest.raises(MissingFileError, match="classes.yaml: class table not found"):
        read_classes_yaml(tmp_path / "classes.yaml")
    (tmp_path / "classes.yaml").write_text("classes: [\n")
    with pytest.raises(DataError, match=r"classes.yaml: not valid YAML \(") as exc:
        read_classes_yaml(tmp_path / "classes.yaml")
    assert "\n" not in str(exc.value)


class SidedArms(nn.Module):
    """A fixed "network": arms are where the red channel is positive, and an arm is left or right by
    the image half it lies in, as LIP's are in the synthetic data. Surer on the left half (logit 6)
    than on the right (3), as a real network is never equally sure of both."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        arm = (images[:, 0] > 0).float()
        left = (torch.arange(w) < w // 2).float().expand(n, h, w)
        logits = torch.zeros(n, 20, h, w)
        logits[:, 0] = 1.0 - arm
        logits[:, 14] = 6.0 * arm * left
        logits[:, 15] = 3.0 * arm * (1 - left)
        return logits


@pytest.fixture(scope="module")
def lip_module():
    """A segmentation module trained (so to speak) on LIP's class table."""
    from hrnet.tasks.segmentation.module import SegmentationModule

    return SegmentationModule(class_table=builtin_table("lip").to_dict())


def test_the_lip_flip_test_needs_the_left_right_swap(lip_module):
    """Through SegmentationModule's validation (the evaluate stage's predict_multiscale with
    ``evaluate.segmentation.flip``): with the swap the mirrored prediction agrees with the plain one
    (mIoU 1); without it the mirrored left arm outvotes the right one."""
    from hrnet.tasks.segmentation.config import SegmentationTestConfig

    module = lip_module
    module.model = SidedArms()
    image = -torch.ones(1, 3, 8, 16)
    image[:, 0, 2:6, 1:4] = image[:, 0, 2:6, 12:15] = 1.0  # one arm in each half
    label = torch.zeros(1, 8, 16, dtype=torch.long)
    label[:, 2:6, 1:4], label[:, 2:6, 12:15] = 14, 15
    batch = {"image": image, "label": label, "meta": {"index": torch.tensor([0])}}

    def miou(swap: bool) -> float:
        module.configure_test(SegmentationTestConfig(flip=True))
        if not swap:
            module.test_time["flip_permutation"] = None
        module.on_validation_epoch_start()
        module.validation_step(batch, 0)
        return module.evaluator.compute()["mIoU"]

    assert miou(swap=True) == 1.0
    # both arms read as left: background 1, left arm 12 / 24 pixels, right arm 0
    assert miou(swap=False) == pytest.approx((1.0 + 0.5 + 0.0) / 3)


def test_a_checkpoint_refuses_data_of_another_class_table(lip_module, tmp_path):
    """Evaluate (the prepared data's table against the checkpoint's) and resumed training (the
    checkpoint's table against the module built for the prepared data) both refuse, naming both."""
    from hrnet.tasks.segmentation.stages import check_class_table

    index = tmp_path / "index" / "train.json"
    index.parent.mkdir()
    index.write_text(json.dumps({"pairs": [], "classes": builtin_table("pascal_context").to_dict()}))
    with pytest.raises(DataError) as exc:
        check_class_table(lip_module, tmp_path)
    assert "59 classes: aeroplane" in str(exc.value) and "20 classes: background" in str(exc.value)
    index.write_text(json.dumps({"pairs": [], "classes": builtin_table("lip").to_dict()}))
    assert check_class_table(lip_module, tmp_path) == builtin_table("lip")

    with pytest.raises(
        DataError, match="checkpoint trained on 19 classes: road.* data of 20 classes: background"
    ):
        lip_module.on_load_checkpoint({"hyper_parameters": {"class_table": cityscapes_table().to_dict()}})
    with pytest.raises(DataError, match="19 classes"):  # a checkpoint from before tables were recorded
        lip_module.on_load_checkpoint({"hyper_parameters": {}})
    lip_module.on_load_checkpoint({"hyper_parameters": {"class_table": builtin_table("lip").to_dict()}})


def test_a_flipped_lip_training_sample_swaps_left_and_right_classes(tmp_path):
    """Training's flip mirrors the label and swaps LIP's pairs: on the synthetic LIP scenes, whose
    left classes lie in the left half, every sample (flipped or not) keeps them there."""
    from hrnet.data.formats.lip import list_split
    from hrnet.data.segmentation_dataset import CityscapesSegDataset
    from hrnet.data.synthetic.seg_layouts import generate_segmentation

    generate_segmentation(tmp_path, 2, 1, (64, 32), seed=0, layout="lip")
    pairs = sorted(list_split(tmp_path, "train").pairs.values())
    table = builtin_table("lip")
    dataset = CityscapesSegDataset(pairs, train=True, crop_size=(64, 32), scale_range=(1.0, 1.0), table=table)
    plain = CityscapesSegDataset(pairs, train=False, table=table)
    flipped = 0
    for epoch in range(4):
        for index in range(len(pairs)):
            label = dataset[(epoch, index)]["label"].numpy()
            original = plain[index]["label"].numpy()
            if not np.array_equal(label, original):
                assert np.array_equal(label, table.flip_lut()[original[:, ::-1]])
                flipped += 1
            columns = np.nonzero(np.isin(label, [14, 16, 18]))[1]
            assert columns.size and columns.max() < 32  # left classes stay in the left half
    assert flipped > 0


def test_a_package_draws_and_writes_in_its_own_class_table(tmp_path):
    """`hrnet predict` on a package: the overlay in the package's colours, the label PNG and the RLE
    results in its label values (not Cityscapes')."""
    from types import SimpleNamespace

    from hrnet.tasks.segmentation.inference import INFERENCE

    table = builtin_table("pascal_context")
    package = SimpleNamespace(meta={"class_table": table.to_dict()})
    prediction = np.array([[0, 1], [58, 58]], np.uint8)  # train ids: aeroplane, bag, wood, wood
    drawn = INFERENCE.draw(package, np.zeros((2, 2, 3), np.uint8), prediction, 0.5)
    assert drawn[0, 1].tolist() == [round(c * 0.5) for c in table.colors[1]]
    INFERENCE.write_extra(package, tmp_path, "image.jpg", prediction)
    written = cv2.imread(str(tmp_path / "image_labelIds.png"), cv2.IMREAD_UNCHANGED)
    assert written.tolist() == [[1, 2], [59, 59]]
    results = INFERENCE.results(package, prediction, 7, "image.jpg")
    assert sorted(r["category_id"] for r in results) == [1, 2, 59]


def test_a_lip_package_predicts_with_the_flip_swap():
    """A package records its table, so its flip test swaps LIP's pairs as evaluate's did."""
    from types import SimpleNamespace

    from hrnet.tasks.segmentation.inference import INFERENCE

    lip = builtin_table("lip").to_dict()
    meta = {"input_size": [64, 64], "flip": True, "num_classes": 20, "class_table": lip}
    image = np.zeros((64, 64, 3), np.uint8)
    image[10:30, 5:20, 0] = image[10:30, 44:59, 0] = 255  # red: an arm in each half
    truth = np.zeros((64, 64), np.uint8)
    truth[10:30, 5:20], truth[10:30, 44:59] = 14, 15
    package = SimpleNamespace(meta=meta, model=SidedArms())
    assert np.array_equal(INFERENCE.predict(package, [image])[0], truth)
    package.meta = {**meta, "class_table": None}  # a package without the table: Cityscapes', no swap
    assert not np.array_equal(INFERENCE.predict(package, [image])[0], truth)
