"""Rule evaluate: the trained model on exactly the held-out images, with the competition metric."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.gpus import claim_gpus
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    claim_gpus(snakemake.resources.get("gpu", 0), log=log)  # before TensorFlow starts
    # Imported here so that TensorFlow's start-up messages land in the job's log.
    from fashionai.evaluation.evaluate import evaluate_category
    from fashionai.training.devices import configure_devices

    configure_devices(snakemake.threads, mixed_precision=False, log=log)
    evaluate_category(
        Path(snakemake.input.model).parent,  # holds both inputs model.keras and training.json
        snakemake.input.split,
        snakemake.input.decoded,
        snakemake.output.metrics,
        snakemake.output.confusion,
        batch_size=snakemake.params.batch_size,
        tta=snakemake.params.tta,
        log=log,
    )
