"""Rule model_card: model_card.md beside a trained model's weights."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.evaluation.model_card import write_model_card
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    write_model_card(
        snakemake.input.summary,
        snakemake.input.split,
        snakemake.input.history,
        snakemake.input.metrics,
        snakemake.output[0],
        experiment=snakemake.wildcards.experiment,
        configuration=snakemake.params.configuration,
    )
    log(f"wrote {snakemake.output[0]}")
