"""A trained checkpoint stands alone: loading it never reads `model.pretrained` again."""

import pytest
import pytorch_lightning as pl
import torch

import hrnet
from hrnet.tasks.detection.module import DetectionModule
from hrnet.tasks.pose.module import PoseEstimationModule
from hrnet.tasks.segmentation.module import SegmentationModule


@pytest.mark.parametrize(
    ("module_class", "kwargs"),
    [
        (PoseEstimationModule, {"head": "v1"}),
        (SegmentationModule, {"head": "v2", "num_classes": 3}),
        (DetectionModule, {"head": "v2p", "num_classes": 3, "min_size": 64, "max_size": 64}),
    ],
)
def test_a_checkpoint_loads_after_its_imagenet_file_has_moved(tmp_path, module_class, kwargs):
    imagenet = tmp_path / "imagenet.pth"
    torch.save(hrnet.create_backbone("hrnet_w18_small", head=kwargs["head"]).state_dict(), imagenet)
    module = module_class(model_name="hrnet_w18_small", pretrained=str(imagenet), **kwargs)
    checkpoint = tmp_path / "trained.ckpt"
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": pl.__version__,
        },
        checkpoint,
    )
    imagenet.unlink()  # moved since training

    loaded = module_class.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    for name, tensor in module.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
