"""The workflow on a real one-node Slurm cluster, through ``--profile profiles/slurm``.

The module starts a private Slurm cluster on this machine (tests/slurm/start_cluster.sh: its own
munged, slurmctld and slurmd, config and state in a scratch folder), runs the workflow for two
categories with the cluster profile, and checks that every job that is not a local rule went
through sbatch (a recording sbatch wrapper, Slurm's own job records from squeue and the plugin's
log files agree), with the resources the profile sets, and that the models and learning curves
exist. The cluster is stopped afterwards.

Slurm comes from Debian's packages (tests/slurm/install.sh; CI runs it before ``make test``).
Where Slurm is missing and cannot be installed, or the cluster does not start, the tests skip
with the reason; set FASHIONAI_REQUIRE_SLURM=1 to make that a failure instead.

The test node has no GPU. It declares two stand-in GPUs (gres.conf, File=/dev/null) so that the
plugin's ``--gpus=1`` for training jobs (``train.gpus: 1``) is schedulable; on a real partition
without GPUs, set ``train.gpus: 0`` instead (README, "Running on a cluster"). Slurm sets each
job's ``CUDA_VISIBLE_DEVICES``, and the training jobs keep it (``training.json``), although a
stand-in ``nvidia-smi`` (tests/bin) lists GPUs they could claim themselves.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from fashionai.outputs import curves_file, model_dir
from tests.workflow_helpers import REPO, SNAKEMAKE, tiny_config

pytestmark = pytest.mark.slow

HELPERS = REPO / "tests" / "slurm"
PROFILE = REPO / "profiles" / "slurm"
PARTITION = "fashionai"
CATEGORIES = ["collar_design_labels", "skirt_length_labels"]
TARGETS = [
    "data",
    *(f"{model_dir(c, 'default')}/best.weights.h5" for c in CATEGORIES),
    *(curves_file(c, "default") for c in CATEGORIES),
]
SLURM_TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "srun", "scontrol")
RUN_TIMEOUT = 900  # seconds; the run itself takes about two minutes


def unavailable(reason: str) -> None:
    """Skip with the reason, or fail where Slurm is required (FASHIONAI_REQUIRE_SLURM=1)."""
    if os.environ.get("FASHIONAI_REQUIRE_SLURM", "") not in ("", "0"):
        pytest.fail(reason)
    pytest.skip(reason)


def missing_tools() -> list[str]:
    return [tool for tool in SLURM_TOOLS if shutil.which(tool) is None]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Cluster:
    directory: Path
    conf: Path

    def env(self) -> dict[str, str]:
        """Environment for Slurm's commands, and for the jobs (sbatch --export=ALL)."""
        return {
            **os.environ,
            "SLURM_CONF": str(self.conf),
            # For tests/slurm/bin/srun, inside jobs: the job step drops SLURM_CONF.
            "FASHIONAI_TEST_SLURM_CONF": str(self.conf),
            # The stand-in nvidia-smi lists two GPUs: were the jobs to claim GPUs themselves
            # instead of keeping Slurm's, they would.
            "PATH": os.pathsep.join(
                [str(HELPERS / "bin"), str(REPO / "tests" / "bin"), os.environ.get("PATH", "")]
            ),
        }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    if missing_tools() and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["bash", str(HELPERS / "install.sh")], capture_output=True, timeout=900, check=False
        )
    if missing := missing_tools():
        unavailable(
            f"Slurm is not installed ({', '.join(missing)} missing) and could not be installed "
            "here: run tests/slurm/install.sh as root (Debian: slurmctld slurmd slurm-client munge)"
        )
    # Kept with pytest's other temporary folders (daemon logs for a post-mortem), unless that
    # path is too long for munged's socket inside it (a Unix socket path has at most 107 bytes).
    directory = tmp_path_factory.mktemp("slurm")
    if len(str(directory / "run" / "munge.socket")) > 100:
        directory = Path(tempfile.mkdtemp(prefix="fashionai-slurm-", dir="/tmp"))
    ctld_port, slurmd_port = free_ports(2)
    env = {
        **os.environ,
        "SLURM_TEST_PARTITION": PARTITION,
        "SLURM_TEST_CTLD_PORT": str(ctld_port),
        "SLURM_TEST_SLURMD_PORT": str(slurmd_port),
        "SLURM_TEST_GPUS": "2",  # both training jobs at once
    }
    env.pop("SLURM_CONF", None)
    try:
        started = subprocess.run(
            [str(HELPERS / "start_cluster.sh"), str(directory)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        started = None
    if started is None or started.returncode != 0:
        stop_cluster(directory)
        detail = "timed out after 120 s" if started is None else started.stderr.strip()[-2000:]
        unavailable(f"could not start a one-node Slurm cluster: {detail}")
    yield Cluster(directory=directory, conf=directory / "etc" / "slurm.conf")
    stop_cluster(directory)


def stop_cluster(directory: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    subprocess.run(
        [str(HELPERS / "stop_cluster.sh"), str(directory)],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


def snakemake_command(workdir: Path, *extra: str, targets: list[str] = TARGETS) -> list[str]:
    """The user's command, `snakemake --profile profiles/slurm`, on the tiny test data."""
    return [
        str(SNAKEMAKE),
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--profile", str(PROFILE),
        "--configfile", str(REPO / "config.yaml"), str(workdir / "test-config.yaml"),
        *extra,
        *targets,
    ]  # fmt: skip


def write_config(workdir: Path, **train: object) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    train = {"gpus": 1, "threads": 1, **train}
    config = tiny_config(categories=CATEGORIES, questions=None, train=train)
    (workdir / "test-config.yaml").write_text(yaml.safe_dump(config))


@dataclass
class Run:
    workdir: Path
    log: str  # snakemake's stdout and stderr
    sbatch_calls: list[list[str]]  # the recorded sbatch command lines, split
    slurm_jobs: dict[str, tuple[str, str]]  # Slurm job id -> (comment, state), from squeue


def run_on_slurm(
    cluster: Cluster, workdir: Path, record: Path, *extra: str, targets: list[str] = TARGETS
) -> str:
    """`snakemake --profile profiles/slurm` with the test's options; its log, checked."""
    env = {
        **cluster.env(),
        "FASHIONAI_SBATCH_RECORD": str(record),
        "FASHIONAI_SLURM_PARTITION": PARTITION,
        "FASHIONAI_SLURM_GPU_PARTITION": "",
        "FASHIONAI_SLURM_ACCOUNT": "",
        "FASHIONAI_SLURM_GPU_MODEL": "",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    command = snakemake_command(
        workdir,
        # No accounting database here: job states come from squeue (MinJobAge=600 keeps
        # finished jobs listed). Keep the plugin's logs of successful jobs, as evidence.
        "--slurm-status-command", "squeue",
        "--slurm-keep-successful-logs",
        # Short jobs: poll often instead of the profile's 40 s first delay.
        "--slurm-init-seconds-before-status-checks", "2",
        "--seconds-between-status-checks", "2",
        # The node has this machine's CPUs; decode_labels asks for 4 threads.
        "--max-threads", str(os.cpu_count() or 1),
        *extra,
        targets=targets,
    )  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        log, _ = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)  # like Ctrl-C: snakemake scancels its jobs
        try:
            log, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            log, _ = process.communicate()
        pytest.fail(f"snakemake on Slurm did not finish in {RUN_TIMEOUT} s:\n{log[-5000:]}")
    assert process.returncode == 0, f"snakemake on Slurm failed:\n{log[-8000:]}"
    return log


@pytest.fixture(scope="module")
def slurm_run(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Run:
    workdir = tmp_path_factory.mktemp("slurm-run")
    # No feature cache: one level of jobs less to wait for on the cluster. The features rule's
    # resources under the profile are checked in a dry run (the GPU-rules test below).
    write_config(workdir, cache_features=False)
    record = workdir / "sbatch-calls.txt"
    log = run_on_slurm(cluster, workdir, record)
    (workdir / "snakemake-output.txt").write_text(log)

    squeue = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%k|%T|%S|%e"],
        capture_output=True,
        text=True,
        env=cluster.env(),
        check=True,
    )
    slurm_jobs, timings = {}, []
    for line in squeue.stdout.splitlines():
        job_id, comment, state, start, end = line.strip().split("|")
        slurm_jobs[job_id] = (comment, state)
        timings.append(f"{job_id} {comment} {state} {start} {end}")
    (workdir / "squeue.txt").write_text("\n".join(timings) + "\n")
    calls = (
        [shlex.split(line) for line in record.read_text().splitlines()] if record.exists() else []
    )
    return Run(workdir=workdir, log=log, sbatch_calls=calls, slurm_jobs=slurm_jobs)


@dataclass
class Job:
    rule: str
    jobid: str
    local: bool
    has_output: bool
    wildcards: dict[str, str]


JOB_HEADER = re.compile(r"^(local)?rule (\w+):$")


def jobs_in_log(log: str) -> list[Job]:
    """The jobs snakemake announces: `rule NAME:` / `localrule NAME:` and the indented lines."""
    jobs, current = [], None
    for line in log.splitlines():
        if header := JOB_HEADER.match(line.strip()):
            current = Job(header[2], "", bool(header[1]), False, {})
            jobs.append(current)
        elif current is not None and line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            if key == "jobid":
                current.jobid = value
            elif key == "output":
                current.has_output = True
            elif key == "wildcards":
                current.wildcards = dict(pair.split("=", 1) for pair in value.split(", "))
        else:
            current = None
    return jobs


SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.")


def submissions(log: str) -> dict[str, tuple[str, Path]]:
    """Snakemake job id -> (Slurm job id, the plugin's log file), from the plugin's messages."""
    return {m[1]: (m[2], Path(m[3])) for m in SUBMITTED.finditer(log)}


def sbatch_option(call: list[str], option: str) -> str | None:
    """The value of `option` in an sbatch call: `--mem 4000`, `-p x` or `--gpus=1` forms."""
    for index, arg in enumerate(call):
        if arg == option and index + 1 < len(call):
            return call[index + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def calls_for(run: Run, rule: str) -> list[list[str]]:
    comment = re.compile(rf"^rule_{rule}(_wildcards_.*)?$")
    return [c for c in run.sbatch_calls if comment.match(sbatch_option(c, "--comment") or "")]


def job_stats(log: str) -> Counter:
    """Rule -> job count, from the `Job stats:` table snakemake prints before it starts."""
    table = log[log.index("Job stats:") :].splitlines()[3:]
    counts = Counter()
    for line in table:
        rule, count = line.split()
        if rule == "total":
            return counts
        counts[rule] = int(count)
    raise AssertionError("no total in the Job stats table")


def test_every_job_that_is_not_local_went_through_sbatch(slurm_run: Run) -> None:
    jobs = jobs_in_log(slurm_run.log)
    submitted = submissions(slurm_run.log)
    cluster_jobs = [j for j in jobs if not j.local and j.has_output]
    # Every job of the plan ran; only the target rule `data` (no output) ran in snakemake itself.
    assert Counter(j.rule for j in cluster_jobs) + Counter(data=1) == job_stats(slurm_run.log)
    assert [j.rule for j in jobs if j.local or not j.has_output] == ["data"]
    assert Counter(j.rule for j in cluster_jobs) >= Counter(
        make_synthetic=1, extract_archive=3, merge_labels=1, decode_labels=1, category_tree=2,
        regroup=2, label_statistics=2, split=2, train=2, plot_history=2,
    )  # fmt: skip
    # Each of them was submitted once, and Slurm ran it to completion under its rule's name.
    assert sorted(submitted) == sorted(j.jobid for j in cluster_jobs)
    for job in cluster_jobs:
        slurm_id, plugin_log = submitted[job.jobid]
        comment, state = slurm_run.slurm_jobs[slurm_id]
        wildcards = "_".join(job.wildcards.values())
        assert comment == f"rule_{job.rule}" + (f"_wildcards_{wildcards}" if wildcards else "")
        assert state == "COMPLETED", (job, state)
        assert plugin_log.is_file(), plugin_log
        assert plugin_log.is_relative_to(slurm_run.workdir / ".snakemake" / "slurm_logs")
    # sbatch ran exactly once per job, and Slurm knows no other job of this run.
    assert len(slurm_run.sbatch_calls) == len(cluster_jobs)
    assert len(slurm_run.slurm_jobs) == len(cluster_jobs)
    run_id = re.search(r"SLURM run ID: (\S+)", slurm_run.log)[1]
    assert {sbatch_option(c, "--job-name") for c in slurm_run.sbatch_calls} == {run_id}


@pytest.fixture(scope="module")
def training_rerun(
    slurm_run: Run, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The log of a run that trains both categories again, their inputs all ready.

    In the first run the training jobs become ready whenever their category's tree is
    done, so whether they overlap there depends on timing; here both are ready at the start.
    It runs in a copy of the first run's folder, which the other tests keep checking.
    """
    workdir = tmp_path_factory.mktemp("slurm-rerun") / "run"
    shutil.copytree(slurm_run.workdir, workdir, symlinks=True)
    # --until: only the training jobs (--forcerun alone also pulls in the default target).
    log = run_on_slurm(
        cluster, workdir, workdir / "sbatch-calls-rerun.txt", "--forcerun", "train",
        "--until", "train", targets=[],
    )  # fmt: skip
    (workdir / "snakemake-output-rerun.txt").write_text(log)
    return log


def test_training_jobs_are_in_flight_together(training_rerun: str) -> None:
    """`gpu` is scoped per job: the `resources: gpu=1` of profiles/default holds back no job."""
    lines = training_rerun.splitlines()
    train_ids = {j.jobid for j in jobs_in_log(training_rerun) if j.rule == "train"}
    submitted = [
        i for i, line in enumerate(lines) if (m := SUBMITTED.search(line)) and m[1] in train_ids
    ]
    finished = [
        i for i, line in enumerate(lines) if re.match(r"Finished jobid: \d+ \(Rule: train\)", line)
    ]
    assert len(submitted) == len(finished) == len(CATEGORIES)
    assert max(submitted) < min(finished), "the second training job waited for the first"


def test_training_jobs_ask_slurm_for_a_gpu_and_more_memory_and_time(slurm_run: Run) -> None:
    train = calls_for(slurm_run, "train")
    assert len(train) == len(CATEGORIES)
    for call in train:
        assert sbatch_option(call, "--gpus") == "1", call
        assert sbatch_option(call, "-p") == PARTITION
        assert sbatch_option(call, "--mem") == "16000"
        assert sbatch_option(call, "-t") == str(24 * 60)
        assert sbatch_option(call, "--cpus-per-task") == "1"  # train.threads
    for rule in ("make_synthetic", "decode_labels", "regroup", "plot_history"):
        for call in calls_for(slurm_run, rule):
            assert sbatch_option(call, "--gpus") is None, call
            assert sbatch_option(call, "-p") == PARTITION
            assert sbatch_option(call, "--mem") == "4000"  # default-resources
            assert sbatch_option(call, "-t") == "60"
    # A rule's own resources still win over the profile's defaults (extract_archive: 1000 MB).
    assert {sbatch_option(c, "--mem") for c in calls_for(slurm_run, "extract_archive")} == {"1000"}


def test_weights_and_learning_curves_exist(slurm_run: Run) -> None:
    for category in CATEGORIES:
        weights = slurm_run.workdir / model_dir(category, "default") / "best.weights.h5"
        curves = slurm_run.workdir / curves_file(category, "default")
        assert weights.stat().st_size > 0, weights
        assert curves.stat().st_size > 10_000, curves
        history = (slurm_run.workdir / model_dir(category, "default") / "history.csv").read_text()
        assert len(history.strip().splitlines()) == 1 + 2  # header and tiny_config's 2 epochs


def test_training_jobs_keep_the_gpu_slurm_gave_them(slurm_run: Run) -> None:
    submitted = submissions(slurm_run.log)
    for job in (j for j in jobs_in_log(slurm_run.log) if j.rule == "train"):
        category = job.wildcards["category"]
        log = (slurm_run.workdir / "logs/train/default" / f"{category}.log").read_text()
        given = re.search(
            r"GPUs: Slurm job (\d+) was given CUDA_VISIBLE_DEVICES=(\w+), (.*); used as it is", log
        )
        assert given, log[:2000]
        assert given[1] == submitted[job.jobid][0]
        assert given[2] in ("0", "1")
        assert re.search(rf"SLURM_(STEP|JOB)_GPUS={given[2]}\b", given[3]), given[0]
        summary = json.loads(
            (slurm_run.workdir / model_dir(category, "default") / "training.json").read_text()
        )
        assert summary["gpu_devices"] == given[2]


def test_a_rerun_through_the_profile_has_nothing_to_do(cluster: Cluster, slurm_run: Run) -> None:
    result = subprocess.run(
        snakemake_command(slurm_run.workdir, "--dry-run"),
        cwd=slurm_run.workdir,
        capture_output=True,
        text=True,
        env=cluster.env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


# Without a cluster: what the profile asks for, after Snakemake merges in profiles/default.


def dry_run_resources(tmp_path: Path, **env: str) -> dict[str, dict[str, str]]:
    """Rule -> the resources snakemake reports for its first job in a dry run with the profile."""
    write_config(tmp_path)
    run_env = {**os.environ, **env}
    result = subprocess.run(
        snakemake_command(tmp_path, "--dry-run"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=run_env,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert f"Using profiles {PROFILE} and workflow specific profile" in output
    resources, rule = {}, None
    for line in output.splitlines():
        if header := JOB_HEADER.match(line.strip()):
            rule = header[2]
        elif rule and line.strip().startswith("resources: ") and rule not in resources:
            pairs = line.strip().removeprefix("resources: ").split(", ")
            resources[rule] = dict(pair.split("=", 1) for pair in pairs)
    return resources


def test_the_workflow_profile_does_not_override_the_cluster_profile(tmp_path: Path) -> None:
    resources = dry_run_resources(
        tmp_path,
        FASHIONAI_SLURM_PARTITION="cpu",
        FASHIONAI_SLURM_GPU_PARTITION="gpu",
        FASHIONAI_SLURM_ACCOUNT="",
        FASHIONAI_SLURM_GPU_MODEL="a100",
    )
    data = resources["decode_labels"]
    assert (data["mem_mb"], data["runtime"], data["slurm_partition"]) == ("4000", "60", "cpu")
    assert "slurm_account" not in data and "gpu" not in data
    train = resources["train"]
    assert (train["mem_mb"], train["runtime"], train["slurm_partition"]) == ("16000", "1440", "gpu")
    assert (train["gpu"], train["gpu_model"], train["cpus_per_task"]) == ("1", "a100", "1")
    features = resources["features"]  # with train.cache_features (the default)
    assert (features["mem_mb"], features["runtime"], features["slurm_partition"]) == (
        "8000",
        "720",
        "gpu",
    )
    assert (features["gpu"], features["gpu_model"]) == ("1", "a100")


def test_the_cluster_profile_scopes_gpus_per_job() -> None:
    text = (PROFILE / "config.yaml").read_text()
    profile = yaml.safe_load(text)
    assert profile["executor"] == "slurm"
    assert profile["set-resource-scopes"] == {"gpu": "local"}
    default = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    # Keys of profiles/default win over any --profile: none of the cluster's may be there.
    cluster_keys = {"default-resources", "set-resources", "set-resource-scopes", "jobs", "executor"}
    assert not cluster_keys & set(default), set(default)
