"""Rule regroup: merge and drop labels of a category as configured."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.joblog import job_log
from fashionai.regrouping import plan_regroup
from fashionai.trees import regroup_tree

with job_log(snakemake.log[0]) as log:
    plan = plan_regroup(snakemake.wildcards.category, snakemake.params.spec)
    for group in plan.groups:
        log(f"{group.name} <- {', '.join(group.members)}")
    if plan.dropped:
        log(f"dropped: {', '.join(plan.dropped)}")
    regroup_tree(Path(snakemake.input[0]), Path(snakemake.output[0]), plan, log=log)
