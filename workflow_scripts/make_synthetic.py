"""Rule make_synthetic: the synthetic dataset in the real archive layout."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from fashionai.joblog import job_log
from demo.synthetic import generate_dataset

with job_log(snakemake.log[0]) as log:
    params = snakemake.params
    manifest = generate_dataset(
        Path(params.out_dir),
        images_per_class=params.images_per_class,
        image_size=params.image_size,
        seed=params.seed,
        faults=params.faults,
        questions_per_attribute=params.questions_per_attribute,
        difficulty=params.difficulty,
        log=log,
    )
    log(f"{len(manifest)} annotation rows written; expected outcome per row:")
    log(manifest["expected"].value_counts().to_string())
