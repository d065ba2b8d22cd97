"""Rule predict: the submission for the questions of a test archive: the mean of the members'
probabilities (one member, default, without an ensemble) and each member's own file."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.gpus import claim_gpus
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    claim_gpus(snakemake.resources.get("gpu", 0), log=log)  # before TensorFlow starts
    # Imported here so that TensorFlow's start-up messages land in the job's log.
    from fashionai.prediction.submission import write_submissions
    from fashionai.training.devices import configure_devices

    configure_devices(snakemake.threads, mixed_precision=False, log=log)
    members = snakemake.params.members
    write_submissions(
        snakemake.input.questions,
        snakemake.params.model_dirs,  # member -> category -> folder of the input model
        snakemake.output.submission,
        dict(zip(members, snakemake.output.members, strict=True)),
        batch_size=snakemake.params.batch_size,
        tta=snakemake.params.tta,
        log=log,
    )
