# Ensembles of experiments (evaluation, submissions), the comparison of everything trained, and
# a model card beside every model. Paths come from fashionai.outputs.
if ENSEMBLE_CONFIG:

    rule evaluate_ensemble:
        input:
            models=member_files(MODEL_FILE),
            summaries=member_files(SUMMARY_FILE),
            splits=member_files(SPLIT_FILE),
            decoded="results/labels/decoded.csv",
        output:
            metrics=f"{ensemble_eval_dir('{category}')}/metrics.json",
            confusion=report(
                f"{ensemble_eval_dir('{category}')}/confusion_matrix.png",
                caption="../report/ensemble_confusion.rst",
                category="Evaluation",
                subcategory="{category}",
                labels={
                    "category": "{category}",
                    "figure": "ensemble confusion matrix",
                },
            ),
        log:
            "logs/ensemble/eval/{category}.log",
        benchmark:
            "results/benchmarks/evaluate_ensemble/{category}.tsv"
        conda:
            "../envs/train.yaml"
        threads: TRAIN["threads"]
        resources:
            gpu=TRAIN["gpus"],
            mem_mb=8000,
        params:
            members=MEMBERS,
            tta=ENSEMBLE_CONFIG["tta"],
            batch_size=config["eval"]["batch_size"],
        script:
            "../workflow_scripts/evaluate_ensemble.py"


if ENSEMBLE_CONFIG and config["questions"]:

    ruleorder: predict_ensemble > predict

    rule predict_ensemble:
        input:
            questions=lambda wildcards: f"results/extracted/{question_archive_id()}",
            models=[
                f"{model_dir(c, m)}/{MODEL_FILE}" for m in MEMBERS for c in CATEGORIES
            ],
            summaries=[
                f"{model_dir(c, m)}/{SUMMARY_FILE}"
                for m in MEMBERS
                for c in CATEGORIES
            ],
            splits=[
                f"{model_dir(c, m)}/{SPLIT_FILE}" for m in MEMBERS for c in CATEGORIES
            ],
        output:
            submission="results/submission.csv",
            members=[f"results/submissions/{member}.csv" for member in MEMBERS],
        log:
            "logs/predict_ensemble.log",
        benchmark:
            "results/benchmarks/predict_ensemble/all.tsv"
        conda:
            "../envs/train.yaml"
        threads: TRAIN["threads"]
        resources:
            gpu=TRAIN["gpus"],
            mem_mb=8000,
        params:
            members=MEMBERS,
            model_dirs={m: {c: model_dir(c, m) for c in CATEGORIES} for m in MEMBERS},
            tta=ENSEMBLE_CONFIG["tta"],
            batch_size=config["eval"]["batch_size"],
        script:
            "../workflow_scripts/predict_ensemble.py"


rule compare_experiments:
    input:
        [path for paths in compared_metrics().values() for path in paths.values()],
    output:
        csv=report(
            "results/experiments.csv",
            caption="../report/experiments.rst",
            category="Evaluation",
            labels={"figure": "experiments table"},
        ),
        markdown="results/experiments.md",
        plot=report(
            "results/plots/experiments.png",
            caption="../report/experiments_plot.rst",
            category="Evaluation",
            labels={"figure": "experiments"},
        ),
    log:
        "logs/eval/experiments.log",
    conda:
        "../envs/plot.yaml"
    params:
        metrics=compared_metrics(),
    script:
        "../workflow_scripts/compare_experiments.py"


rule model_card:
    input:
        summary=f"{model_dir('{category}')}/{SUMMARY_FILE}",
        split=f"{model_dir('{category}')}/{SPLIT_FILE}",
        history=f"{model_dir('{category}')}/{HISTORY_FILE}",
        metrics=metrics_path("{category}", DEFAULT_EXPERIMENT),
    output:
        f"{model_dir('{category}')}/{MODEL_CARD_FILE}",
    log:
        "logs/model_card/default/{category}.log",
    conda:
        "../envs/data.yaml"
    params:
        experiment=DEFAULT_EXPERIMENT,
        configuration=lambda wildcards: reproducing_config(
            wildcards.category, DEFAULT_EXPERIMENT
        ),
    script:
        "../workflow_scripts/model_card.py"


use rule model_card as model_card_experiment with:
    input:
        summary=f"{model_dir('{category}', '{experiment}')}/{SUMMARY_FILE}",
        split=f"{model_dir('{category}', '{experiment}')}/{SPLIT_FILE}",
        history=f"{model_dir('{category}', '{experiment}')}/{HISTORY_FILE}",
        metrics=metrics_path("{category}", "{experiment}"),
    output:
        f"{model_dir('{category}', '{experiment}')}/{MODEL_CARD_FILE}",
    log:
        "logs/model_card/{experiment}/{category}.log",
    params:
        experiment=lambda wildcards: wildcards.experiment,
        configuration=lambda wildcards: reproducing_config(
            wildcards.category, wildcards.experiment
        ),
