"""``python -m fashionai devices``: can TensorFlow train on this machine, and on which devices?
Exit status 0 when every device trained and no GPU nvidia-smi lists is unused (README, "GPUs").
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from fashionai.gpus import VISIBLE, NvidiaSmiError, nvidia_smi

CPU_BUILD_FIX = "install TensorFlow's CUDA build: make CUDA=1 venv (requirements-cuda.txt)"


def check_devices(say: Callable[[str], None] = print) -> int:
    """Run the check, printing through ``say``; the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    problems: list[str] = []
    visible = os.environ.get(VISIBLE)
    try:
        listed = nvidia_smi(
            "--query-gpu=driver_version,name,memory.total", "--format=csv,noheader"
        ).splitlines()
        say(f"NVIDIA driver (nvidia-smi): {len(listed)} GPU(s)")
        for index, line in enumerate(listed):
            say(f"  {index}: driver {line.strip()}")
    except NvidiaSmiError as error:
        listed = []
        say(f"NVIDIA driver: {error}")
        if not error.missing:
            problems.append(f"{error}: the NVIDIA driver is not working (reinstall it, reboot)")

    import tensorflow as tf

    from fashionai.training.devices import grow_gpu_memory

    cuda, build = tf.test.is_built_with_cuda(), tf.sysconfig.get_build_info()
    kind = f"CUDA build (CUDA {build.get('cuda_version')}, cuDNN {build.get('cudnn_version')})"
    say(f"TensorFlow {tf.__version__}: {kind if cuda else 'CPU build (no CUDA)'}")
    if visible is not None:
        say(f"{VISIBLE}={visible!r}")
    gpus = grow_gpu_memory(say)
    say(f"GPUs TensorFlow sees: {len(gpus) or 'none'}")
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        capability = details.get("compute_capability")
        mixed = (
            "yes" if capability and capability >= (7, 0) else "no (needs compute capability 7.0)"
        )
        say(
            f"  {gpu.name}: {details.get('device_name', '?')}, compute capability "
            f"{'.'.join(map(str, capability)) if capability else '?'}, mixed precision: {mixed}"
        )
    if not gpus:
        say("mixed precision: not available (no GPU)")
    hidden = visible is not None and not visible.strip()
    if listed and not gpus:
        found = f"nvidia-smi lists {len(listed)} GPU(s) but TensorFlow sees none"
        if not cuda:
            problems.append(f"{found}: it is the CPU build; {CPU_BUILD_FIX}")
        if hidden:
            problems.append(f"{found}: {VISIBLE} is empty, which hides every GPU; unset it")
        if cuda and not hidden:
            problems.append(
                f"{found}: check {VISIBLE} and TensorFlow's messages "
                "(TF_CPP_MIN_LOG_LEVEL=0 python -m fashionai devices)"
            )
    elif hidden:
        say(f"note: {VISIBLE} is empty, which would hide any GPU")

    for device in tf.config.list_logical_devices():
        if device.device_type in ("CPU", "GPU"):
            try:
                seconds = _training_step(device.name)
                say(f"training step on {device.name}: ok ({seconds:.2f} s)")
            except Exception as error:  # any failure is the answer the user needs
                problems.append(
                    f"training step on {device.name} failed: {type(error).__name__}: {error}"
                )

    if problems:
        for problem in problems:
            say(f"PROBLEM: {problem}")
        return 1
    say(
        f"OK: TensorFlow trains on {len(gpus)} GPU(s)"
        if gpus
        else "OK, no GPU: TensorFlow trains on the CPU (fine for the demo; slow for real runs)"
    )
    return 0


def _training_step(device: str) -> float:
    """One optimizer step of a tiny model on ``device``; the seconds it took."""
    import keras
    import numpy as np
    import tensorflow as tf

    start = time.perf_counter()
    with tf.device(device):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
        rng = np.random.default_rng(0)
        loss = model.train_on_batch(rng.normal(size=(32, 8)), rng.normal(size=(32, 2)))
    if not np.isfinite(loss):
        raise FloatingPointError(f"the loss is {loss}")
    return time.perf_counter() - start
