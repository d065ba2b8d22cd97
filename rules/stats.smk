# Label statistics: the figures used to decide which labels to merge or drop. One job per
# category draws both figures (a job's start and matplotlib's import cost more than the plots).
rule label_statistics:
    input:
        tree=tree_dir(),
        regrouped=regrouped_dir(),
    output:
        distribution=report(
            label_plot(),
            caption="../report/label_distribution.rst",
            category="Label statistics",
            subcategory="{category}",
            labels={"category": "{category}", "figure": "label distribution"},
        ),
        previews=report(
            directory(previews_dir()),
            patterns=[f"{{label}}{PREVIEW_SUFFIX}"],
            caption="../report/preview_grids.rst",
            category="Label statistics",
            subcategory="{category}",
            labels={"category": "{category}", "figure": "preview: {label}"},
        ),
    log:
        "logs/plots/{category}/label_statistics.log",
    conda:
        "../envs/plot.yaml"
    params:
        per_label=9,
        seed=TRAIN["seed"],
    script:
        "../workflow_scripts/plot_label_statistics.py"
