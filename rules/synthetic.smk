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
        **{key: value for key, value in SYNTHETIC.items() if key != "out_dir"},
        out_dir=lambda wildcards, output: os.path.dirname(output.manifest),
    script:
        "../workflow_scripts/make_synthetic.py"
