# Training: one model per category, its best weights, history and learning curves.


rule fetch_weights:
    output:
        "resources/weights/{backbone}_imagenet_notop.h5",
    log:
        "logs/fetch_weights/{backbone}.log",
    localrule: True
    conda:
        "../envs/train.yaml"
    params:
        url=TRAIN["weights_url"],
    script:
        "../workflow_scripts/fetch_weights.py"


rule train:
    input:
        tree="results/regrouped/{category}",
        weights=weights_input,
        features=features_input,
        decoded=decoded_input,
    output:
        model="results/models/{category}/model.keras",
        weights="results/models/{category}/best.weights.h5",
        history="results/models/{category}/history.csv",
        split="results/models/{category}/split.csv",
        summary="results/models/{category}/training.json",
    log:
        "logs/train/{category}.log",
    benchmark:
        "results/benchmarks/train/{category}.tsv"
    conda:
        "../envs/train.yaml"
    threads: TRAIN["threads"]
    resources:
        gpu=TRAIN["gpus"],
        mem_mb=16000,
        runtime=24 * 60,
    params:
        settings=train_settings,
    script:
        "../workflow_scripts/train.py"


rule plot_history:
    input:
        history="results/models/{category}/history.csv",
        summary="results/models/{category}/training.json",
    output:
        report(
            "results/plots/{category}/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Training",
            subcategory="{category}",
            labels={"category": "{category}", "figure": "learning curves"},
        ),
    log:
        "logs/plots/{category}/learning_curves.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_history.py"
