"""Rule evaluate: a model's predictions on exactly its held-out images, with the competition
metric (no TensorFlow: the training job wrote the predictions)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.evaluation.evaluate import evaluate_category
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    evaluate_category(
        snakemake.input.summary,
        snakemake.input.split,
        snakemake.input.held_out,
        snakemake.input.decoded,
        snakemake.output.metrics,
        snakemake.output.confusion,
        tta=snakemake.params.tta,
        log=log,
    )
