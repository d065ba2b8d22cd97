"""Rule split_fold: a fold member's split, derived from its category's split file alone."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.joblog import job_log
from fashionai.splits import fold_split, log_split, read_split, write_split

with job_log(snakemake.log[0]) as log:
    folds, fold = int(snakemake.wildcards.folds), int(snakemake.wildcards.fold)
    split = read_split(Path(snakemake.input[0]))
    split = fold_split(split, folds, fold, snakemake.params.seed)
    log(f"fold {fold} of {folds} of {snakemake.input[0]} validates")
    log_split(split, list(dict.fromkeys(split["label"])), log)
    write_split(Path(snakemake.output[0]), split)
