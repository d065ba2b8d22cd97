"""Rule evaluate: an evaluated name's members' predictions on their held-out images, combined
as the name says (a model alone, an ensemble's mean, fold members out of fold; fashionai.config
.evaluations) and scored with the competition metric. No TensorFlow: the members' training jobs
wrote their predictions."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.evaluation.ensemble import evaluate
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    # Each member's folder holds its inputs training.json, split.csv and held_out.csv.
    folders = [Path(path).parent for path in snakemake.input.held_out]
    evaluation = snakemake.params.evaluation
    evaluate(
        dict(zip(evaluation["members"], folders, strict=True)),
        snakemake.input.decoded,
        snakemake.output.metrics,
        snakemake.output.confusion,
        combine=evaluation["combine"],
        tta=evaluation["tta"],
        log=log,
    )
