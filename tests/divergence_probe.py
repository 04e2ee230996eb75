"""The train stage (``pipeline.train.main``, what ``python -m pipeline.train`` runs) with a NaN
pixel in every training image of rank 1 from epoch 1 on, rank 0's data left clean.

``python -m tests.divergence_probe`` in a project whose params ask for 2 devices: Lightning's
subprocess launcher starts rank 1 with the same command, so both ranks carry the fault's code and
only rank 1's loss turns NaN. Used by ``tests/test_divergence_ddp.py``; not a test itself.
"""

from __future__ import annotations

import math
import os

from hrnet.data.pose_dataset import TopDownPoseDataset
from hrnet.data.sampling import sample_key
from pipeline.train import main

_clean = TopDownPoseDataset.__getitem__


def _nan_on_rank_one(self: TopDownPoseDataset, key: object) -> dict:
    item = _clean(self, key)
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    if self.train and rank == 1 and sample_key(key, len(self.files))[0] >= 1:
        item["image"][0, 0, 0] = math.nan
    return item


TopDownPoseDataset.__getitem__ = _nan_on_rank_one

if __name__ == "__main__":
    main()
