"""Rule evaluate_ensemble: the mean of the members' predictions on the held-out images, scored
like a single model; for the fold members of an experiment with folds, their predictions on
their own validation images scored together, beside their ensemble on the test images (no
TensorFlow: the members' training jobs wrote their predictions)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.evaluation.ensemble import evaluate_ensemble, evaluate_out_of_fold
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    # Each member's folder holds its inputs training.json, split.csv and held_out.csv.
    folders = [Path(path).parent for path in snakemake.input.held_out]
    score = evaluate_out_of_fold if snakemake.params.out_of_fold else evaluate_ensemble
    score(
        dict(zip(snakemake.params.members, folders, strict=True)),
        snakemake.input.decoded,
        snakemake.output.metrics,
        snakemake.output.confusion,
        tta=snakemake.params.tta,
        log=log,
    )
