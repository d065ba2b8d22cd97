# The synthetic dataset in the real archive layout, for the demo and the tests (demo/synthetic.py).
from demo.archive_names import ARCHIVE_NAMES


rule make_synthetic:
    output:
        archives=[f"{SYNTHETIC['out_dir']}/{name}" for name in ARCHIVE_NAMES.values()],
        manifest=f"{SYNTHETIC['out_dir']}/manifest.csv",
    log:
        "logs/make_synthetic.log",
    conda:
        "../envs/data.yaml"
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.manifest),
        images_per_class=SYNTHETIC["images_per_class"],
        image_size=SYNTHETIC["image_size"],
        seed=SYNTHETIC["seed"],
        faults=SYNTHETIC["faults"],
        questions_per_attribute=SYNTHETIC["questions_per_attribute"],
        difficulty=SYNTHETIC["difficulty"],
    script:
        "../workflow_scripts/make_synthetic.py"
