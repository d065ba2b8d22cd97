"""Rule train: one classifier per experiment and category, keeping the weights of the best
validation epoch, and its predictions on the held-out images."""

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
    from fashionai.training.run import train_category

    settings = TrainSettings.from_config(snakemake.params.settings)
    log(f"settings: {settings}")
    features = snakemake.input.get("features")  # rule features' cache, when the head uses it
    decoded = snakemake.input.get("decoded")  # decoded.csv, with maybe_labels: soft
    train_category(
        Path(snakemake.input.tree),
        out_dir,
        settings,
        split=Path(snakemake.input.split),  # the category's, or the fold member's
        skipped=Path(snakemake.input.skipped),
        threads=snakemake.threads,
        # Run-only (the same model either way): read from config, not a param.
        cache_images=snakemake.config["train"]["cache_images"],
        log=log,
        features=Path(features) if features else None,
        decoded=Path(decoded) if decoded else None,
    )
