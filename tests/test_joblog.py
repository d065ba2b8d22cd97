"""A job interrupted by Ctrl-C (SIGINT) or SIGTERM: one log line that names the signal and says
what a rerun does, the exit status of a process killed by the signal, and no traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fashionai.joblog import RERUN
from fashionai.training.resume import Backup, RunState
from tests.training_helpers import subprocess_env

# A job that is interrupted while it works, as by Ctrl-C in the terminal or by Slurm.
# The child answers Ctrl-C as a process started from a terminal does, even where the test runs
# in a background job (which starts its children with SIGINT ignored, and Python keeps that).
CHILD = """
import os, signal, sys, time
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
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


# TensorFlow's start-up notices as TensorFlow 2.21 prints them (the CPU build; the CUDA build's
# as users report them), which job logs and the predict command leave out.
NOTICE_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796676954.235019    6822 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796676954.285875    6822 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI FMA, in other operations, "
    "rebuild TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1751448150.986970   10148 cuda_dnn.cc:8579] Unable to register cuDNN factory: "
    "Attempting to register factory for plugin cuDNN when one has already been registered",
    "2025-07-02 09:22:30.972636: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:467] "
    "Unable to register cuFFT factory: Attempting to register factory for plugin cuFFT when one "
    "has already been registered",
    "W0000 00:00:1751448151.003754   10148 computation_placer.cc:177] computation placer already "
    "registered. Please check linkage and avoid linking the same target more than once.",
]
# Lines like them that are not notices: they stay.
ORDINARY = [
    "an ordinary line",
    "E0000 00:00:1751448150.986970   10148 cuda_dnn.cc:8579] Could not create cudnn handle",
    "note: oneDNN custom operations are on. Make of it what you will",
    '  File "train.py", line 3, in <module>',
]

# A job whose native code writes notices and ordinary lines to stderr (fd 2) between log lines
# and Python's prints, then ends as sys.argv[2] says: well, by a bug's exception, by os._exit
# (as a crash would) or by a SIGTERM.
NOISY = """
import os, signal, sys
from fashionai.joblog import job_log
notices, ordinary = {notices!r}, {ordinary!r}
with job_log(sys.argv[1]) as log:
    log("start")
    for notice, line in zip(notices, ordinary * 2):
        os.write(2, (notice + "\\n" + line + "\\n").encode())
    print("printed", flush=True)
    sys.stderr.write("x" * 300_000 + "\\n")  # more than a pipe holds, in one write
    log("middle")
    os.write(2, b"last words\\n")
    if sys.argv[2] == "bug":
        raise TypeError("a bug")
    if sys.argv[2] == "exit":
        os._exit(3)
    if sys.argv[2] == "SIGTERM":
        os.kill(os.getpid(), signal.SIGTERM)
"""


def plain(lines: list[str]) -> list[str]:
    """Log lines without the time of the ``log`` lines."""
    return [line.split("] ", 1)[1] if line.startswith("[") else line for line in lines]


@pytest.mark.parametrize(
    ("end", "status", "last_line"),
    [
        ("well", 0, "finished"),
        ("bug", 1, "FAILED: TypeError: a bug"),
        ("exit", 3, None),
        ("SIGTERM", 128 + signal.SIGTERM, f"interrupted by SIGTERM; {RERUN}"),
    ],
)
def test_the_log_keeps_every_line_in_order_but_tensorflows_start_up_notices(
    tmp_path: Path, end: str, status: int, last_line: str | None
) -> None:
    log = tmp_path / "job.log"
    child = NOISY.format(notices=NOTICE_LINES, ordinary=ORDINARY)
    result = subprocess.run(
        [sys.executable, "-c", child, str(log), end],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
    )
    assert result.returncode == status, result.stderr
    kept = (ORDINARY * 2)[: len(NOTICE_LINES)]
    ending = ["last words", last_line] if last_line else ["last words"]
    assert plain(log.read_text().splitlines()) == [
        "start",
        *kept,
        "printed",
        "x" * 300_000,
        "middle",
        *ending,
    ]


def test_importing_tensorflow_leaves_no_notice_in_the_log(tmp_path: Path) -> None:
    """TensorFlow itself, without the suite's TF_CPP_MIN_LOG_LEVEL."""
    log = tmp_path / "job.log"
    child = (
        "import sys\nfrom fashionai.joblog import job_log\n"
        "with job_log(sys.argv[1]) as log:\n    import tensorflow\n    log('imported')\n"
    )
    env = {**subprocess_env(), "TF_CPP_MIN_LOG_LEVEL": "0"}
    command = [sys.executable, "-c", child, str(log)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert plain(log.read_text().splitlines()) == ["imported", "finished"]
