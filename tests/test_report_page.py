"""The HTML report's front page: the stylesheet the workflow profile hands to every
``snakemake --report``, and the parts of report/workflow.rst that it lays out side by side
(the layout itself checked by eye in 1400 and 1920 px windows)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace

import jinja2
import yaml
from docutils.core import publish_parts
from snakemake.profiles import ProfileConfigFileParser

from tests.workflow_helpers import REPO


def test_the_workflow_profile_gives_the_report_its_stylesheet() -> None:
    with open(REPO / "profiles/default/config.yaml") as stream:
        settings = ProfileConfigFileParser().parse(stream)  # paths resolved as Snakemake does
    stylesheet = (REPO / "report/report.css").resolve()
    assert (REPO / settings["report-stylesheet"]).resolve() == stylesheet
    assert ".prose .document > div" in stylesheet.read_text()


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
