"""Rule out_of_fold: the fold members' predictions on their own validation images, scored
together on every non-test image, beside their ensemble's test figures (no TensorFlow)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.evaluation.folds import evaluate_out_of_fold
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    # Each member's folder holds its inputs training.json, split.csv and held_out.csv.
    folders = [Path(path).parent for path in snakemake.input.held_out]
    evaluate_out_of_fold(
        dict(zip(snakemake.params.members, folders, strict=True)),
        snakemake.input.decoded,
        snakemake.output.metrics,
        snakemake.output.confusion,
        tta=snakemake.params.tta,
        log=log,
    )
