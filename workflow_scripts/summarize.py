"""Rule summarize: every category's figures in one table, with their mean (mAP)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.evaluation.submission import summary_table, to_markdown
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    metrics = {
        category: json.loads(Path(path).read_text())
        for category, path in zip(snakemake.params.categories, snakemake.input, strict=True)
    }
    table = summary_table(metrics)
    table.to_csv(snakemake.output.csv, index=False)
    markdown = to_markdown(table)
    Path(snakemake.output.markdown).write_text(markdown + "\n")
    log("\n" + markdown)
