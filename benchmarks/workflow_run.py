"""One timed ``snakemake`` call of the workflow in a benchmark's work folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def run_snakemake(
    work: Path, configfiles: Iterable[Path], *args: str, gpus: int = 1
) -> tuple[float, str]:
    """``snakemake`` in ``work`` with ``configfiles`` on 2 cores and ``gpus`` GPUs, then
    ``args`` (options, targets); its wall time (s) and output. Exits naming ``work`` when it
    fails."""
    command = [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
        "--configfile", *map(str, configfiles), "--cores", "2", "--resources", f"gpu={gpus}",
        *args,
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode:
        sys.exit(f"snakemake failed in {work}:\n{result.stderr[-3000:]}")
    return time.monotonic() - started, result.stdout + result.stderr
