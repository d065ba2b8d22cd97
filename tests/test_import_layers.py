"""The package's imports run one way: no module imports, directly or through others, a module
that imports it back; the data modules (``fashionai/*.py`` but the configuration and the
command line) import no layer above them; training imports nothing of evaluation, prediction
nothing of training or evaluation, evaluation nothing of training. Every import counts, those
inside functions too: a lazy import is still an arrow."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.workflow_helpers import REPO

PACKAGE = REPO / "fashionai"
ABOVE_DATA = ("fashionai.training", "fashionai.evaluation", "fashionai.prediction")
# The data modules that may read the layers above: the configuration checks training
# settings, and the command line runs prediction.
ORCHESTRATION = ("fashionai.config", "fashionai.__main__")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found.update(name for name in names if name.split(".")[0] == "fashionai")
        graph[module_name(path)] = found - {module_name(path)}
    return graph


GRAPH = imports()


def test_the_graph_is_read() -> None:
    assert "fashionai.training.settings" in GRAPH["fashionai.config"]
    assert "fashionai.training.backbones" in GRAPH["fashionai.training.weights"]
    assert len(GRAPH) > 40


def test_no_module_imports_itself_back() -> None:
    try:
        tuple(TopologicalSorter(GRAPH).static_order())
    except CycleError as error:
        pytest.fail(f"an import circle: {' -> '.join(error.args[1])}")


@pytest.mark.parametrize(
    "module",
    [
        name
        for name in GRAPH
        if name.count(".") == 1 and name not in ORCHESTRATION and name != "fashionai"
    ],
)
def test_a_data_module_imports_no_layer_above(module: str) -> None:
    assert not [name for name in GRAPH[module] if name.startswith(ABOVE_DATA)]


@pytest.mark.parametrize(
    ("layer", "other"),
    [
        ("fashionai.training", "fashionai.evaluation"),
        # Prediction decodes images with fashionai.pixels, as training does.
        ("fashionai.prediction", "fashionai.training"),
        # Both read a model's folder through fashionai.model_folder.
        ("fashionai.prediction", "fashionai.evaluation"),
        ("fashionai.evaluation", "fashionai.training"),
    ],
)
def test_a_layer_imports_nothing_of_another(layer: str, other: str) -> None:
    modules = [name for name in GRAPH if name.startswith(layer)]
    assert modules
    assert {
        name: found
        for name in modules
        if (found := [m for m in GRAPH[name] if m.startswith(other)])
    } == {}
