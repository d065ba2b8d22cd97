"""GPU placement (fashionai.gpus) on stand-in GPUs: tests/bin/nvidia-smi lists fake ones."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fashionai import gpus
from fashionai.gpus import Gpu, claim_gpus, gpu_pool, list_gpus
from tests.workflow_helpers import REPO, stand_in_gpus

UUID = "GPU-5ae0f00d-0000-4000-8000-{:012d}"


@pytest.fixture
def fake_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Two stand-in GPUs on PATH; the environment a job would have (a private lock folder)."""
    env = stand_in_gpus(tmp_path / "locks")
    for name in ("PATH", "FASHIONAI_FAKE_GPUS"):
        monkeypatch.setenv(name, env[name])
    yield {name: env[name] for name in ("FASHIONAI_GPU_LOCK_DIR", "FASHIONAI_GPU_POLL_SECONDS")}
    while gpus._held:  # what this test process claimed
        os.close(gpus._held.pop())


@pytest.fixture
def no_nvidia_smi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    return {"FASHIONAI_GPU_LOCK_DIR": str(tmp_path / "locks")}


def claim(count: int, environ: dict[str, str]) -> tuple[list[str] | None, list[str]]:
    lines: list[str] = []
    return claim_gpus(count, log=lines.append, environ=environ), lines


def test_the_stand_in_gpus_are_listed(fake_gpus: dict[str, str]) -> None:
    assert list_gpus() == [
        Gpu("0", "Stand-in GPU", UUID.format(0)),
        Gpu("1", "Stand-in GPU", UUID.format(1)),
    ]


def test_jobs_in_one_workflow_get_distinct_gpus_and_a_third_waits(
    fake_gpus: dict[str, str],
) -> None:
    first, lines = claim(1, dict(fake_gpus))
    second, _ = claim(1, environ := dict(fake_gpus))
    assert sorted(first + second) == ["0", "1"]
    assert environ["CUDA_VISIBLE_DEVICES"] == second[0]
    assert environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert (
        f"claimed {first[0]} of 0, 1" in lines[0] and f"CUDA_VISIBLE_DEVICES={first[0]}" in lines[0]
    )
    assert (
        gpus._try_claim(gpu_pool(list_gpus(), None), 1, Path(fake_gpus["FASHIONAI_GPU_LOCK_DIR"]))
        is None
    )


def test_gpu_0_sees_none(fake_gpus: dict[str, str]) -> None:
    devices, lines = claim(0, environ := dict(fake_gpus, CUDA_VISIBLE_DEVICES="0,1"))
    assert devices == [] and environ["CUDA_VISIBLE_DEVICES"] == ""
    assert lines == ["GPUs: none asked for (gpu=0): CUDA_VISIBLE_DEVICES=''"]


def test_without_nvidia_smi_the_job_runs_as_before(no_nvidia_smi: dict[str, str]) -> None:
    devices, lines = claim(1, environ := dict(no_nvidia_smi))
    assert devices is None and "CUDA_VISIBLE_DEVICES" not in environ
    assert lines == [
        "GPUs: none found (nvidia-smi not found (no NVIDIA driver on PATH)); running without, "
        "CUDA_VISIBLE_DEVICES left as it is"
    ]


def test_a_failing_nvidia_smi_means_no_gpu(
    fake_gpus: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASHIONAI_FAKE_GPUS", "fail")
    devices, lines = claim(1, environ := dict(fake_gpus))
    assert devices is None and "CUDA_VISIBLE_DEVICES" not in environ
    assert "nvidia-smi failed (exit 9): NVIDIA-SMI has failed" in lines[0]


def test_an_empty_cuda_visible_devices_for_the_workflow_means_no_gpu(
    fake_gpus: dict[str, str],
) -> None:
    devices, lines = claim(1, environ := dict(fake_gpus, CUDA_VISIBLE_DEVICES=""))
    assert devices is None and environ["CUDA_VISIBLE_DEVICES"] == ""
    assert "none found (CUDA_VISIBLE_DEVICES is empty)" in lines[0]


def test_cuda_visible_devices_of_the_workflow_is_the_pool(
    fake_gpus: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASHIONAI_FAKE_GPUS", "4")
    pool = f"3,{UUID.format(1)}"
    devices, _ = claim(2, dict(fake_gpus, CUDA_VISIBLE_DEVICES=pool))
    assert devices == ["3", UUID.format(1)]
    # The locks are per GPU, whichever way it was named.
    assert (
        gpus._try_claim(gpu_pool(list_gpus(), "1"), 1, Path(fake_gpus["FASHIONAI_GPU_LOCK_DIR"]))
        is None
    )
    with pytest.raises(ValueError, match=r"CUDA_VISIBLE_DEVICES='0,7': '7' is none of the GPUs"):
        claim(1, dict(fake_gpus, CUDA_VISIBLE_DEVICES="0,7"))


def test_without_nvidia_smi_cuda_visible_devices_is_taken_as_it_is(
    no_nvidia_smi: dict[str, str],
) -> None:
    """As the README says: claimed and narrowed, so that jobs at once get distinct GPUs."""
    devices, lines = claim(1, environ := dict(no_nvidia_smi, CUDA_VISIBLE_DEVICES="2,3"))
    assert devices == ["2"] and environ["CUDA_VISIBLE_DEVICES"] == "2"
    assert lines[0] == (
        "GPUs: nvidia-smi not found (no NVIDIA driver on PATH); placing jobs on "
        "CUDA_VISIBLE_DEVICES=2,3 as it is"
    )
    assert claim(1, dict(no_nvidia_smi, CUDA_VISIBLE_DEVICES="2,3"))[0] == ["3"]


@pytest.mark.parametrize(
    ("smi", "visible", "exposed"),
    [(True, None, "0,1"), (True, "1,0", "1,0"), (True, "01,00", "1,0"), (False, "3,02", "3,2")],
)
def test_a_job_of_two_gpus_sees_both(
    fake_gpus: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    smi: bool,
    visible: str | None,
    exposed: str,
) -> None:
    """Every GPU claimed is in the job's CUDA_VISIBLE_DEVICES (with nvidia-smi or without),
    each entry as CUDA reads it: 00 is GPU 0."""
    if not smi:
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    environ = dict(fake_gpus) if visible is None else dict(fake_gpus, CUDA_VISIBLE_DEVICES=visible)
    devices, lines = claim(2, environ)
    assert devices == exposed.split(",") and environ["CUDA_VISIBLE_DEVICES"] == exposed
    assert lines[-1].endswith(f"CUDA_VISIBLE_DEVICES={exposed}")


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim that would wait fails the test instead of hanging it. Only the module's own
    ``time`` is replaced: subprocess (nvidia-smi) sleeps too while it waits for a child."""

    class NoWaiting:
        def __getattr__(self, name: str) -> object:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            raise AssertionError(f"the claim waits ({seconds} s) instead of failing at once")

    monkeypatch.setattr(gpus, "time", NoWaiting())


@pytest.mark.parametrize(
    ("visible", "twice", "gpu"),
    [
        ("0,0", "'0' and '0'", 0),
        ("0,00", "'0' and '00'", 0),
        ("01,1", "'01' and '1'", 1),
        (f"1,{UUID.format(1)}", f"'1' and '{UUID.format(1)}'", 1),
    ],
)
def test_a_gpu_listed_twice_is_refused_at_once(
    fake_gpus: dict[str, str], no_waiting: None, visible: str, twice: str, gpu: int
) -> None:
    """Not a wait for ever on the job's own lock: the error names both entries."""
    with pytest.raises(ValueError) as error:
        claim(2, dict(fake_gpus, CUDA_VISIBLE_DEVICES=visible))
    assert str(error.value) == (
        f"CUDA_VISIBLE_DEVICES={visible!r}: names one GPU twice ({twice}: {UUID.format(gpu)}); "
        "list each GPU once"
    )


@pytest.mark.parametrize(
    ("visible", "twice"),
    [("2,3,2", "'2' and '2'"), ("2,3,02", "'2' and '02'"), ("002,3,2", "'002' and '2'")],
)
def test_without_nvidia_smi_a_repeated_entry_is_refused(
    no_nvidia_smi: dict[str, str], no_waiting: None, visible: str, twice: str
) -> None:
    """0 and 00 are one GPU to CUDA: two jobs placed on them would share it."""
    with pytest.raises(ValueError) as error:
        claim(3, dict(no_nvidia_smi, CUDA_VISIBLE_DEVICES=visible))
    assert str(error.value) == (
        f"CUDA_VISIBLE_DEVICES={visible!r}: names one GPU twice ({twice}: 2); list each GPU once"
    )


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("file", "a file, not a folder"),
        ("file/locks", "cannot be made ([Errno 20] Not a directory"),
        # Errno 2 as root, 13 else
        ("/proc", "cannot hold lock files ([Errno "),
    ],
)
def test_a_lock_folder_that_cannot_hold_locks_is_named(
    fake_gpus: dict[str, str], tmp_path: Path, where: str, problem: str
) -> None:
    """A file, a folder under a file, a folder where no file can be created (as root too)."""
    (tmp_path / "file").touch()
    lock_dir = str(tmp_path / where)
    with pytest.raises(RuntimeError) as error:
        claim(1, dict(fake_gpus, FASHIONAI_GPU_LOCK_DIR=lock_dir))
    message = str(error.value)
    assert message.startswith(
        f"the GPU lock folder {lock_dir!r} ($FASHIONAI_GPU_LOCK_DIR, default "
        f"/tmp/fashionai-gpu-locks): {problem}"
    ), message
    assert message.endswith("; point FASHIONAI_GPU_LOCK_DIR at a folder every job can write to")


def test_more_gpus_than_the_machine_has_is_an_error(fake_gpus: dict[str, str]) -> None:
    with pytest.raises(
        RuntimeError, match=r"asks for 3 GPUs \(train.gpus\) but there are 2 .*\(0, 1\)"
    ):
        claim(3, dict(fake_gpus))


@pytest.mark.parametrize(
    "value", ["soon", "0", "-1", "0.0001", "0.09", "3601", "1e400", "inf", "-inf", "nan"]
)
def test_a_bad_poll_interval_is_named(fake_gpus: dict[str, str], value: str) -> None:
    """Refused before any wait: inf cannot be slept, 0.0001 s floods the log with waiting lines."""
    with pytest.raises(ValueError) as error:
        claim(1, dict(fake_gpus, FASHIONAI_GPU_POLL_SECONDS=value))
    assert str(error.value) == (
        f"FASHIONAI_GPU_POLL_SECONDS={value!r}: not a number of seconds from 0.1 to 3600; "
        "set it in that range or unset it (default 30)"
    )


@pytest.mark.parametrize("value", ["0.1", "3600", ""])
def test_a_poll_interval_in_range_is_taken(fake_gpus: dict[str, str], value: str) -> None:
    assert claim(1, dict(fake_gpus, FASHIONAI_GPU_POLL_SECONDS=value))[0] == ["0"]


def test_a_negative_count_is_an_error(fake_gpus: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="0 or more, not -1"):
        claim(-1, dict(fake_gpus))


@pytest.mark.parametrize(
    ("slurm", "count", "kept"),
    [
        ({"CUDA_VISIBLE_DEVICES": "1", "SLURM_JOB_GPUS": "1"}, 1, ["1"]),
        ({"CUDA_VISIBLE_DEVICES": "0", "SLURM_STEP_GPUS": "5"}, 1, ["0"]),
        ({"CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_GPUS": "2,3"}, 2, ["0", "1"]),
        ({"SLURM_JOB_GPUS": "5"}, 1, None),  # no CUDA_VISIBLE_DEVICES: untouched
    ],
)
def test_a_slurm_job_keeps_the_gpus_slurm_gave_it(
    fake_gpus: dict[str, str],
    no_waiting: None,
    slurm: dict[str, str],
    count: int,
    kept: list[str] | None,
) -> None:
    """Given as many GPUs as it asks for. A claim would wait for ever here (no_waiting fails
    it at once): both stand-in GPUs are held by other jobs."""
    environ = dict(fake_gpus, SLURM_JOB_ID="42", **slurm)
    claim(2, dict(fake_gpus))
    devices, lines = claim(count, environ)
    assert devices == kept and environ.get("CUDA_VISIBLE_DEVICES") == slurm.get(
        "CUDA_VISIBLE_DEVICES"
    )
    assert lines[0].startswith("GPUs: Slurm job 42 was given ") and lines[0].endswith(
        "used as it is"
    )


def test_slurm_jobs_asking_for_no_gpu_see_none(fake_gpus: dict[str, str]) -> None:
    devices, _ = claim(0, environ := dict(fake_gpus, SLURM_JOB_ID="42"))
    assert devices == [] and environ["CUDA_VISIBLE_DEVICES"] == ""


def test_slurm_gpus_asked_for_with_gres_are_kept(fake_gpus: dict[str, str]) -> None:
    """train.gpus: 0 and --gres=gpu:1 in the profile (README): Slurm's GPU is the job's."""
    devices, lines = claim(0, dict(fake_gpus, SLURM_JOB_ID="42", CUDA_VISIBLE_DEVICES="1"))
    assert devices == ["1"] and "used as it is" in lines[0]


def test_a_workflow_inside_a_slurm_allocation_places_its_jobs_on_the_allocation(
    fake_gpus: dict[str, str],
) -> None:
    """Snakemake run in an allocation of two GPUs: each one-GPU job gets one of them."""
    devices, lines = claim(1, dict(fake_gpus, SLURM_JOB_ID="42", CUDA_VISIBLE_DEVICES="0,1"))
    assert devices == ["0"] and lines[0].startswith("GPUs: claimed 0 of 0, 1")


def test_a_slurm_job_without_gpus_from_slurm_claims_like_any_job(fake_gpus: dict[str, str]) -> None:
    devices, _ = claim(1, dict(fake_gpus, SLURM_JOB_ID="42"))
    assert devices == ["0"]


# Separate processes: the claims are machine-wide, and end with the process that holds them.

HOLD = (
    "import sys, time\n"
    "from fashionai.gpus import claim_gpus\n"
    "claim_gpus(int(sys.argv[1]), log=lambda message: None)\n"
    "print('holding', flush=True)\n"
    "time.sleep(600)\n"
)


def job_env(environ: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **environ, "PYTHONPATH": str(REPO)}


@pytest.fixture
def holder(fake_gpus: dict[str, str]) -> Iterator[Callable[[int], subprocess.Popen]]:
    """Start processes that claim GPUs, say so and keep them; kill those left at the end."""
    processes: list[subprocess.Popen] = []

    def start(count: int) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(count)],
            env=job_env(fake_gpus),
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert "holding" in process.stdout.readline()
        return process

    yield start
    for process in processes:
        process.kill()
        process.communicate()


def test_a_killed_job_frees_its_gpus_at_once(
    fake_gpus: dict[str, str], holder: Callable[[int], subprocess.Popen]
) -> None:
    process = holder(2)
    pool, lock_dir = gpu_pool(list_gpus(), None), Path(fake_gpus["FASHIONAI_GPU_LOCK_DIR"])
    assert gpus._try_claim(pool, 1, lock_dir) is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert gpus._try_claim(pool, 2, lock_dir) == ["0", "1"]


def test_a_job_waiting_for_two_gpus_holds_none_of_them(
    fake_gpus: dict[str, str], holder: Callable[[int], subprocess.Popen]
) -> None:
    """With GPU 0 held elsewhere, a 2-GPU claim locks GPU 1 and then gives it back at once: a
    1-GPU job gets GPU 1 meanwhile (the locks are per open file, so this process can tell)."""
    holder(1)
    pool, lock_dir = gpu_pool(list_gpus(), None), Path(fake_gpus["FASHIONAI_GPU_LOCK_DIR"])
    assert gpus._try_claim(pool, 2, lock_dir) is None
    assert gpus._try_claim(pool, 1, lock_dir) == ["1"]


def test_a_job_waits_while_all_gpus_are_held_and_says_so(
    fake_gpus: dict[str, str], holder: Callable[[int], subprocess.Popen]
) -> None:
    process = holder(2)
    waiter = subprocess.Popen(
        [sys.executable, "-c", "from fashionai.gpus import claim_gpus; claim_gpus(1)"],
        env=job_env(fake_gpus),
        stdout=subprocess.PIPE,
        text=True,
    )
    first = waiter.stdout.readline()
    assert first.startswith("GPUs: waiting for 1 of 0, 1: all held by other jobs (lock files in ")
    assert first.endswith("next try in 0.1 s\n")
    time.sleep(0.5)
    assert waiter.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    output, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0
    # The dead holder's two locks are released one after the other: either GPU may come first.
    assert re.match(r"GPUs: claimed [01] of 0, 1 at ", output.splitlines()[-1])


# The scripts of GPU jobs: TensorFlow reads CUDA_VISIBLE_DEVICES once, as it starts, so nothing
# they run before claim_gpus may import it (a GPU claimed after that is not the one used).


def calls_claim(node: ast.AST) -> bool:
    return any(
        isinstance(call, ast.Call) and getattr(call.func, "id", None) == "claim_gpus"
        for call in ast.walk(node)
    )


def imports_before_claim(body: list[ast.stmt]) -> list[ast.stmt] | None:
    """The import statements run before the statement that calls claim_gpus, in the blocks
    that lead to it (a ``with job_log(...)`` block, say); None when nothing calls it."""
    imports: list[ast.stmt] = []
    for statement in body:
        if calls_claim(statement):
            inner = [getattr(statement, field, []) for field in ("body", "orelse", "finalbody")]
            nested = [found for block in inner if (found := imports_before_claim(block))]
            return imports + (nested[0] if nested else [])
        imports += [
            node for node in ast.walk(statement) if isinstance(node, ast.Import | ast.ImportFrom)
        ]
    return None


GPU_SCRIPTS = {
    script.name: imports
    for script in sorted((REPO / "workflow_scripts").glob("*.py"))
    if (imports := imports_before_claim(ast.parse(script.read_text()).body)) is not None
}


def test_gpu_job_scripts_are_found() -> None:
    assert "train.py" in GPU_SCRIPTS, sorted(GPU_SCRIPTS)


@pytest.mark.parametrize("script", GPU_SCRIPTS)
def test_a_gpu_job_claims_its_gpus_before_tensorflow_is_imported(script: str) -> None:
    """Each import its script runs before claim_gpus, run in a fresh process: no TensorFlow."""
    code = "\n".join(
        [
            "import sys",
            *map(ast.unparse, GPU_SCRIPTS[script]),
            "print(sorted({'tensorflow', 'keras'} & set(sys.modules)))",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=job_env({}),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n", f"{script} imports {result.stdout} before claim_gpus"
