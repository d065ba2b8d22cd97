"""Logging for workflow jobs: every rule writes its log file through this."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

RERUN = "rerun the same command to continue"
# What the package raises for bad input and for files it cannot read, write or download: the
# message names it and says what to do, so the job ends with it alone, without a traceback.
EXPECTED = (ValueError, OSError)

# TensorFlow's C++ start-up notices, each a whole line (absl's, oneDNN's, the unused CPU
# instructions, CUDA plugins registered twice): printed however TF_CPP_MIN_LOG_LEVEL and
# GLOG_minloglevel are set, so :func:`without_notices` drops them.
_C_LOG = r"(?:[IWEF]\d{4} [\d:.]+ +\d+ |\d{4}-\d\d-\d\d [\d:.]+: [IWEF] )(?:\S+/)?"
NOTICES = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    _C_LOG + r"port\.cc:\d+\] oneDNN custom operations are on\. .*",
    _C_LOG + r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available "
    r"CPU instructions in performance-critical operations\.",
    r"To enable the following instructions: [\w ]+, in other operations, rebuild TensorFlow "
    r"with the appropriate compiler flags\.",
    _C_LOG + r"cuda_(?:dnn|fft|blas)\.cc:\d+\] Unable to register cu(?:DNN|FFT|BLAS) factory: "
    r"Attempting to register factory for plugin cu(?:DNN|FFT|BLAS) when one has already been "
    r"registered",
    _C_LOG + r"computation_placer\.cc:\d+\] computation placer already registered\. .*",
)
NOTICE = re.compile("|".join(f"(?:{pattern})" for pattern in NOTICES))


class Terminated(SystemExit):
    """The job got a termination signal; the process exits with 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signal = signal.Signals(signum)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def relay() -> None:
    """Copy stdin's lines but :data:`NOTICES` to stdout until stdin closes; signals do not stop
    it, so a job's last lines are kept however it ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for line in sys.stdin.buffer:
        if not NOTICE.fullmatch(line.rstrip(b"\r\n").decode(errors="replace")):
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()


@contextmanager
def without_notices(fds: Sequence[int], sink: int) -> Iterator[None]:
    """Send what the process and its children write to ``fds`` to ``sink`` without
    :data:`NOTICES`, through a :func:`relay` process that outlives this one if it has to (a
    crash, os._exit, a signal), so no line is lost."""
    sys.stdout.flush()
    sys.stderr.flush()
    command = [sys.executable, "-I", "-S", __file__]
    relaying = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=sink)
    saved = [os.dup(fd) for fd in fds]
    try:
        for fd in fds:
            os.dup2(relaying.stdin.fileno(), fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(fds, saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        relaying.stdin.close()
        with suppress(subprocess.TimeoutExpired):  # a child still writes; the relay outlives it
            relaying.wait(timeout=10)


@contextmanager
def job_log(
    path: str | Path, resume: Callable[[], str] | None = None
) -> Iterator[Callable[[str], None]]:
    """Send the job's stdout and stderr (native libraries' too) to its log file and yield a
    ``log`` function, whose lines carry the time since the job started.

    A failure is logged before it propagates: an expected one (:data:`EXPECTED`) ends the job
    with that line and exit status 1, a bug with its traceback. A SIGTERM (Slurm's time limit,
    ``scancel``, Snakemake) or Ctrl-C unwinds the job like an error (partial outputs removed),
    is logged with what a rerun does (``resume()``'s words) and exits with 128 + its number.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    saved_handler = signal.signal(signal.SIGTERM, _terminate)

    def log(message: str) -> None:
        sys.stdout.write(f"[{time.monotonic() - start:8.1f}s] {message}\n")
        sys.stdout.flush()

    try:
        with path.open("wb") as handle, without_notices((1, 2), handle.fileno()):
            try:
                yield log
                log("finished")
            except (Terminated, KeyboardInterrupt) as error:
                stop = error if isinstance(error, Terminated) else Terminated(signal.SIGINT)
                how = "Ctrl-C (SIGINT)" if stop.signal == signal.SIGINT else stop.signal.name
                log(f"interrupted by {how}; {resume() if resume else RERUN}")
                raise stop from None
            except BaseException as error:
                log(f"FAILED: {type(error).__name__}: {error}")
                if isinstance(error, EXPECTED):
                    raise SystemExit(1) from None
                raise
    finally:
        signal.signal(signal.SIGTERM, saved_handler)


if __name__ == "__main__":
    relay()
