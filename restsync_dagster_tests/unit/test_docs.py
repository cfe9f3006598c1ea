"""The documentation's YAML is real: every connector in README.md and docs/ validates, and every
other YAML block parses. The complete example of docs/connectors.md is checked in detail."""

from __future__ import annotations

import re

import pytest
import yaml

from restsync_dagster.connector import parse_connector
from restsync_dagster_tests.helpers import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def yaml_blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 1
            found.append((page.relative_to(REPO).as_posix(), line, match.group(1)))
    return found


def test_the_complete_example_in_the_connector_docs_is_a_valid_connector():
    section = (REPO / "docs" / "connectors.md").read_text().split("## Adding a connector", 1)[1]
    example = BLOCK.search(section)
    assert example is not None
    connector = parse_connector(example.group(1), "billing.yaml")
    assert [r.name for r in connector.resources] == ["invoices", "invoice_lines"]
    assert connector.secret_env == ["BILLING_TOKEN"]
    assert connector.config.retry.run_retries == 3


@pytest.mark.parametrize(("page", "line", "text"), yaml_blocks(), ids=lambda v: str(v)[:40])
def test_every_yaml_block_of_the_docs_parses_and_every_connector_in_them_validates(
    page, line, text
):
    document = yaml.safe_load(text)
    if isinstance(document, dict) and "attributes" in document and "type" in document:
        document = document["attributes"]  # a defs.yaml: its attributes are a connector file
    if isinstance(document, dict) and {"name", "source"} <= set(document):
        parse_connector(yaml.safe_dump(document), f"{page}:{line}")
