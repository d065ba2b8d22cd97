"""Rule decode_labels: y/n/m codes to class names; every unusable row listed with its reason."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
import pandas as pd

from fashionai.atomic import write_text
from fashionai.decoding import decode_labels, reconcile
from fashionai.joblog import job_log

with job_log(snakemake.log[0]) as log:
    merged = pd.read_csv(snakemake.input[0], dtype=str, keep_default_na=False)
    merged = merged.astype({"round": int, "line": int})
    log(f"{len(merged):,} rows read; decoding, checking images in {snakemake.threads} workers")
    decoded, rejected = decode_labels(merged, workers=snakemake.threads, log=log)
    log(reconcile(merged, decoded, rejected))
    write_text(snakemake.output.decoded, decoded.to_csv(index=False))
    write_text(snakemake.output.rejected, rejected.to_csv(index=False))
    log(f"wrote {snakemake.output.decoded} and {snakemake.output.rejected}")
