# Evaluation (held-out predictions, no TensorFlow), model cards, summaries, comparison, submission.
rule evaluate:
    input:
        held_out=member_files(HELD_OUT_FILE),
        summaries=member_files(SUMMARY_FILE),
        splits=member_files(SPLIT_FILE),
        decoded=DECODED_CSV,
    output:
        metrics=eval_file(METRICS_FILE, experiment="{evaluated}"),
        confusion=report(
            eval_file(CONFUSION_FILE, experiment="{evaluated}"),
            caption="../report/confusion_matrix.rst",
            category="Evaluation",
            subcategory="{evaluated}",
            labels={"category": "{category}", "figure": "confusion matrix"},
        ),
    log:
        "logs/evaluate/{evaluated}/{category}.log",
    conda:
        "../envs/plot.yaml"
    params:
        evaluation=lambda wildcards: EVALUATIONS[wildcards.evaluated],  # members, combine, tta
    script:
        "../workflow_scripts/evaluate.py"


rule model_card:
    input:
        summary=model_file(SUMMARY_FILE),
        split=model_file(SPLIT_FILE),
        history=model_file(HISTORY_FILE),
        metrics=eval_file(METRICS_FILE),
    output:
        model_file(MODEL_CARD_FILE),
    log:
        "logs/model_card/{experiment}/{category}.log",
    conda:
        "../envs/data.yaml"
    params:
        configuration=reproducing_config,
    script:
        "../workflow_scripts/model_card.py"


rule summarize:
    input:
        [eval_file(METRICS_FILE, category) for category in CATEGORIES],
    output:
        csv=report(
            summary_file("csv"),
            caption="../report/summary.rst",
            category="Evaluation",
            labels={"experiment": "{experiment}", "figure": "summary table"},
        ),
        markdown=summary_file("md"),
    log:
        "logs/summarize/{experiment}.log",
    conda:
        "../envs/data.yaml"
    params:
        categories=CATEGORIES,
    script:
        "../workflow_scripts/summarize.py"


rule compare_experiments:
    input:
        [path for paths in COMPARED.values() for path in paths.values()],
    output:
        csv=report(
            EXPERIMENTS_TABLE,
            caption="../report/experiments.rst",
            category="Evaluation",
            labels={"figure": "experiments table"},
        ),
        markdown=EXPERIMENTS_MARKDOWN,
        means=EXPERIMENTS_MEANS,
        plot=report(
            EXPERIMENTS_PLOT,
            caption="../report/experiments_plot.rst",
            category="Evaluation",
            labels={"figure": "experiments"},
        ),
    log:
        "logs/compare_experiments.log",
    conda:
        "../envs/plot.yaml"
    params:
        metrics=COMPARED,
    script:
        "../workflow_scripts/compare_experiments.py"


rule predict:
    input:
        questions=lambda wildcards: extracted_dir(archive_id(config["questions"])),
        models=expand(model_file(MODEL_FILE), experiment=MEMBERS, category=CATEGORIES),
        summaries=expand(model_file(SUMMARY_FILE), experiment=MEMBERS, category=CATEGORIES),
        splits=expand(model_file(SPLIT_FILE), experiment=MEMBERS, category=CATEGORIES),
    output:
        submission=submission_file(),
        members=[submission_file(member) for member in MEMBERS],
    log:
        "logs/predict.log",
    benchmark:
        "results/benchmarks/predict/all.tsv"
    conda:
        "../envs/train.yaml"
    threads: TRAIN["threads"]
    resources:
        gpu=TRAIN["gpus"],
        mem_mb=8000,
        runtime=4 * 60,
    params:
        members=MEMBERS,
        model_dirs={m: {c: model_dir(c, m) for c in CATEGORIES} for m in MEMBERS},
        tta=(config["ensemble"] or {}).get("tta", False),
        batch_size=config["eval"]["batch_size"],
    script:
        "../workflow_scripts/predict.py"
