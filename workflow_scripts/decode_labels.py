"""Rule decode_labels: y/n/m codes to class names; every unusable row listed with its reason."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
import pandas as pd

from fashionai.atomic import atomic_file
from fashionai.decoding import decode_labels, reconcile
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    merged = pd.read_csv(snakemake.input[0], dtype=str, keep_default_na=False)
    merged["round"] = merged["round"].astype(int)
    merged["line"] = merged["line"].astype(int)
    log(f"{len(merged):,} rows read; decoding, checking images in {snakemake.threads} workers")
    decoded, rejected = decode_labels(merged, workers=snakemake.threads, log=log)
    log(reconcile(merged, decoded, rejected))
    for frame, path in ((decoded, snakemake.output.decoded), (rejected, snakemake.output.rejected)):
        with atomic_file(path) as partial:
            frame.to_csv(partial, index=False)
    log(f"wrote {snakemake.output.decoded} and {snakemake.output.rejected}")
