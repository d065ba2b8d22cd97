# Label statistics: the figures used to decide which labels to merge or drop. One job per
# category draws both figures (a job's start and matplotlib's import cost more than the plots).
from fashionai.outputs import PREVIEW_SUFFIX


rule label_statistics:
    input:
        tree="results/trees/{category}",
        regrouped="results/regrouped/{category}",
    output:
        distribution=report(
            "results/plots/{category}/label_distribution.png",
            caption="../report/label_distribution.rst",
            category="Label statistics",
            subcategory="{category}",
            labels={"category": "{category}", "figure": "label distribution"},
        ),
        previews=report(
            directory("results/plots/{category}/previews"),
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
        seed=config["train"]["seed"],
    script:
        "../workflow_scripts/plot_label_statistics.py"
