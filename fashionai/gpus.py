"""Which GPUs a workflow job uses, chosen in its own process before TensorFlow starts.

Snakemake counts the ``gpu`` resource but does not say which GPU a job gets, so a GPU rule's
script calls :func:`claim_gpus`: an ``flock`` per GPU, held until the process ends however it
ends. The README's "GPUs" section gives the rules.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

LOCK_DIR_ENV = "FASHIONAI_GPU_LOCK_DIR"
DEFAULT_LOCK_DIR = "/tmp/fashionai-gpu-locks"
POLL_ENV = "FASHIONAI_GPU_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 30.0
POLL_RANGE = (0.1, 3600.0)  # seconds between tries of a waiting job
VISIBLE = "CUDA_VISIBLE_DEVICES"
SLURM_GPU_VARIABLES = (VISIBLE, "SLURM_STEP_GPUS", "SLURM_JOB_GPUS")

GPU_LINE = re.compile(r"^GPU (\d+): (.*?)(?: \(UUID: ([^)]+)\))?$")

_held: list[int] = []  # the lock files this process holds, never closed


class NvidiaSmiError(RuntimeError):
    """nvidia-smi is missing (``missing``) or failed; the message says which, and why."""

    def __init__(self, message: str, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True)
class Gpu:
    """One GPU as ``nvidia-smi -L`` lists it."""

    index: str
    name: str
    uuid: str


def nvidia_smi(*args: str) -> str:
    """The standard output of ``nvidia-smi ARGS``; NvidiaSmiError if it is missing or fails."""
    try:
        result = subprocess.run(
            ["nvidia-smi", *args], capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise NvidiaSmiError("nvidia-smi not found (no NVIDIA driver on PATH)", True) from None
    except subprocess.TimeoutExpired:
        raise NvidiaSmiError("nvidia-smi did not answer within 60 s", False) from None
    if result.returncode != 0:
        detail = (result.stdout + result.stderr).strip().splitlines()
        reason = detail[0] if detail else "no message"
        raise NvidiaSmiError(f"nvidia-smi failed (exit {result.returncode}): {reason}", False)
    return result.stdout


def list_gpus() -> list[Gpu]:
    """The GPUs ``nvidia-smi -L`` lists (MIG instances aside); NvidiaSmiError as nvidia_smi."""
    return [
        Gpu(match[1], match[2], match[3] or "")
        for line in nvidia_smi("-L").splitlines()
        if (match := GPU_LINE.match(line.strip()))
    ]


def gpu_pool(gpus: list[Gpu], visible: str | None) -> list[tuple[str, str]]:
    """The GPUs jobs are placed on, as (``CUDA_VISIBLE_DEVICES`` entry, lock name) pairs: all of
    ``gpus``, or the entries (indices or UUIDs) of ``visible``, the workflow's. ValueError for an
    entry that is none of ``gpus`` or names a GPU twice (a job would wait for itself)."""
    # Each GPU's index and UUID -> its lock file name: its UUID (or index).
    locks = {key: gpu.uuid or f"gpu{gpu.index}" for gpu in gpus for key in (gpu.index, gpu.uuid)}
    if visible is None:
        return [(gpu.index, locks[gpu.index]) for gpu in gpus]
    pool: list[tuple[str, str]] = []
    named: dict[str, str] = {}  # lock name -> the entry that named it first
    for entry in (part.strip() for part in visible.split(",") if part.strip()):
        # CUDA reads an index as a number: 00 is GPU 0.
        index = str(int(entry)) if entry.isascii() and entry.isdigit() else entry
        if gpus and index not in locks:
            listed = ", ".join(f"{gpu.index} ({gpu.uuid})" for gpu in gpus)
            raise ValueError(
                f"{VISIBLE}={visible!r}: {entry!r} is none of the GPUs nvidia-smi lists: {listed}"
            )
        name = locks.get(index) or re.sub(r"[^\w.-]", "_", index)  # no GPU list: the entry
        if name in named:
            raise ValueError(
                f"{VISIBLE}={visible!r}: names one GPU twice ({named[name]!r} and {entry!r}: "
                f"{name}); list each GPU once"
            )
        named[name] = entry
        pool.append((index, name))
    return pool


def claim_gpus(
    count: int | str,
    log: Callable[[str], None] = print,
    environ: MutableMapping[str, str] = os.environ,
) -> list[str] | None:
    """Give this process ``count`` GPUs of its own, before TensorFlow starts (it reads
    ``CUDA_VISIBLE_DEVICES`` once); their entries, or None when no GPU was found."""
    count = int(count)
    if count < 0:
        raise ValueError(f"the gpu resource must be 0 or more, not {count}")
    assigned = next((environ[name] for name in SLURM_GPU_VARIABLES if environ.get(name)), None)
    # gpu=0 with GPUs from Slurm: the job asked for them another way (--gres in the profile).
    slurm_gpus = "SLURM_JOB_ID" in environ and assigned is not None
    if slurm_gpus and (count == 0 or len(assigned.split(",")) <= count):
        slurm = ", ".join(
            f"{name}={environ[name]}" for name in SLURM_GPU_VARIABLES if name in environ
        )
        log(f"GPUs: Slurm job {environ['SLURM_JOB_ID']} was given {slurm}; used as it is")
        return environ[VISIBLE].split(",") if environ.get(VISIBLE) else None
    if count == 0:
        environ[VISIBLE] = ""
        log(f"GPUs: none asked for (gpu=0): {VISIBLE}=''")
        return []
    try:
        gpus, why_none = list_gpus(), "nvidia-smi lists no GPU"
    except NvidiaSmiError as error:
        gpus, why_none = [], str(error)
    visible = environ.get(VISIBLE)
    if visible is not None and not visible.strip():
        why_none = f"{VISIBLE} is empty"
    pool = gpu_pool(gpus, visible)
    if not pool:
        log(f"GPUs: none found ({why_none}); running without, {VISIBLE} left as it is")
        return None
    if not gpus:
        log(f"GPUs: {why_none}; placing jobs on {VISIBLE}={visible} as it is")
    entries = [entry for entry, _ in pool]
    if count > len(pool):
        raise RuntimeError(
            f"the job asks for {count} GPUs (train.gpus) but there are {len(pool)} to place "
            f"jobs on ({', '.join(entries)}): lower train.gpus"
        )
    lock_dir = lock_folder(environ)
    interval = _seconds(environ.get(POLL_ENV) or str(DEFAULT_POLL_SECONDS))
    while (devices := _try_claim(pool, count, lock_dir)) is None:
        log(
            f"GPUs: waiting for {count} of {', '.join(entries)}: all held by other jobs "
            f"(lock files in {lock_dir}); next try in {interval:g} s"
        )
        time.sleep(interval)
    environ[VISIBLE] = ",".join(devices)
    environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    log(
        f"GPUs: claimed {', '.join(devices)} of {', '.join(entries)} at "
        f"{datetime.now().astimezone().isoformat(timespec='seconds')}: {VISIBLE}={environ[VISIBLE]}"
    )
    return devices


def _seconds(value: str) -> float:
    """``$FASHIONAI_GPU_POLL_SECONDS``, in POLL_RANGE (faster floods the log with waiting lines;
    slower leaves a freed GPU idle) or ValueError."""
    low, high = POLL_RANGE
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not low <= seconds <= high:  # nan too
        raise ValueError(
            f"{POLL_ENV}={value!r}: not a number of seconds from {low:g} to {high:g}; "
            f"set it in that range or unset it (default {DEFAULT_POLL_SECONDS:g})"
        )
    return seconds


def lock_folder(environ: MutableMapping[str, str]) -> Path:
    """The folder of the GPU lock files, made if missing and open to every user; RuntimeError
    naming it when it cannot be made."""
    lock_dir = Path(environ.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR)
    if lock_dir.is_dir():
        return lock_dir
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        problem = "a file, not a folder" if lock_dir.exists() else f"cannot be made ({error})"
        raise lock_folder_error(lock_dir, problem) from None
    with contextlib.suppress(OSError):  # every user's jobs share the machine's GPUs
        lock_dir.chmod(0o1777)
    return lock_dir


def lock_folder_error(lock_dir: Path, problem: str) -> RuntimeError:
    return RuntimeError(
        f"the GPU lock folder {str(lock_dir)!r} (${LOCK_DIR_ENV}, default {DEFAULT_LOCK_DIR})"
        f": {problem}; point {LOCK_DIR_ENV} at a folder every job can write to"
    )


def _try_claim(pool: list[tuple[str, str]], count: int, lock_dir: Path) -> list[str] | None:
    """Lock ``count`` free GPUs of the pool, or none at all (no job sits on part of its GPUs)."""
    claimed: list[tuple[str, int]] = []
    try:
        for entry, name in pool:
            # Read-only: a lock file another user created can still be locked.
            fd = os.open(lock_dir / f"{name}.lock", os.O_RDONLY | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            claimed.append((entry, fd))
            if len(claimed) == count:
                _held.extend(fd for _, fd in claimed)
                return [entry for entry, _ in claimed]
    except OSError as error:
        raise lock_folder_error(lock_dir, f"cannot hold lock files ({error})") from None
    finally:
        if len(claimed) < count:  # a partial claim is given back at once
            for _, fd in claimed:
                os.close(fd)
    return None
