"""Rule merge_labels: every annotation row of every archive, with where it came from."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.annotations import merge_annotations
from fashionai.atomic import atomic_file
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    extracted = list(zip(snakemake.params.archives, map(Path, snakemake.input), strict=True))
    merged = merge_annotations(extracted)
    for archive, rows in merged.groupby("archive", sort=False).size().items():
        log(f"{archive}: {rows} annotation rows")
    with atomic_file(snakemake.output[0]) as partial:
        merged.to_csv(partial, index=False)
    log(f"{len(merged)} rows in all -> {snakemake.output[0]}")
