"""`python -m fashionai devices` on this CPU machine (the command once, in a fresh process), and
its check with stand-in GPUs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fashionai.training import device_check
from tests.workflow_helpers import REPO, STAND_IN_GPUS


def devices_command(tmp_path: Path, path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return subprocess.run(
        [sys.executable, "-m", "fashionai", "devices"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )


def test_a_machine_without_gpus_gets_an_honest_no_gpu_report(tmp_path: Path) -> None:
    result = devices_command(tmp_path, str(tmp_path))  # no nvidia-smi on PATH
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "NVIDIA driver: nvidia-smi not found (no NVIDIA driver on PATH)"
    assert "CPU build (no CUDA)" in lines[1]
    assert "GPUs TensorFlow sees: none" in lines
    assert "mixed precision: not available (no GPU)" in lines
    assert any(line.startswith("training step on /device:CPU:0: ok") for line in lines)
    assert lines[-1].startswith("OK, no GPU: TensorFlow trains on the CPU")


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """In this process: stand-in GPUs on PATH; the printed lines."""
    monkeypatch.setenv("PATH", f"{STAND_IN_GPUS}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return []


def test_gpus_with_tensorflows_cpu_build_are_named_with_the_fix(stand_in: list[str]) -> None:
    assert device_check.check_devices(stand_in.append) == 1
    assert "NVIDIA driver (nvidia-smi): 2 GPU(s)" in stand_in
    assert "  1: driver 550.54.14, Stand-in GPU, 16384 MiB" in stand_in
    assert stand_in[-1] == (
        "PROBLEM: nvidia-smi lists 2 GPU(s) but TensorFlow sees none: it is the CPU build; "
        "install TensorFlow's CUDA build: make CUDA=1 venv (requirements-cuda.txt)"
    )


def test_a_driver_that_fails_is_a_problem(
    stand_in: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASHIONAI_FAKE_GPUS", "fail")
    assert device_check.check_devices(stand_in.append) == 1
    assert stand_in[0].startswith(
        "NVIDIA driver: nvidia-smi failed (exit 9): NVIDIA-SMI has failed"
    )
    assert "PROBLEM: nvidia-smi failed (exit 9)" in stand_in[-1]
    assert "the NVIDIA driver is not working" in stand_in[-1]


def test_an_empty_cuda_visible_devices_is_named(
    stand_in: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert device_check.check_devices(stand_in.append) == 1
    assert "CUDA_VISIBLE_DEVICES=''" in stand_in
    assert stand_in[-1].endswith("CUDA_VISIBLE_DEVICES is empty, which hides every GPU; unset it")


def test_a_failing_training_step_is_a_problem(
    stand_in: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")  # no nvidia-smi: only the training step can fail

    def broken(device: str) -> float:
        raise RuntimeError("no kernel")

    monkeypatch.setattr(device_check, "_training_step", broken)
    assert device_check.check_devices(stand_in.append) == 1
    assert stand_in[-1] == "PROBLEM: training step on /device:CPU:0 failed: RuntimeError: no kernel"
