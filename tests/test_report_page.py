"""The HTML report's front page: the stylesheet that ``make report`` and ``make demo-report``
hand to ``snakemake --report``, and the parts of report/workflow.rst that it lays out side by side
(the layout itself checked by eye in 1400 and 1920 px windows)."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
import yaml
from docutils.core import publish_parts

from tests.workflow_helpers import REPO


@pytest.mark.parametrize("target", ["report", "demo-report"])
def test_the_report_targets_give_the_report_its_stylesheet(target: str) -> None:
    """By an absolute path: Snakemake reads it from the run's folder (``--directory``)."""
    planned = subprocess.run(
        ["make", "-n", "-C", str(REPO), target],  # -n: prints the commands, runs none
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    stylesheet = re.search(r"--report-stylesheet (\S+)", planned)
    assert stylesheet, planned
    assert Path(stylesheet[1]) == (REPO / "report/report.css").resolve()
    assert ".prose .document > div" in Path(stylesheet[1]).read_text()


def test_the_front_page_has_the_two_parts_the_stylesheet_lays_out() -> None:
    snakemake = SimpleNamespace(config=yaml.safe_load((REPO / "config.yaml").read_text()))
    text = jinja2.Template((REPO / "report/workflow.rst").read_text())
    body = publish_parts(text.render(snakemake=snakemake, files=[]), writer="html")
    document = ET.fromstring(body["html_body"])
    assert document.get("class") == "document"
    parts = [(child.tag, child.get("class"), child.get("id")) for child in document]
    assert parts == [
        ("h1", "title", None),
        ("div", "summary docutils container", None),
        ("div", "section", "experiments"),
    ]
    assert document[1][0].text.startswith("This report comes from")
