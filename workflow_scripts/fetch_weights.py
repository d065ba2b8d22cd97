"""Rule fetch_weights: ImageNet weights downloaded once, for jobs on nodes without internet."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.joblog import job_log
from fashionai.training.weights import fetch_weights

with job_log(snakemake.log[0]) as log:
    fetch_weights(
        snakemake.wildcards.backbone, Path(snakemake.output[0]), url=snakemake.params.url, log=log
    )
