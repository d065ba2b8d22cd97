"""A job interrupted by Ctrl-C (SIGINT) or SIGTERM: one log line that names the signal and says
what a rerun does, the exit status of a process killed by the signal, and no traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fashionai.training.resume import Backup, RunState
from tests.training_helpers import subprocess_env

# A job that is interrupted while it works, as by Ctrl-C in the terminal or by Slurm.
CHILD = """
import os, signal, sys, time
from pathlib import Path
from fashionai.joblog import job_log
from fashionai.training.resume import Backup
backup = Path(sys.argv[3])
with job_log(sys.argv[1], resume=Backup(backup).interrupted if backup.name else None) as log:
    log("working")
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    time.sleep(60)
"""


@pytest.mark.parametrize(
    ("signum", "epochs", "message"),
    [
        ("SIGINT", None, "interrupted by Ctrl-C (SIGINT); rerun the same command to continue"),
        ("SIGTERM", None, "interrupted by SIGTERM; rerun the same command to continue"),
        (
            "SIGINT",
            3,
            "interrupted by Ctrl-C (SIGINT); epochs 0..2 finished; "
            "rerun the same command to resume from epoch 3",
        ),
        (
            "SIGTERM",
            0,
            "interrupted by SIGTERM; no epoch finished; rerun the same command to start again",
        ),
    ],
)
def test_an_interrupted_job_says_what_a_rerun_does(
    tmp_path: Path, signum: str, epochs: int | None, message: str
) -> None:
    backup = ""
    if epochs is not None:
        backup = str(tmp_path / ".backup")
        Path(backup).mkdir()
        if epochs:
            state = RunState(signature={}, epoch=epochs)
            Backup(Path(backup)).state_path.write_text(state.to_json())
    log = tmp_path / "job.log"
    command = [sys.executable, "-c", CHILD, str(log), signum, backup]
    result = subprocess.run(
        command, capture_output=True, text=True, env=subprocess_env(), timeout=60
    )
    assert result.returncode == 128 + getattr(signal, signum)
    assert (result.stdout, result.stderr) == ("", "")  # no traceback in the terminal
    lines = log.read_text().splitlines()
    assert lines[-1].endswith(f"] {message}"), lines
    assert not any("Traceback" in line for line in lines)


FAILING = """
import sys
from fashionai.joblog import job_log
with job_log(sys.argv[1]) as log:
    log("working")
    raise {error}
"""


@pytest.mark.parametrize(
    ("error", "last_line", "traceback"),
    [
        (
            "ValueError('x.csv, row 3: bad code')",
            "FAILED: ValueError: x.csv, row 3: bad code",
            False,
        ),
        (
            "FileNotFoundError('weights.h5 does not exist')",
            "FAILED: FileNotFoundError: weights.h5 does not",
            False,
        ),
        ("TypeError('a bug')", "FAILED: TypeError: a bug", True),
    ],
    ids=["bad input", "missing file", "bug"],
)
def test_an_expected_failure_ends_in_its_message_alone(
    tmp_path: Path, error: str, last_line: str, traceback: bool
) -> None:
    log = tmp_path / "job.log"
    command = [sys.executable, "-c", FAILING.format(error=error), str(log)]
    result = subprocess.run(
        command, capture_output=True, text=True, env=subprocess_env(), timeout=60
    )
    assert result.returncode == 1
    assert ("Traceback" in result.stderr) == traceback, result.stderr
    assert result.stdout == "" and (traceback or result.stderr == "")
    assert f"] {last_line}" in log.read_text().splitlines()[-1]
