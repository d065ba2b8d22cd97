"""Rule features: the frozen backbone's pooled features of one category, computed once."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.gpus import claim_gpus
from fashionai.joblog import job_log
from fashionai.training.settings import TrainSettings

with job_log(snakemake.log[0]) as log:
    claim_gpus(snakemake.resources.get("gpu", 0), log=log)  # before TensorFlow starts
    # Imported here so that TensorFlow's start-up messages land in the job's log.
    from fashionai.training.features import extract_features

    settings = TrainSettings.from_config(snakemake.params.settings)
    log(f"settings: {settings}")
    # Not a param: the batch size does not change the features, so it must not rerun the job.
    batch_size = snakemake.config["train"]["batch_size"]
    extract_features(
        Path(snakemake.input.tree),
        Path(snakemake.output[0]),
        settings,
        split=Path(snakemake.input.split),
        threads=snakemake.threads,
        log=log,
        batch_size=batch_size,
    )
