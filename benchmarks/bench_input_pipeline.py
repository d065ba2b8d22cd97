"""Images per second of the training input pipeline against the floor of decoding alone.

    .venv/bin/python benchmarks/bench_input_pipeline.py [--images 3000] [--source-size 512]
        [--image-size 224] [--batch-size 32] [--threads 2] [--repeats 5]

Generates ``--images`` JPEGs of ``--source-size`` px (``synthetic_tree``: about the size and
entropy of FashionAI's 512 px photos), reads them once so every pipeline finds them in the page
cache, then times full passes over all of them, in turns, ``--repeats`` times each, keeping
each pipeline's best pass (the one least disturbed by other processes on a shared machine) and
its CPU time per image (all threads; other processes do not change it):

- ``floor``: ``tf.io.read_file`` + ``tf.io.decode_image`` + ``tf.image.resize`` (bilinear), in
  parallel (``AUTOTUNE``), batched, prefetched: nothing but decoding and resizing;
- ``floor, antialiased resize``: the same with ``antialias=True``, what the pipeline did before
  (FashionAI's 512 px photos shrink to 224-299 px: a plain bilinear resize aliases);
- ``make_dataset``: our training pipeline (shuffle, DCT-scaled JPEG decoding and resize,
  clip, skip undecodable files, batch, prefetch) with ``--threads`` threads, as a training
  job runs it;
- ``make_dataset + image cache``: the same with the on-disk cache fine-tuning uses: the first
  pass decodes and writes the resized images, later passes read them back.

Last, how far each resize is from the exact one (full decode + antialiased resize), in grey
levels: the price of the DCT-scaled decoding.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_tree import write_tree  # noqa: E402

TARGET_FLOOR_SHARE = 0.8  # make_dataset at least this share of the floor's images/s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--source-size", type=int, default=512, help="JPEG size, px")
    parser.add_argument("--image-size", type=int, default=224, help="model input, px")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-input-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        run(args, work)


def run(args: argparse.Namespace, work: Path) -> None:
    tree = work / "tree"
    began = time.monotonic()
    if not (tree / "labels.json").exists():
        write_tree(tree, "collar_design_labels", args.images, args.source_size, seed=3)
    generated = time.monotonic() - began
    paths = sorted(str(p) for p in tree.glob("*/*.jpg"))[: args.images]
    size_mb = sum(Path(p).stat().st_size for p in paths) / 1e6
    for path in paths:  # into the page cache, for every pipeline alike
        Path(path).read_bytes()

    import tensorflow as tf

    from fashionai.training.dataset import make_dataset

    labels = [0] * len(paths)
    size, batch = args.image_size, args.batch_size

    def floor(antialias: bool) -> tf.data.Dataset:
        def load(path: tf.Tensor) -> tf.Tensor:
            image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
            return tf.image.resize(image, (size, size), antialias=antialias)

        data = tf.data.Dataset.from_tensor_slices(paths)
        data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE)
        return data.batch(batch).prefetch(tf.data.AUTOTUNE)

    def ours() -> tf.data.Dataset:
        return make_dataset(paths, labels, size, batch, training=True, seed=0, threads=args.threads)

    pipelines = {
        "floor": lambda: floor(False),
        "floor, antialiased resize": lambda: floor(True),
        "make_dataset": ours,
    }
    best = {name: (0.0, float("inf")) for name in pipelines}
    for _ in range(args.repeats):
        for name, build in pipelines.items():
            best[name] = fastest(best[name], measure(build(), len(paths)))

    cache_dir = work / "image-cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    first = later = (0.0, float("inf"))
    for attempt in range(args.repeats):
        folder = cache_dir / str(attempt)
        folder.mkdir(parents=True, exist_ok=True)
        cached = make_dataset(
            paths, labels, size, batch, training=True, seed=0, threads=args.threads,
            cache=folder / "train",
        )  # fmt: skip
        first = fastest(first, measure(cached, len(paths)))
        later = fastest(later, measure(cached, len(paths)))
    best["make_dataset + image cache, first pass (writes it)"] = first
    cache_mb = sum(p.stat().st_size for p in cache_dir.rglob("*") if p.is_file()) / 1e6
    best[f"make_dataset + image cache, later passes ({cache_mb / args.repeats:.0f} MB)"] = later

    exact, ours_error, bilinear_error = differences(paths[:50], size)

    print(
        f"{len(paths)} generated {args.source_size} px JPEGs ({size_mb:.0f} MB, "
        f"{generated:.0f} s to generate) -> {size} px, batch {batch}, {args.threads} threads, "
        f"TensorFlow {tf.__version__}; best of {args.repeats} passes each; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print()
    print("| pipeline | images/s | vs floor | CPU ms/image | vs floor (CPU) |")
    print("|---|---|---|---|---|")
    floor_rate, floor_cpu = best["floor"]
    for name, (rate, cpu) in best.items():
        print(
            f"| {name} | {rate:.0f} | {rate / floor_rate:.2f}x | {1000 * cpu:.2f} "
            f"| {floor_cpu / cpu:.2f}x |"
        )
    rate, cpu = best["make_dataset"]
    share = rate / floor_rate
    print()
    print("| figure | value | target | |")
    print("|---|---|---|---|")
    print(
        f"| make_dataset / floor, images/s | {share:.2f}x | >= {TARGET_FLOOR_SHARE}x "
        f"| {'met' if share >= TARGET_FLOOR_SHARE else 'MISSED'} |"
    )
    print(f"| make_dataset / floor, images per CPU-second | {floor_cpu / cpu:.2f}x | | |")
    print(f"| image cache, later passes / make_dataset, images/s | {later[0] / rate:.1f}x | | |")
    print(
        f"| mean difference from {exact}, grey levels: make_dataset / floor (bilinear) "
        f"| {ours_error:.2f} / {bilinear_error:.2f} | | |"
    )


def differences(paths: list[str], size: int) -> tuple[str, float, float]:
    """Mean |pixel difference| of our resize and of plain bilinear from the exact one."""
    import numpy as np
    import tensorflow as tf

    from fashionai.pixels import decode_and_resize

    ours, bilinear = [], []
    for path in paths:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        exact = tf.image.resize(image, (size, size), antialias=True).numpy()
        ours.append(np.abs(decode_and_resize(path, size).numpy() - exact).mean())
        bilinear.append(np.abs(tf.image.resize(image, (size, size)).numpy() - exact).mean())
    return "full decode + antialiased resize", float(np.mean(ours)), float(np.mean(bilinear))


def fastest(old: tuple[float, float], new: tuple[float, float]) -> tuple[float, float]:
    """Best images/s and lowest CPU seconds per image so far."""
    return max(old[0], new[0]), min(old[1], new[1])


def measure(data, count: int) -> tuple[float, float]:
    """Images per second (wall) and CPU seconds per image of one full pass."""
    wall, cpu = time.monotonic(), time.process_time()
    for _ in data:
        pass
    return count / (time.monotonic() - wall), (time.process_time() - cpu) / count


if __name__ == "__main__":
    main()
