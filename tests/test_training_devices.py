"""configure_devices on this CPU-only machine: default strategy, float32, devices logged."""

from __future__ import annotations

from training_helpers import limit_threads

limit_threads()

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from fashionai.training.devices import configure_devices, describe_devices  # noqa: E402


def test_cpu_gets_the_default_strategy_and_no_mixed_precision() -> None:
    assert not tf.config.list_physical_devices("GPU")
    lines: list[str] = []
    strategy = configure_devices(threads=1, mixed_precision=True, log=lines.append)
    assert strategy.num_replicas_in_sync == 1
    assert keras.mixed_precision.global_policy().name == "float32"
    assert any("mixed_precision: ignored on CPU" in line for line in lines)
    assert any(line.startswith("devices: ") and "CPU" in line for line in lines)
    info = describe_devices(strategy)
    assert info["gpus"] == [] and info["replicas"] == 1 and info["precision_policy"] == "float32"


def test_deterministic_kernels_on_request() -> None:
    """In a child process: op determinism is global and cannot be switched off again."""
    import os
    import subprocess
    import sys

    code = (
        "from fashionai.training.devices import configure_devices\n"
        "configure_devices(threads=1, mixed_precision=False, log=print)\n"
        "from tensorflow.python.framework.config import is_op_determinism_enabled\n"
        "print('determinism', is_op_determinism_enabled())\n"
    )
    env = {**os.environ, "FASHIONAI_DETERMINISTIC": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "deterministic kernels" in result.stdout
    assert "determinism True" in result.stdout


def test_several_gpus_train_one_model_with_a_mirrored_strategy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two (pretended) GPUs: one MirroredStrategy over them, and mixed precision applies."""
    physical, mirrored_strategy = tf.config.list_physical_devices, tf.distribute.MirroredStrategy

    def two_gpus(device_type: str | None = None) -> list:
        if device_type != "GPU":
            return physical(device_type)
        return [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in (0, 1)]

    mirrored: list[str] = []
    monkeypatch.setattr(tf.config, "list_physical_devices", two_gpus)
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda gpu, grow: None)
    monkeypatch.setattr(
        tf.distribute,
        "MirroredStrategy",
        lambda: mirrored.append("built") or mirrored_strategy(["/cpu:0"]),
    )
    try:
        strategy = configure_devices(threads=1, mixed_precision=True, log=print)
        assert mirrored == ["built"]
        assert isinstance(strategy, mirrored_strategy)
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        assert describe_devices(strategy)["gpus"] == [
            "/physical_device:GPU:0",
            "/physical_device:GPU:1",
        ]
    finally:
        keras.mixed_precision.set_global_policy("float32")
