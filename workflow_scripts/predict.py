"""Rule predict: the competition's submission file for the questions of a test archive."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.gpus import claim_gpus
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    claim_gpus(snakemake.resources.get("gpu", 0), log=log)  # before TensorFlow starts
    # Imported here so that TensorFlow's start-up messages land in the job's log.
    from fashionai.prediction.submission import write_submission
    from fashionai.training.devices import configure_devices

    configure_devices(snakemake.threads, mixed_precision=False, log=log)
    # Each model's folder holds its inputs model.keras and training.json.
    models = [Path(model).parent for model in snakemake.input.models]
    write_submission(
        snakemake.input.questions,
        dict(zip(snakemake.params.categories, models, strict=True)),
        snakemake.output[0],
        batch_size=snakemake.params.batch_size,
        log=log,
    )
