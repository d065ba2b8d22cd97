"""Rule label_statistics: images per label before and after regrouping, and a grid of sample
images per label, to judge which labels to merge. One job per category draws both (one Python
start and one matplotlib import instead of two)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.joblog import job_log
from fashionai.plots.label_stats import plot_label_distribution, plot_preview_grids

with job_log(snakemake.log[0]) as log:
    plot_label_distribution(
        Path(snakemake.input.tree),
        Path(snakemake.input.regrouped),
        Path(snakemake.output.distribution),
    )
    log(f"wrote {snakemake.output.distribution}")
    written = plot_preview_grids(
        Path(snakemake.input.tree),
        Path(snakemake.output.previews),
        per_label=snakemake.params.per_label,
        seed=snakemake.params.seed,
    )
    log(f"wrote {len(written)} preview grids into {snakemake.output.previews}")
