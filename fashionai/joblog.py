"""Logging for workflow jobs: every rule writes its log file through this."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

RERUN = "rerun the same command to continue"
# What the package raises for bad input (ValueError: a file, row, member or key that does not
# fit, the message naming it) and for files it cannot read, write or download (OSError): the
# message says what to do, so the job ends with it alone, without a traceback.
EXPECTED = (ValueError, OSError)


class Terminated(SystemExit):
    """The job got a termination signal; the process exits with 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signal = signal.Signals(signum)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextmanager
def job_log(
    path: str | Path, resume: Callable[[], str] | None = None
) -> Iterator[Callable[[str], None]]:
    """Send the job's stdout and stderr to its log file and yield a ``log`` function.

    The redirection is at the file-descriptor level, so messages of native libraries
    (TensorFlow's C++ runtime) land in the log too. Each line written through ``log`` carries
    the time since the job started, so long steps show their progress; a failure is logged
    with its message before it propagates to Snakemake; an expected one (:data:`EXPECTED`)
    ends the job with that one line and exit status 1, anything else (a bug) with its
    traceback. A SIGTERM (a Slurm time limit,
    ``scancel``, Snakemake stopping its jobs) or a Ctrl-C (SIGINT) unwinds the job like an
    error, so outputs being written are removed and a training backup stays for a rerun; it is
    logged in one line that names the signal and says what a rerun does (``resume()``'s words,
    e.g. the epoch a training job resumes from), and the process exits with 128 + the signal's
    number, as if killed by it, without a traceback.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    saved_handler = signal.signal(signal.SIGTERM, _terminate)
    with path.open("w", buffering=1) as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)

        def log(message: str) -> None:
            sys.stdout.write(f"[{time.monotonic() - start:8.1f}s] {message}\n")
            sys.stdout.flush()

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
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, saved in enumerate(saved_fds, start=1):
                os.dup2(saved, fd)
                os.close(saved)
