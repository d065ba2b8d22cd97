# Training: one model per experiment and category (or group, train.grouped), its learning curves.
# The TensorFlow jobs (features too) have priority 1: they start before figures that can wait.
TRAINED = {key: model_file(name) for key, name in TRAINED_FILES.items()}
TRAIN_RESOURCES = dict(gpu=TRAIN["gpus"], mem_mb=16000, runtime=24 * 60)


rule fetch_weights:
    output:
        training.fetched_weights("{backbone}"),
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
        **TRAINED,
    log:
        train_log(),
    benchmark:
        "results/benchmarks/train/{experiment}/{category}.tsv"
    priority: 1
    conda:
        "../envs/train.yaml"
    threads: training_threads
    resources:
        **TRAIN_RESOURCES,
    params:
        settings=job_settings,
    script:
        "../workflow_scripts/train.py"


# train.grouped: one model per group, each category's files linked from it (group_member).
rule train_group:
    input:
        trees=group_input(lambda wildcards: regrouped_dir(wildcards.category)),
        splits=group_input(split_input),
        skipped=group_input(lambda wildcards: skipped_file(wildcards.category)),
        weights=weights_input,
        features=group_input(features_input),
        decoded=decoded_input,
    output:
        model=model_file(MODEL_FILE, GROUP),
        weights=model_file(WEIGHTS_FILE, GROUP),
        history=model_file(HISTORY_FILE, GROUP),
        summary=model_file(SUMMARY_FILE, GROUP),
        members=directory(members_dir()),
    log:
        train_log(GROUP),
    benchmark:
        "results/benchmarks/train_group/{experiment}/{group}.tsv"
    wildcard_constraints:
        experiment=one_of(GROUPED),
    priority: 1
    conda:
        "../envs/train.yaml"
    threads: training_threads
    resources:
        **TRAIN_RESOURCES,
    params:
        settings=job_settings,
        categories=lambda wildcards: GROUPS[wildcards.group],
    script:
        "../workflow_scripts/train_group.py"


rule group_member:
    input:
        lambda w: model_file(SUMMARY_FILE, GROUP_OF[w.category], w.experiment),
    output:
        **TRAINED,
    log:
        "logs/group_member/{experiment}/{category}.log",
    wildcard_constraints:
        experiment=one_of(GROUPED),
        category=one_of(GROUP_OF),
    localrule: True
    conda:
        "../envs/data.yaml"
    params:
        members=lambda w: member_dir(w.category, GROUP_OF[w.category], w.experiment),
    script:
        "../workflow_scripts/group_member.py"


ruleorder: group_member > train


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
