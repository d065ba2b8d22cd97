# Label statistics: the figures used to decide which labels to merge or drop.


rule label_distribution:
    input:
        tree="results/trees/{category}",
        regrouped="results/regrouped/{category}",
    output:
        report(
            "results/plots/{category}/label_distribution.png",
            caption="../report/label_distribution.rst",
            category="Label statistics",
            subcategory="{category}",
            labels={"category": "{category}", "figure": "label distribution"},
        ),
    log:
        "logs/plots/{category}/label_distribution.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow_scripts/plot_label_distribution.py"


rule preview_grids:
    input:
        "results/trees/{category}",
    output:
        report(
            directory("results/plots/{category}/previews"),
            patterns=["{label}.png"],
            caption="../report/preview_grids.rst",
            category="Label statistics",
            subcategory="{category}",
            labels={"category": "{category}", "figure": "preview: {label}"},
        ),
    log:
        "logs/plots/{category}/preview_grids.log",
    conda:
        "../envs/plot.yaml"
    params:
        per_label=9,
        seed=config["train"]["seed"],
    script:
        "../workflow_scripts/plot_preview_grids.py"
