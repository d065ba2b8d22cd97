"""Rule label_distribution: images per label before and after regrouping."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.joblog import job_log
from fashionai.plots.label_stats import plot_label_distribution

with job_log(snakemake.log[0]) as log:
    plot_label_distribution(
        Path(snakemake.input.tree), Path(snakemake.input.regrouped), Path(snakemake.output[0])
    )
    log(f"wrote {snakemake.output[0]}")
