"""Rule merge_labels: every annotation row of every archive, with where it came from."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.annotations import merge_annotations
from fashionai.atomic import write_text
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    extracted = list(zip(snakemake.params.archives, map(Path, snakemake.input), strict=True))
    merged = merge_annotations(extracted)
    for archive, rows in merged.groupby("archive", sort=False).size().items():
        log(f"{archive}: {rows} annotation rows")
    write_text(snakemake.output[0], merged.to_csv(index=False))
    log(f"{len(merged)} rows in all -> {snakemake.output[0]}")
