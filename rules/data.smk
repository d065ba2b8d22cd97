# The data half: archives -> extracted folders -> merged and decoded labels -> label trees.
# An archive's input may be an already-extracted folder, hard-linked in: only an entry added,
# removed or renamed directly in it reruns the job (its modification time; README: Real runs).
rule extract_archive:
    input:
        lambda wildcards: EXTRACTABLE[wildcards.archive],
    output:
        directory(extracted_dir()),
    log:
        "logs/extract/{archive}.log",
    conda:
        "../envs/data.yaml"
    resources:
        mem_mb=1000,
    params:
        **config["extract"],  # max_ratio, max_bytes, max_members
    script:
        "../workflow_scripts/extract_archive.py"


rule merge_labels:
    input:
        [extracted_dir(name) for name in ARCHIVES],
    output:
        MERGED_CSV,
    log:
        "logs/labels/merge_labels.log",
    conda:
        "../envs/data.yaml"
    params:
        archives=list(ARCHIVES),
    script:
        "../workflow_scripts/merge_labels.py"


rule decode_labels:
    input:
        MERGED_CSV,
    output:
        decoded=DECODED_CSV,
        rejected=REJECTED_CSV,
    log:
        "logs/labels/decode_labels.log",
    conda:
        "../envs/data.yaml"
    threads: 4
    script:
        "../workflow_scripts/decode_labels.py"


rule category_tree:
    input:
        DECODED_CSV,
        configured=lambda w: checked(configuration.check_category, w.category, CATEGORIES) or [],
    output:
        directory(tree_dir()),
    log:
        "logs/trees/{category}.log",
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/category_tree.py"


rule regroup:
    input:
        tree_dir(),
    output:
        directory(regrouped_dir()),
    log:
        "logs/regroup/{category}.log",
    conda:
        "../envs/data.yaml"
    params:
        spec=lambda wildcards: (config.get("regroup") or {}).get(wildcards.category),
    script:
        "../workflow_scripts/regroup.py"


# Images checked (training decoder) and the seeded split drawn once: experiments share split keys.
rule split:
    input:
        regrouped_dir(),
    output:
        split=split_file(),
        skipped=skipped_file(),
    log:
        "logs/split/{category}.log",
    conda:
        "../envs/train.yaml"
    threads: TRAIN["threads"]
    resources:
        mem_mb=4000,
    params:
        split={key: TRAIN[key] for key in training.SPLIT_KEYS},
    script:
        "../workflow_scripts/split.py"


rule split_fold:
    input:
        split_file(),
    output:
        fold_file(),
    log:
        "logs/split/{category}/folds{folds}/fold{fold}.log",
    conda:
        "../envs/data.yaml"
    params:
        seed=TRAIN["seed"],
    script:
        "../workflow_scripts/split_fold.py"
