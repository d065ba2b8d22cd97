# Named experiments (config experiments:): the training, learning curves and evaluation of the
# default experiment (the train: block) again, with each experiment's merged settings, under
# results/experiments/{experiment}/. The rules' params, weights and feature cache follow the
# {experiment} wildcard (rules/common.smk).

EXPERIMENT = "results/experiments/{experiment}"


use rule train as train_experiment with:
    output:
        model=f"{EXPERIMENT}/models/{{category}}/model.keras",
        weights=f"{EXPERIMENT}/models/{{category}}/best.weights.h5",
        history=f"{EXPERIMENT}/models/{{category}}/history.csv",
        split=f"{EXPERIMENT}/models/{{category}}/split.csv",
        summary=f"{EXPERIMENT}/models/{{category}}/training.json",
    log:
        "logs/experiments/{experiment}/train/{category}.log",
    benchmark:
        "results/benchmarks/train_experiment/{experiment}/{category}.tsv"


use rule plot_history as plot_history_experiment with:
    input:
        history=f"{EXPERIMENT}/models/{{category}}/history.csv",
        summary=f"{EXPERIMENT}/models/{{category}}/training.json",
    output:
        f"{EXPERIMENT}/plots/{{category}}/learning_curves.png",
    log:
        "logs/experiments/{experiment}/plots/{category}/learning_curves.log",


use rule evaluate as evaluate_experiment with:
    input:
        model=f"{EXPERIMENT}/models/{{category}}/model.keras",
        split=f"{EXPERIMENT}/models/{{category}}/split.csv",
        summary=f"{EXPERIMENT}/models/{{category}}/training.json",
        decoded="results/labels/decoded.csv",
    output:
        metrics=f"{EXPERIMENT}/eval/{{category}}/metrics.json",
        confusion=f"{EXPERIMENT}/eval/{{category}}/confusion_matrix.png",
    log:
        "logs/experiments/{experiment}/eval/{category}.log",
    benchmark:
        "results/benchmarks/evaluate_experiment/{experiment}/{category}.tsv"
