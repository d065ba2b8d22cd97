"""The conda environments of the rules (envs/*.yaml) agree with the pinned requirements.

`--software-deployment-method conda` (`--sdm conda`) builds one environment per file in envs/;
their pip sections must pin exactly what requirements.txt pins, so that a conda run and the
virtualenv run the same versions. Every rule in rules/*.smk names one of these files.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.workflow_helpers import REPO, SNAKEMAKE

ENVS = sorted((REPO / "envs").glob("*.yaml"))
RULE_FILES = sorted((REPO / "rules").glob("*.smk"))
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)\s*$")
USE_RULE = re.compile(r"^use rule (\w+) as (\w+) with:", re.M)
RULE_HEADER = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:")


def normalise(name: str) -> str:
    """PEP 503: PyYAML, pyyaml and py_yaml are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: not pinned with ==: {line!r}"
        pins[normalise(match[1])] = match[3]
    return pins


def pip_section(env: Path) -> list[str]:
    spec = yaml.safe_load(env.read_text())
    sections = [
        d["pip"] for d in spec.get("dependencies", []) if isinstance(d, dict) and "pip" in d
    ]
    assert len(sections) == 1, f"{env.name}: expected one pip: section, found {len(sections)}"
    return sections[0]


def rule_conda_envs() -> dict[str, tuple[Path, str | None]]:
    """Rule name -> (the .smk file, the value of its conda: directive or None)."""
    rules: dict[str, tuple[Path, str | None]] = {}
    derived: dict[str, str] = {}  # `use rule A as B with:` -> B inherits A's conda
    for path in RULE_FILES:
        derived |= {new: old for old, new in USE_RULE.findall(path.read_text())}
        current = None
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            if header := RULE_HEADER.match(line):
                current = header[1]
                assert current not in rules, f"rule {current} defined twice"
                rules[current] = (path, None)
            elif line and not line[0].isspace() and not line.startswith("#"):
                current = None  # a top-level statement ends the rule
            elif current and line.strip().startswith("conda:"):
                value = line.split(":", 1)[1].strip()
                if not value:  # the usual snakefmt layout: the value on the next line
                    value = next(x.strip() for x in lines[index + 1 :] if x.strip())
                rules[current] = (path, value)
    for new, old in derived.items():
        assert new not in rules, f"rule {new} defined twice"
        rules[new] = rules[old]
    return rules


def test_there_are_environments_and_requirements() -> None:
    assert {env.name for env in ENVS} >= {"data.yaml", "train.yaml", "plot.yaml"}
    assert requirement_pins(REPO / "requirements.txt")


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_every_pin_in_an_environment_matches_requirements_txt(env: Path) -> None:
    required = requirement_pins(REPO / "requirements.txt")
    for entry in pip_section(env):
        match = PIN.match(str(entry))
        assert match, f"{env.name}: {entry!r} is not pinned with =="
        name, version = normalise(match[1]), match[3]
        assert name in required, f"{env.name}: {match[1]} is not in requirements.txt"
        assert version == required[name], (
            f"{env.name}: {match[1]}=={version}, requirements.txt pins {required[name]}"
        )


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_an_environment_has_python_and_pip_from_conda_forge(env: Path) -> None:
    spec = yaml.safe_load(env.read_text())
    assert "conda-forge" in spec["channels"]
    conda = [d for d in spec["dependencies"] if isinstance(d, str)]
    assert "pip" in conda
    python = [d for d in conda if re.match(r"python\s*[=<>]", d)]
    assert len(python) == 1, f"{env.name}: pin python once"
    version = re.search(r"3\.(\d+)", python[0])
    assert version and 11 <= int(version[1]) <= 12, f"{env.name}: {python[0]} (README: 3.11-3.12)"


def test_every_rule_has_a_conda_env_that_exists() -> None:
    rules = rule_conda_envs()
    assert rules, "no rule found in rules/*.smk"
    missing = [name for name, (_, value) in rules.items() if value is None]
    assert not missing, f"rules without conda: {missing}"
    for name, (path, value) in rules.items():
        literal = re.fullmatch(r"""(["'])(.+)\1""", value)
        assert literal, f"rule {name}: conda: {value} is not a plain path"
        env = (path.parent / literal[2]).resolve()  # relative to the .smk file, as in Snakemake
        assert env.is_file(), f"rule {name} ({path.name}): {env} does not exist"
        assert env.parent == REPO / "envs", f"rule {name}: {env} is not in envs/"


def test_the_rules_found_are_the_workflows_rules(tmp_path: Path) -> None:
    """Cross-check of the parsing above against snakemake's own list (all but the targets)."""
    result = subprocess.run(
        [
            str(SNAKEMAKE),
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(REPO / "config.yaml"),
            str(REPO / "demo" / "config.yaml"),
            "--list-rules",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    snakefile_rules = set(re.findall(r"^rule (\w+):", (REPO / "Snakefile").read_text(), re.M))
    assert listed - snakefile_rules == set(rule_conda_envs())
