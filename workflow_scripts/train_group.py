"""Rule train_group: one model for a group of categories (train.grouped), a shared backbone with
one head per category, keeping the weights of the best epoch (the heads' mean validation
accuracy), and each category's files, as rule train writes them, under members/<category>/."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.gpus import claim_gpus
from fashionai.joblog import job_log
from fashionai.training.resume import BACKUP_DIR, Backup
from fashionai.training.settings import TrainSettings

out_dir = Path(snakemake.output.model).parent
# Interrupted (Ctrl-C, SIGTERM), the log's last line says which epoch a rerun resumes from.
with job_log(snakemake.log[0], resume=Backup(out_dir / BACKUP_DIR).interrupted) as log:
    claim_gpus(snakemake.resources.get("gpu", 0), log=log)  # before TensorFlow starts
    # Imported here so that TensorFlow's start-up messages land in the job's log.
    from fashionai.training.groups import train_group

    settings = TrainSettings.from_config(snakemake.params.settings)
    log(f"settings: {settings}")
    categories = snakemake.params.categories

    def by_category(paths):
        return dict(zip(categories, map(Path, paths), strict=True))

    features = snakemake.input.get("features")  # rule features' caches, one per category
    decoded = snakemake.input.get("decoded")  # decoded.csv, with maybe_labels: soft
    train_group(
        snakemake.wildcards.group,
        by_category(snakemake.input.trees),
        out_dir,
        settings,
        splits=by_category(snakemake.input.splits),  # the categories' (or fold member's)
        skipped=by_category(snakemake.input.skipped),
        threads=snakemake.threads,
        # Run-only (the same model either way): read from config, not a param.
        cache_images=snakemake.config["train"]["cache_images"],
        log=log,
        features=by_category(features) if features else None,
        decoded=Path(decoded) if decoded else None,
    )
