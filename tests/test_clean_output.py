"""A run that goes well prints no exception, traceback, stack frame or TensorFlow start-up notice:
the demo's dry run, the first screen a user sees (a dry run with experiments:
tests/test_experiments.py; the shared full run's terminal and logs:
tests/test_workflow_train.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from fashionai.joblog import NOTICE
from tests.workflow_helpers import REPO, SNAKEMAKE

# What a failure's report looks like: Python's traceback header, an exception's class name, a
# stack frame, and Snakemake's line for script rules, which have no shell command to print.
ALARMING = re.compile(r"Traceback|Exception|^\s+File \"|Shell command: None", re.MULTILINE)


def alarming_lines(text: str) -> list[str]:
    """The lines of ``text`` that look like a failure, and TensorFlow's start-up notices."""
    lines = text.splitlines()
    return [line for line in lines if ALARMING.search(line) or NOTICE.fullmatch(line)]


def test_the_demos_dry_run_prints_no_exception(tmp_path: Path) -> None:
    configfiles = ["config.yaml", "demo/config.yaml"]  # as `make demo` runs
    command = [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
        "--cores", "2", "--dry-run", "--configfile", *(str(REPO / f) for f in configfiles),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "This was a dry-run" in output
    assert alarming_lines(output) == []
