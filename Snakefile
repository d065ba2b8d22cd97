# FashionAI attribute training: raw archives -> labels -> label folders -> one model per category
# and experiment. Contract: README.md and schemas/config.schema.yaml.
from snakemake.utils import min_version

min_version("9.0")


report: "report/workflow.rst"


include: "rules/common.smk"  # loads and checks config.yaml
include: "rules/synthetic.smk"
include: "rules/data.smk"
include: "rules/stats.smk"
include: "rules/features.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"


rule all:
    default_target: True
    input:
        all_outputs(),


rule data:
    input:
        data_outputs(),
