"""Rule evaluate: the best weights on exactly the held-out images, with the competition metric."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.evaluation.metric import evaluate_predictions
from fashionai.evaluation.report import load_validation, write_metrics
from fashionai.gpus import claim_gpus
from fashionai.joblog import job_log
from fashionai.plots.confusion import plot_confusion_matrix

TTA_KEYS = ("accuracy", "basic_precision", "ap", "official_basic_precision", "official_ap")

with job_log(snakemake.log[0]) as log:
    claim_gpus(snakemake.resources.get("gpu", 0), log=log)  # before TensorFlow starts
    # Imported here so that TensorFlow's start-up messages land in the job's log.
    from fashionai.inference import load_trained_model, predict_files
    from fashionai.training.devices import configure_devices

    configure_devices(snakemake.threads, mixed_precision=False, log=log)
    trained = load_trained_model(Path(snakemake.input.model).parent)
    category = trained.category
    rows = load_validation(snakemake.input.split, snakemake.input.decoded, category)
    log(f"{category}: {len(rows)} held-out images from {snakemake.input.split}")
    predictions = predict_files(
        trained,
        rows["image"],
        batch_size=snakemake.params.batch_size,
        tta=snakemake.params.tta,
        log=log,
    )
    decoded = ~(rows["image"].isin(predictions.undecodable)).to_numpy()

    def scores(probabilities):
        return evaluate_predictions(
            probabilities[decoded],
            rows["label_index"].to_numpy()[decoded],
            rows["code"].to_numpy()[decoded],
            trained.classes,
            category,
        )

    metrics = scores(predictions.plain)
    metrics["undecodable_images"] = predictions.undecodable
    if predictions.flipped_tta is not None:
        tta = scores(predictions.flipped_tta)
        metrics["flip_tta"] = {key: tta[key] for key in TTA_KEYS}
    write_metrics(metrics, snakemake.output.metrics)
    plot_confusion_matrix(
        metrics["confusion_matrix"],
        metrics["classes"],
        snakemake.output.confusion,
        f"{category}: {metrics['n_images']} validation images, accuracy {metrics['accuracy']:.3f}",
    )
    log(
        f"accuracy {metrics['accuracy']:.4f}, basic_precision {metrics['basic_precision']}, "
        f"ap {metrics['ap']}"
    )
