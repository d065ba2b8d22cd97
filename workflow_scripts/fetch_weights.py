"""Rule fetch_weights: ImageNet weights downloaded once, for jobs on nodes without internet."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    # Imported here so that TensorFlow's start-up messages land in the job's log.
    from fashionai.training.weights import fetch_weights

    # train.weights_url is run-only (the same file from anywhere): read here, not a param.
    url = snakemake.config["train"]["weights_url"]
    fetch_weights(snakemake.wildcards.backbone, Path(snakemake.output[0]), url=url, log=log)
