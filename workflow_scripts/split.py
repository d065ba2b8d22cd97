"""Rule split: each image of a category's regrouped tree checked once with the training decoder,
the usable ones split into the seeded subsets, the others listed with their reasons."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.gpus import claim_gpus
from fashionai.joblog import job_log
from fashionai.splits import make_split, write_skipped, write_split

with job_log(snakemake.log[0]) as log:
    claim_gpus(0, log=log)  # decoding runs on the CPU: no GPU memory taken
    keys = snakemake.params.split  # seed, validation_split, test_split
    log(f"split of {snakemake.input[0]}: {keys}")
    tree = Path(snakemake.input[0])
    split, skipped = make_split(tree, **keys, threads=snakemake.threads, log=log)
    write_skipped(Path(snakemake.output.skipped), skipped)
    write_split(Path(snakemake.output.split), split)
    log(f"wrote {snakemake.output.split}: {len(split)} images; {len(skipped)} skipped")
