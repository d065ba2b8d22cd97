"""Rule summarize: every category's figures in one table, with their mean (mAP)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.evaluation.summary import write_summary
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    metrics = dict(zip(snakemake.params.categories, snakemake.input, strict=True))
    markdown = write_summary(metrics, snakemake.output.csv, snakemake.output.markdown)
    log("\n" + markdown)
