"""Rule plot_history: accuracy and loss curves per epoch, best epoch marked."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.joblog import job_log
from fashionai.plots.history import plot_history

with job_log(snakemake.log[0]) as log:
    plot_history(snakemake.input.history, snakemake.input.summary, snakemake.output[0])
    log(f"wrote {snakemake.output[0]}")
