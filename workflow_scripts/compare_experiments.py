"""Rule compare_experiments: every experiment's and the ensemble's figures in one table and one
figure."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.evaluation.comparison import write_comparison
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    markdown = write_comparison(
        snakemake.params.metrics,  # experiment -> category -> metrics.json (the inputs)
        snakemake.output.csv,
        snakemake.output.markdown,
        snakemake.output.plot,
        snakemake.output.means,
    )
    log("\n" + markdown)
