# Training: one model per experiment and category, with its best weights, history, split,
# held-out predictions and learning curves. Paths come from fashionai.outputs.


rule fetch_weights:
    output:
        f"{WEIGHTS_DIR}/{notop_file_name('{backbone}')}",
    log:
        "logs/fetch_weights/{backbone}.log",
    localrule: True
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/fetch_weights.py"


rule train:
    input:
        tree=regrouped_dir(),
        split=split_input,
        skipped=skipped_file(),
        weights=weights_input,
        features=features_input,
        decoded=decoded_input,
    output:
        model=model_file(MODEL_FILE),
        weights=model_file(WEIGHTS_FILE),
        history=model_file(HISTORY_FILE),
        split=model_file(SPLIT_FILE),
        summary=model_file(SUMMARY_FILE),
        held_out=model_file(HELD_OUT_FILE),
    log:
        train_log(),
    benchmark:
        "results/benchmarks/train/{experiment}/{category}.tsv"
    conda:
        "../envs/train.yaml"
    threads: TRAIN["threads"]
    resources:
        gpu=TRAIN["gpus"],
        mem_mb=16000,
        runtime=24 * 60,
    params:
        settings=lambda wildcards: model_settings(EXPERIMENTS[wildcards.experiment]),
    script:
        "../workflow_scripts/train.py"


rule plot_history:
    input:
        history=model_file(HISTORY_FILE),
        summary=model_file(SUMMARY_FILE),
    output:
        report(
            curves_file(),
            caption="../report/learning_curves.rst",
            category="Training",
            subcategory="{experiment}",
            labels={"category": "{category}", "figure": "learning curves"},
        ),
    log:
        "logs/plot_history/{experiment}/{category}.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_history.py"
