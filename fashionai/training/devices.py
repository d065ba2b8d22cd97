"""Threads, GPUs, the distribution strategy and the precision policy of a training job."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

# Set to 1 for bit-for-bit reproducible GPU runs (TensorFlow's op determinism; slower).
DETERMINISTIC_ENV = "FASHIONAI_DETERMINISTIC"


def configure_devices(
    threads: int, mixed_precision: bool, log: Callable[[str], None] = print
) -> tf.distribute.Strategy:
    """Set TensorFlow's threads, GPU memory growth and precision (mixed only on a GPU); return
    the strategy: a ``MirroredStrategy`` splitting each batch over several GPUs, else default."""
    _set_threads(threads, log)
    if os.environ.get(DETERMINISTIC_ENV) == "1":
        tf.config.experimental.enable_op_determinism()
        log(f"{DETERMINISTIC_ENV}=1: deterministic kernels (slower on GPU)")
    gpus = grow_gpu_memory(log)
    if mixed_precision and not gpus:
        log("mixed_precision: ignored on CPU (no GPU visible); training in float32")
    policy = "mixed_float16" if mixed_precision and gpus else "float32"
    keras.mixed_precision.set_global_policy(policy)
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    info = describe_devices(strategy)
    log(
        f"devices: {', '.join(info['devices'])}; strategy {info['strategy']} with "
        f"{info['replicas']} replica(s); precision policy {info['precision_policy']}; "
        f"TensorFlow threads intra-op {info['intra_op_threads']}, "
        f"inter-op {info['inter_op_threads']}"
    )
    return strategy


def grow_gpu_memory(log: Callable[[str], None] = print) -> list[tf.config.PhysicalDevice]:
    """The GPUs TensorFlow sees, each taking memory as it needs it rather than all at start."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as error:  # the GPU is initialised already
            log(f"could not turn on memory growth for {gpu.name}: {error}")
    return gpus


def describe_devices(strategy: tf.distribute.Strategy) -> dict[str, Any]:
    """What a run used, for ``training.json``."""
    return {
        "devices": [device.name for device in tf.config.list_logical_devices()],
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "precision_policy": keras.mixed_precision.global_policy().name,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def _set_threads(threads: int, log: Callable[[str], None]) -> None:
    inter = min(threads, 2)
    if (
        tf.config.threading.get_intra_op_parallelism_threads() == threads
        and tf.config.threading.get_inter_op_parallelism_threads() == inter
    ):
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # TensorFlow's runtime started already in this process
        log(f"TensorFlow is initialised already: its thread pools stay as they are, not {threads}")
