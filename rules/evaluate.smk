# Evaluation on the held-out images (fashionai.evaluation), the summary table, and predictions
# for a test archive (fashionai.prediction).


rule evaluate:
    input:
        model="results/models/{category}/model.keras",
        split="results/models/{category}/split.csv",
        summary="results/models/{category}/training.json",
        decoded="results/labels/decoded.csv",
    output:
        metrics="results/eval/{category}/metrics.json",
        confusion=report(
            "results/eval/{category}/confusion_matrix.png",
            caption="../report/confusion_matrix.rst",
            category="Evaluation",
            subcategory="{category}",
            labels={"category": "{category}", "figure": "confusion matrix"},
        ),
    log:
        "logs/eval/{category}.log",
    benchmark:
        "results/benchmarks/evaluate/{category}.tsv"
    conda:
        "../envs/train.yaml"
    threads: TRAIN["threads"]
    resources:
        gpu=TRAIN["gpus"],
        mem_mb=8000,
    params:
        tta=config["eval"]["tta"],
        batch_size=config["eval"]["batch_size"],
    script:
        "../workflow_scripts/evaluate.py"


rule summarize:
    input:
        expand("results/eval/{category}/metrics.json", category=CATEGORIES),
    output:
        csv=report(
            "results/summary.csv",
            caption="../report/summary.rst",
            category="Evaluation",
            labels={"figure": "summary table"},
        ),
        markdown="results/summary.md",
    log:
        "logs/eval/summary.log",
    conda:
        "../envs/data.yaml"
    params:
        categories=CATEGORIES,
    script:
        "../workflow_scripts/summarize.py"


rule predict:
    input:
        questions=lambda wildcards: f"results/extracted/{question_archive_id()}",
        models=expand("results/models/{category}/model.keras", category=CATEGORIES),
        summaries=expand("results/models/{category}/training.json", category=CATEGORIES),
    output:
        "results/submission.csv",
    log:
        "logs/predict.log",
    benchmark:
        "results/benchmarks/predict.tsv"
    conda:
        "../envs/train.yaml"
    threads: TRAIN["threads"]
    resources:
        gpu=TRAIN["gpus"],
        mem_mb=8000,
    params:
        categories=CATEGORIES,
        batch_size=config["eval"]["batch_size"],
    script:
        "../workflow_scripts/predict.py"
