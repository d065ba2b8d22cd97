# The frozen backbone's features of each image (view), once for the head's epochs (cache_features).
rule features:
    input:
        tree=regrouped_dir(),
        split=split_input,
        weights=weights_input,
    output:
        directory(features_dir()),
    log:
        "logs/features/{category}/{feature_set}.log",
    benchmark:
        "results/benchmarks/features/{category}/{feature_set}.tsv"
    priority: 1
    conda:
        "../envs/train.yaml"
    threads: TRAIN["threads"]
    resources:
        gpu=TRAIN["gpus"],
        mem_mb=8000,
        runtime=12 * 60,
    params:
        settings=job_settings,
    script:
        "../workflow_scripts/extract_features.py"
