"""Rule preview_grids: a grid of sample images per label, to judge which labels to merge."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.joblog import job_log
from fashionai.plots.label_stats import plot_preview_grids

with job_log(snakemake.log[0]) as log:
    written = plot_preview_grids(
        Path(snakemake.input[0]),
        Path(snakemake.output[0]),
        per_label=snakemake.params.per_label,
        seed=snakemake.params.seed,
    )
    log(f"wrote {len(written)} preview grids into {snakemake.output[0]}")
