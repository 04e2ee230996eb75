"""synthesize stage: writes the embedded synthetic dataset of ``task`` to data/synthetic.

The data is in the exact on-disk format of the real dataset (COCO keypoints, COCO instances or
Cityscapes), so the prepare stage reads it from ``data.root`` as it reads real data. With real
data (``data.source`` coco or cityscapes) nothing is generated: the folder only says so, which
keeps this stage cheap and the DAG the same for every source.
"""

from __future__ import annotations

import logging

from hrnet.io import atomic_directory
from hrnet.process import run_program
from hrnet.tasks import TASKS
from pipeline.common import run_stage
from pipeline.params import SYNTHETIC_ROOT, Params

log = logging.getLogger("pipeline.synthesize")

NOT_GENERATED = "NOT_GENERATED.txt"


def synthesize(params: Params) -> None:
    with atomic_directory(SYNTHETIC_ROOT) as tmp:
        if params.data.source == "synthetic":
            section = getattr(params.data.synthetic, params.task)
            layout = params.data.synthetic.layout
            options = {"layout": layout} if layout else {}
            summary = TASKS[params.task].generate_synthetic(tmp, params.seed, section, **options)
            log.info(
                "generated the synthetic %s data in %s: %d train and %d val images",
                params.task,
                SYNTHETIC_ROOT,
                summary["train"]["images"],
                summary["val"]["images"],
            )
        else:
            (tmp / NOT_GENERATED).write_text(
                f"data.source is {params.data.source}: the data is read from data.root "
                f"({params.data.root}); no synthetic data is generated.\n"
            )
            log.info("data.source %s: nothing to generate", params.data.source)


def main() -> None:
    run_stage(synthesize)


if __name__ == "__main__":
    run_program(main)
