"""Rule category_tree: one folder per label of a category, images hard-linked into it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.decoding import read_decoded
from fashionai.joblog import job_log
from fashionai.trees import build_category_tree

with job_log(snakemake.log[0]) as log:
    category = snakemake.wildcards.category
    decoded = read_decoded(snakemake.input[0], ["attribute", "image_name", "image", "label_index"])
    build_category_tree(decoded, category, Path(snakemake.output[0]), log=log)
