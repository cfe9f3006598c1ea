"""The README's complete connector example is a valid connector file."""

import re
from pathlib import Path

from restsync_dagster.connector import parse_connector

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_complete_example_in_the_readme_is_a_valid_connector():
    section = README.read_text().split("## Adding a connector", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert example is not None
    connector = parse_connector(example.group(1), "billing.yaml")
    assert [r.name for r in connector.resources] == ["invoices", "invoice_lines"]
    assert connector.secret_env == ["BILLING_TOKEN"]
    assert connector.config.retry.run_retries == 3
