"""Benchmark: the data half of the workflow against the original preprocessing, at scale.

One command (run from anywhere; it finds the repository from its own path)::

    .venv/bin/python benchmarks/bench_data_half.py --rows 100000

1. generates a synthetic dataset of about ``--rows`` annotation rows in the real archive layout
   (demo.synthetic, no faults, cached under ``--workdir`` by its parameters);
2. floor: GNU ``tar -xf`` of the two tars and ``unzip -q`` of the zip, one after the other;
3. baseline: ``benchmarks/baseline_original.py`` (the original algorithm) on that fresh
   extraction; the extraction itself is not counted, as the issue asks;
4. ours: ``snakemake --cores 2 data`` in a fresh working directory, extraction included; the
   same command again with nothing left to do (Snakemake's own cost); and ``snakemake`` with
   only the 8 ``results/regrouped/{category}`` targets (no plots) in another fresh directory;
5. fixed costs: steps 2-4 again on a dataset of 270 rows (5 images per class). The difference
   to the big run is the marginal cost of the rows, printed as ratios too.

Peak memory is ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a small wrapper process around each
command: the largest resident set of any process below it (Snakemake and every job). The
per-rule split comes from a ``sitecustomize`` hook put on the jobs' PYTHONPATH: each Python
process records its start, end and own peak RSS, and the job's script name gives its rule. No
rule of the workflow is changed. Each step starts after ``sync``, so one step's write-back does
not land in the next one's time.

Results: a table on stdout and ``<workdir>/results.json``. ``--repeat N`` runs every step N
times and reports the fastest (the machine is shared; the minimum is the least disturbed run).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from demo.synthetic import ARCHIVE_NAMES  # noqa: E402
from fashionai.archives import archive_id  # noqa: E402
from fashionai.attributes import ATTRIBUTES  # noqa: E402

SNAKEMAKE = Path(sys.executable).with_name("snakemake")
BASELINE = REPO / "benchmarks" / "baseline_original.py"
CLASSES = sum(len(names) for names in ATTRIBUTES.values())  # 54 classes over 8 attributes
TRAINING = ("round1", "warmup", "round2")
MB = 1024  # ru_maxrss is in KiB on Linux
PHASES = {  # job script -> the phase it is counted in, in pipeline order
    "extract_archive": "extraction",
    "merge_labels": "merge",
    "decode_labels": "decoding",
    "category_tree": "trees",
    "regroup": "regroup",
    "plot_label_statistics": "plots",
}
PHASE_ORDER = list(dict.fromkeys(PHASES.values()))

# Runs every command it is given and reports its wall time and the peak RSS of its whole tree.
_WRAPPER = """\
import json, resource, subprocess, sys, time
result, log, command = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(log, "w") as handle:
    start_epoch, start = time.time(), time.perf_counter()
    rc = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(result, "w") as handle:
    json.dump({"rc": rc, "seconds": seconds, "start": start_epoch, "end": start_epoch + seconds,
               "maxrss_kb": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}, handle)
"""

# Put on PYTHONPATH of Snakemake: every Python process below it appends one JSON line.
_HOOK = """\
import atexit, json, os, resource, sys, time

_path = os.environ.get("FASHIONAI_BENCH_JOBS")
if _path:
    _start = time.time()

    def _peak_kb():
        # VmHWM belongs to this program's memory map; ru_maxrss would also count the forked
        # parent's pages it held before exec (Snakemake's, for every job).
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def _record():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        record = {"argv0": sys.argv[0] if sys.argv else "", "pid": os.getpid(),
                  "start": _start, "end": time.time(), "maxrss_kb": _peak_kb(),
                  "cpu": usage.ru_utime + usage.ru_stime}
        with open(_path, "a") as handle:
            handle.write(json.dumps(record) + "\\n")

    atexit.register(_record)
"""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


# ---------------------------------------------------------------------------------------------
# The dataset


def ensure_dataset(workdir: Path, rows: int, image_size: int, seed: int) -> tuple[Path, dict]:
    """The cached synthetic dataset for these parameters, generated if missing."""
    from demo.synthetic import generate_dataset

    per_class = max(1, round(rows / CLASSES))
    folder = workdir / "datasets" / f"ipc{per_class}-px{image_size}-seed{seed}"
    stamp = folder / "dataset.json"
    archives = [folder / ARCHIVE_NAMES[name] for name in TRAINING]
    if stamp.is_file() and all(path.is_file() for path in archives):
        info = json.loads(stamp.read_text())
        log(f"reusing {folder} ({info['rows']:,} annotation rows)")
        return folder, info
    partial = folder.with_name(folder.name + ".partial")
    remove(partial)
    params = {
        "images_per_class": per_class,
        "image_size": image_size,
        "seed": seed,
        "faults": False,  # the original algorithm crashes on the first bad row
        "questions_per_attribute": 0,
    }
    log(f"generating {per_class * CLASSES:,} annotation rows at {image_size} px into {folder}")
    start = time.perf_counter()
    manifest = generate_dataset(partial, **params, log=lambda message: None)
    info = {**params, "rows": len(manifest), "seconds": round(time.perf_counter() - start, 1)}
    (partial / "dataset.json").write_text(json.dumps(info, indent=1) + "\n")
    remove(folder)
    partial.rename(folder)
    log(f"generated in {info['seconds']} s")
    return folder, info


# ---------------------------------------------------------------------------------------------
# Measuring


def measured(command: list[str], out: Path, name: str, env: dict | None = None) -> dict:
    """Run ``command`` under the wrapper after a sync; its output goes to ``out/name.log``."""
    result, output = out / f"{name}.json", out / f"{name}.log"
    os.sync()
    subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(result), str(output), *command],
        env=env,
        check=True,
    )
    measurement = json.loads(result.read_text())
    if measurement["rc"] != 0:
        tail = "\n".join(output.read_text(errors="replace").splitlines()[-40:])
        raise SystemExit(f"{name} failed (exit {measurement['rc']}); end of {output}:\n{tail}")
    return measurement


def floor(dataset: Path, target: Path, out: Path) -> tuple[dict, list[Path]]:
    """GNU tar and unzip, one archive after the other, into fresh folders under ``target``."""
    remove(target)
    folders, commands = [], []
    for name in TRAINING:
        archive = dataset / ARCHIVE_NAMES[name]
        folder = target / archive_id(archive)
        folder.mkdir(parents=True)
        folders.append(folder)
        if archive.suffix == ".zip":
            commands.append(f"unzip -q {shlex.quote(str(archive))} -d {shlex.quote(str(folder))}")
        else:
            commands.append(f"tar -xf {shlex.quote(str(archive))} -C {shlex.quote(str(folder))}")
    script = " && ".join(commands)
    return measured(["/bin/sh", "-c", script], out, "floor"), folders


def baseline(extracted: list[Path], target: Path, out: Path) -> dict:
    """The original algorithm on a fresh extraction (moves the files out of it)."""
    remove(target)
    command = [sys.executable, str(BASELINE), str(target), *map(str, extracted)]
    result = measured(command, out, "baseline")
    inner = json.loads((out / "baseline.log").read_text().strip().splitlines()[-1])
    result["process_seconds"] = result["seconds"]
    result["seconds"] = inner["seconds"]  # the algorithm alone, not python + pandas start-up
    result["moved"] = inner["moved"]
    return result


def workflow_config(dataset: Path) -> dict:
    """Like tests/workflow_helpers.tiny_config, with the archives at the generated files.

    ``synthetic.out_dir`` stays ``resources/synthetic`` inside the fresh working directory,
    so nothing asks for rule make_synthetic's outputs and it never runs.
    """
    return {
        "archives": [str(dataset / ARCHIVE_NAMES[name]) for name in TRAINING],
        "questions": None,
        "categories": list(ATTRIBUTES),
        "synthetic": {"out_dir": "resources/synthetic"},
        "train": {"backbone": "SmallCNN", "weights": None, "image_size": 32, "gpus": 1},
    }


def ours(
    dataset: Path,
    workdir: Path,
    out: Path,
    name: str,
    targets: list[str],
    cores: int,
    fresh: bool = True,
):
    """Snakemake on ``targets`` in ``workdir`` (fresh unless told otherwise); wall time, peak
    RSS and per-job records."""
    import yaml

    if fresh:
        remove(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "bench-config.yaml"
    config.write_text(yaml.safe_dump(workflow_config(dataset)))
    hook = out / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(_HOOK)
    jobs = out / f"{name}.jobs.jsonl"
    remove(jobs)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
        "FASHIONAI_BENCH_JOBS": str(jobs),
    }
    command = [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(REPO / "config.yaml"), str(config), "--cores", str(cores), *targets,
    ]  # fmt: skip
    result = measured(command, out, name, env=env)
    if (workdir / "logs" / "make_synthetic.log").exists():
        raise SystemExit(f"{name}: rule make_synthetic ran; the archives were not taken as given")
    records = [json.loads(line) for line in jobs.read_text().splitlines() if line.strip()]
    result["split"] = split(records, result)
    return result


def _phase(argv0: str) -> str | None:
    """The phase of a job from its script, ``.snakemake/scripts/tmpXXXX.<script>.py``."""
    base = os.path.basename(argv0)
    if "/.snakemake/scripts/" not in argv0.replace(os.sep, "/") or not base.endswith(".py"):
        return None
    script = base[: -len(".py")].split(".", 1)[-1]
    if script not in PHASES:
        raise SystemExit(f"unexpected job script {argv0}: the data targets ran another rule")
    return PHASES[script]


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def split(records: list[dict], run: dict) -> dict:
    """Per phase: jobs, busy seconds (sum), span (first start to last end), peak RSS."""
    phases: dict[str, dict] = {}
    intervals, snakemake_rss, snakemake_cpu = [], 0, 0.0
    for record in records:
        phase = _phase(record["argv0"])
        if phase is None:
            if os.path.basename(record["argv0"]) == "snakemake":
                snakemake_rss = max(snakemake_rss, record["maxrss_kb"])
                snakemake_cpu += record["cpu"]
            continue
        entry = phases.setdefault(
            phase,
            {"jobs": 0, "busy": 0.0, "cpu": 0.0, "first": record["start"], "last": record["end"]},
        )
        entry["jobs"] += 1
        entry["busy"] += record["end"] - record["start"]
        entry["cpu"] += record["cpu"]
        entry["first"] = min(entry["first"], record["start"])
        entry["last"] = max(entry["last"], record["end"])
        entry["maxrss_kb"] = max(entry.get("maxrss_kb", 0), record["maxrss_kb"])
        intervals.append((record["start"], record["end"]))
    out = {}
    for phase in PHASE_ORDER:
        if phase in phases:
            entry = phases[phase]
            out[phase] = {
                "jobs": entry["jobs"],
                "busy": entry["busy"],
                "cpu": entry["cpu"],
                "span": entry["last"] - entry["first"],
                "start": entry["first"] - run["start"],
                "maxrss_kb": entry["maxrss_kb"],
            }
    first = min((a for a, _ in intervals), default=run["end"])
    last = max((b for _, b in intervals), default=run["end"])
    out["snakemake"] = {
        "to_first_job": first - run["start"],
        "after_last_job": run["end"] - last,
        "no_job_running": run["seconds"] - _union(intervals),
        "maxrss_kb": snakemake_rss,
        "cpu": snakemake_cpu,
    }
    if "extraction" in out:
        extraction = out["extraction"]
        out["after_extraction"] = run["seconds"] - extraction["start"] - extraction["span"]
    return out


# ---------------------------------------------------------------------------------------------
# Reporting


def _mb(kb: int) -> str:
    return f"{kb / MB:,.0f} MB"


def report(info: dict, trials: list[dict], cores: int) -> str:
    best = {key: min(trials, key=lambda t, k=key: t[k]["seconds"])[key] for key in STEPS}
    fixed = {key: min(t["fixed"][key]["seconds"] for t in trials) for key in STEPS}
    base, flo = best["baseline"]["seconds"], best["floor"]["seconds"]
    lines = [
        f"FashionAI data half: {info['rows']:,} annotation rows, {info['image_size']} px images, "
        f"{os.cpu_count()} CPUs, snakemake --cores {cores}"
        + (f", fastest of {len(trials)} runs" if len(trials) > 1 else ""),
        "",
        f"{'step':<46}{'seconds':>9}{'cpu s':>7}{'/baseline':>11}{'/floor':>8}{'peak RSS':>11}",
    ]
    rows = [
        ("floor: tar -xf x2, unzip -q (sequential)", "floor"),
        ("baseline: original algorithm, pre-extracted", "baseline"),
        ("ours: `data` (extraction ... plots)", "data"),
        ("ours: 8 x results/regrouped/{category}", "regrouped"),
        ("ours: `data` again, nothing to do (Snakemake)", "noop"),
    ]
    for label, key in rows:
        step = best[key]
        ratios = f"{step['seconds'] / base:>11.2f}{step['seconds'] / flo:>8.2f}"
        if key in ("floor", "baseline"):
            ratios = f"{'':>11}{'':>8}" if key == "floor" else f"{'':>11}{base / flo:>8.2f}"
        lines.append(
            f"{label:<46}{step['seconds']:>9.1f}{step['cpu']:>7.1f}{ratios}"
            f"{_mb(step['maxrss_kb']):>11}"
        )
    lines.append(
        "targets: ours/baseline <= 0.5, ours/floor <= 3, peak RSS < 2 GB "
        f"(baseline process incl. python start: {best['baseline']['process_seconds']:.1f} s)"
    )
    if len(trials) > 1:
        for key in STEPS:
            values = ", ".join(f"{t[key]['seconds']:.1f}" for t in trials)
            lines.append(f"  all runs, {key}: {values}")
    marginal = {key: best[key]["seconds"] - fixed[key] for key in STEPS}
    lines += [
        "",
        f"fixed and marginal costs: the same steps on {FIXED_ROWS} rows (5 images per class); "
        f"marginal = {info['rows']:,} rows minus {FIXED_ROWS} rows",
        f"{'step':<46}{'fixed s':>9}{'marginal s':>11}{'/baseline':>11}{'/floor':>8}",
    ]
    for label, key in rows[:-1]:
        per_base = marginal[key] / marginal["baseline"]
        per_floor = marginal[key] / marginal["floor"]
        lines.append(
            f"{label:<46}{fixed[key]:>9.1f}{marginal[key]:>11.1f}{per_base:>11.2f}{per_floor:>8.2f}"
        )
    for key, title in (("data", "`data`"), ("regrouped", "regrouped only")):
        run = best[key]
        lines += [
            "",
            f"per-rule split, {title} ({run['seconds']:.1f} s wall on {cores} cores):",
            f"{'phase':<12}{'jobs':>5}{'busy s':>8}{'cpu s':>7}{'span s':>8}{'starts at':>11}"
            f"{'peak RSS':>10}",
        ]
        for phase in PHASE_ORDER:
            entry = run["split"].get(phase)
            if entry:
                lines.append(
                    f"{phase:<12}{entry['jobs']:>5}{entry['busy']:>8.1f}{entry['cpu']:>7.1f}"
                    f"{entry['span']:>8.1f}{entry['start']:>10.1f}s{_mb(entry['maxrss_kb']):>10}"
                )
        sm = run["split"]["snakemake"]
        lines.append(
            f"snakemake: {sm['to_first_job']:.1f} s to the first job, "
            f"{sm['after_last_job']:.1f} s after the last, {sm['no_job_running']:.1f} s with no "
            f"job running; main process {sm['cpu']:.1f} s CPU, {_mb(sm['maxrss_kb'])}"
        )
        lines.append(
            f"after the last extraction job: {run['split']['after_extraction']:.1f} s "
            f"({run['split']['after_extraction'] / base:.2f} x baseline)"
        )
    return "\n".join(lines)


STEPS = ("floor", "baseline", "data", "regrouped", "noop")
# Rows of the dataset that measures fixed costs: 5 images per class, so that every archive
# has annotation rows of every attribute (the baseline's read_csv fails on an empty file).
FIXED_ROWS = 5 * CLASSES


def measure_steps(
    dataset: Path, info: dict, scratch: Path, out: Path, cores: int, keep: bool
) -> dict[str, dict]:
    """Floor, baseline and both workflow runs on ``dataset``, each in fresh folders."""
    out.mkdir(parents=True, exist_ok=True)
    measurements = {}
    log("  floor (tar, tar, unzip)")
    measurements["floor"], extracted = floor(dataset, scratch / "floor", out)
    log(f"  {measurements['floor']['seconds']:.1f} s; baseline on that extraction")
    measurements["baseline"] = baseline(extracted, scratch / "baseline", out)
    if measurements["baseline"]["moved"] != info["rows"]:
        raise SystemExit(f"baseline moved {measurements['baseline']['moved']} images")
    log(f"  {measurements['baseline']['seconds']:.1f} s; ours: data")
    if not keep:
        remove(scratch / "floor")
        remove(scratch / "baseline")
    measurements["data"] = ours(dataset, scratch / "workflow-data", out, "data", ["data"], cores)
    log(f"  {measurements['data']['seconds']:.1f} s; ours: data again, nothing to do")
    measurements["noop"] = ours(
        dataset, scratch / "workflow-data", out, "noop", ["data"], cores, fresh=False
    )
    if any(phase in measurements["noop"]["split"] for phase in PHASE_ORDER):
        raise SystemExit("the second `data` run ran jobs: the first one left something undone")
    log(f"  {measurements['noop']['seconds']:.1f} s; ours: regrouped trees only")
    if not keep:
        remove(scratch / "workflow-data")
    targets = [f"results/regrouped/{category}" for category in ATTRIBUTES]
    measurements["regrouped"] = ours(
        dataset, scratch / "workflow-regrouped", out, "regrouped", targets, cores
    )
    log(f"  {measurements['regrouped']['seconds']:.1f} s")
    if not keep:
        remove(scratch / "workflow-regrouped")
    return measurements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="approximate annotation rows")
    parser.add_argument("--image-size", type=int, default=32, help="pixels (default 32)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fashionai-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the last run's folders")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each step; fastest wins")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (default 2)")
    parser.add_argument("--seed", type=int, default=117)
    args = parser.parse_args(argv)
    for tool in ("tar", "unzip"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} not found (apt-get install {tool})")

    workdir = args.workdir.resolve()
    dataset, info = ensure_dataset(workdir, args.rows, args.image_size, args.seed)
    tiny, tiny_info = ensure_dataset(workdir, FIXED_ROWS, args.image_size, args.seed)
    scratch = workdir / "scratch"
    trials = []
    for trial in range(1, args.repeat + 1):
        out = workdir / "measurements" / f"run{trial}"
        log(f"run {trial}/{args.repeat}: {info['rows']:,} rows")
        measurements = measure_steps(dataset, info, scratch, out, args.cores, args.keep)
        log(f"run {trial}/{args.repeat}: fixed costs, {tiny_info['rows']} rows")
        fixed = measure_steps(
            tiny, tiny_info, scratch / "fixed", out / "fixed", args.cores, keep=False
        )
        measurements["fixed"] = {key: fixed[key] for key in STEPS}
        trials.append(measurements)

    table = report(info, trials, args.cores)
    results = {"dataset": info, "cores": args.cores, "trials": trials, "table": table}
    (workdir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(table)
    log(f"details: {workdir / 'results.json'}, logs under {workdir / 'measurements'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
