"""Experiment names the start-up check refuses, each with a message naming the experiment (or
ensemble member) and what is wrong: names YAML does not read as text, long names, and names
Snakemake would refuse as runaway wildcards only once the data and features jobs had run."""

from __future__ import annotations

import pytest
import yaml
from snakemake.io import PeriodicityDetector

from fashionai.config import ConfigError, validate_config
from tests.workflow_helpers import tiny_config

CATEGORY = "collar_design_labels"
QUOTE = ", not as text; quote it as written (e.g. '2': or 'yes':)"

# case: (the experiments block as written in config.yaml, the message)
UNQUOTED = {
    "integer": ("2: {dropout: 0.1}", f"experiments.2: YAML reads this name as the number 2{QUOTE}"),
    "float": (
        "1.5: {dropout: 0.1}",
        f"experiments.1.5: YAML reads this name as the number 1.5{QUOTE}",
    ),
    "yes": (
        "yes: {dropout: 0.1}",
        f"experiments.True: YAML reads this name as the boolean True{QUOTE}",
    ),
    "date": (
        "2024-01-01: {dropout: 0.1}",
        f"experiments.2024-01-01: YAML reads this name as the date 2024-01-01{QUOTE}",
    ),
    "null": (
        "~: {dropout: 0.1}",
        f"experiments.None: YAML reads this name as null (an empty name, ~ or null){QUOTE}",
    ),
}


def validate(experiments: object, ensemble: object = None) -> None:
    validate_config(tiny_config(categories=[CATEGORY], experiments=experiments, ensemble=ensemble))


@pytest.mark.parametrize(("written", "message"), UNQUOTED.values(), ids=list(UNQUOTED))
def test_a_name_yaml_does_not_read_as_text_is_refused(written: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        validate(yaml.safe_load(written))
    assert str(error.value) == message


@pytest.mark.parametrize("written", ["'2'", "'yes'", "'2024-01-01'", "'1.5'"])
def test_the_quoted_name_is_accepted(written: str) -> None:
    validate(yaml.safe_load(f"{written}: {{dropout: 0.1}}"))


def test_an_unquoted_ensemble_member_is_refused() -> None:
    with pytest.raises(ConfigError) as error:
        validate({"2": {"dropout": 0.1}}, yaml.safe_load("members: [default, 2]"))
    assert str(error.value) == f"ensemble.members: 2: YAML reads this name as the number 2{QUOTE}"


def test_a_long_name_is_refused() -> None:
    name = "a" + "bcdefghij" * 28 + "klm"  # 256: longer than a file name may be (255)
    with pytest.raises(ConfigError) as error:
        validate({name: {"dropout": 0.1}})
    assert str(error.value) == f"experiments.{name}: the name has 256 characters; at most 64"
    validate({name[:64]: {"dropout": 0.1}})


# case: (name, its repeated ending and how often); Snakemake's own detector agrees
PERIODIC = {
    "one letter": ("a" * 20, "a", 20),
    "after a prefix": ("lr_" + "0" * 25, "0", 25),
    "two letters": ("run_" + "ab" * 20, "ab", 20),
    "three letters": ("abc" * 21, "abc", 21),
}


@pytest.mark.parametrize(("name", "unit", "repeats"), PERIODIC.values(), ids=list(PERIODIC))
def test_a_name_snakemake_takes_for_a_runaway_wildcard_is_refused(
    name: str, unit: str, repeats: int
) -> None:
    assert PeriodicityDetector().is_periodic(name) is not None  # PeriodicWildcardError later
    expected = (
        f"the name ends in {unit!r} repeated {repeats} times, which Snakemake refuses as a "
        "runaway wildcard (PeriodicWildcardError, 20 repeats or more); choose another"
    )
    with pytest.raises(ConfigError) as error:
        validate({name: {"dropout": 0.1}})
    assert str(error.value) == f"experiments.{name}: {expected}"
    with pytest.raises(ConfigError) as error:
        validate({}, {"members": ["default", name]})
    assert str(error.value) == f"ensemble.members: {name!r}: {expected}"


@pytest.mark.parametrize("name", ["a" * 19, "ab" * 19 + "c", "x" + "abc" * 19, "lr_0.0001"])
def test_a_name_with_fewer_repeats_is_accepted(name: str) -> None:
    assert PeriodicityDetector().is_periodic(name) is None
    validate({name: {"dropout": 0.1}}, {"members": ["default", name]})
