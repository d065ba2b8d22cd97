"""Rule evaluate_ensemble: the mean of the members' predictions on the held-out images, scored
like a single model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.gpus import claim_gpus
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    claim_gpus(snakemake.resources.get("gpu", 0), log=log)  # before TensorFlow starts
    # Imported here so that TensorFlow's start-up messages land in the job's log.
    from fashionai.evaluation.ensemble import evaluate_ensemble
    from fashionai.training.devices import configure_devices

    configure_devices(snakemake.threads, mixed_precision=False, log=log)
    # Each member's folder holds its inputs model.keras, training.json and split.csv.
    folders = [Path(model).parent for model in snakemake.input.models]
    evaluate_ensemble(
        dict(zip(snakemake.params.members, folders, strict=True)),
        snakemake.input.decoded,
        snakemake.output.metrics,
        snakemake.output.confusion,
        batch_size=snakemake.params.batch_size,
        tta=snakemake.params.tta,
        log=log,
    )
