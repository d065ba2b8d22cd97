"""Rule group_member: a category's model files, trained in its group's model (train.grouped),
hard-linked from the group's folder into the category's, where every later rule reads them."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.joblog import job_log
from fashionai.trees import link_files

with job_log(snakemake.log[0]) as log:
    link_files(snakemake.params.members, snakemake.output)
    log(f"linked {len(snakemake.output)} files from {snakemake.params.members}")
