"""Rule extract_archive: one archive into its own folder, refusing anything unsafe."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.archives import extract_archive
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    extract_archive(  # logs what it wrote
        Path(snakemake.input[0]),
        Path(snakemake.output[0]),
        max_ratio=snakemake.params.max_ratio,
        max_bytes=snakemake.params.max_bytes,
        max_members=snakemake.params.max_members,
        log=log,
    )
