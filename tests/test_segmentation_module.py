"""SegmentationModule: losses, schedule, and one real Lightning training step per head."""

import math
import warnings

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from hrnet.data.segmentation_dataset import SegmentationDataModule
from hrnet.data.synthetic.cityscapes import generate_cityscapes
from hrnet.tasks.optim import poly_lambda
from hrnet.tasks.segmentation.module import OhemCrossEntropy, SegmentationModule

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_cityscapes")
    generate_cityscapes(root, num_train_images=4, num_val_images=2, image_size=(96, 48), seed=0)
    return root


def test_ohem_matches_reference_rule():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 6, 7, generator=gen, requires_grad=True)
    target = torch.randint(0, 5, (2, 6, 7), generator=gen)
    target[0, 0] = 255
    valid = target != 255
    pixel = F.cross_entropy(logits, target, ignore_index=255, reduction="none")[valid]

    keep_all = OhemCrossEntropy(thresh=1.01, min_kept=10)(logits, target)  # every prob < 1.01
    assert torch.allclose(keep_all, pixel.mean())

    prob = logits.softmax(1).gather(1, target.clamp(max=4).unsqueeze(1)).squeeze(1)[valid]
    loss = OhemCrossEntropy(thresh=0.3, min_kept=5)(logits, target)
    threshold = max(prob.sort().values[5].item(), 0.3)
    assert torch.allclose(loss, pixel[prob < threshold].mean())
    loss.backward()
    assert torch.isfinite(logits.grad).all()

    weight = torch.linspace(0.5, 1.5, 5)
    weighted = OhemCrossEntropy(thresh=1.01, min_kept=1, weight=weight)(logits, target)
    per_pixel = F.cross_entropy(logits, target, weight=weight, ignore_index=255, reduction="none")[valid]
    assert torch.allclose(weighted, per_pixel.mean())

    empty = OhemCrossEntropy()(logits, torch.full_like(target, 255))
    assert empty.item() == 0.0


def test_poly_schedule():
    f = poly_lambda(100, 0.9)
    assert f(0) == 1.0 and f(100) == 0.0 and f(150) == 0.0
    assert f(50) == pytest.approx(0.5**0.9)


def test_module_options_validated():
    with pytest.raises(ValueError, match="loss"):
        SegmentationModule(loss="focal")
    with pytest.raises(ValueError, match="class_weights"):
        SegmentationModule(class_weights=[1.0, 2.0])


@pytest.mark.parametrize(
    ("head", "loss", "weights"),
    [("v2", "ohem", "cityscapes"), ("v1", "ce", None), ("v2p", "ce", None)],
)
def test_one_training_step(synthetic_root, head, loss, weights):
    pl.seed_everything(0, verbose=False)
    dm = SegmentationDataModule(synthetic_root, crop_size=(64, 64), batch_size=2, val_batch_size=2, seed=0)
    module = SegmentationModule("hrnet_w18_small", head=head, loss=loss, class_weights=weights,
                                ohem_min_kept=1000, lr=0.01)  # fmt: skip
    # parameters only: BatchNorm running statistics change on any training-mode forward pass
    before = {k: v.detach().clone() for k, v in module.model.named_parameters()}
    trainer = pl.Trainer(
        max_steps=1,
        val_check_interval=1,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, dm)
    assert trainer.global_step == 1
    metrics = trainer.callback_metrics
    assert math.isfinite(float(metrics["train/loss_step"]))
    assert 0.0 <= float(metrics["val/mIoU"]) <= 1.0 and math.isfinite(float(metrics["val/loss"]))
    assert set(module.last_val_metrics) >= {"mIoU", "pixel_accuracy", "per_class_iou"}
    changed = [k for k, v in module.model.named_parameters() if not torch.equal(v, before[k])]
    assert changed, "the optimizer step changed no parameter"
    assert module.val_confusion.sum() == 2 * 96 * 48 - int((dm.val_dataset[0]["label"] == 255).sum()) - int(
        (dm.val_dataset[1]["label"] == 255).sum()
    )
    assert trainer.lr_scheduler_configs[0].interval == "step"
