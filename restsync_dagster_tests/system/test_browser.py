"""What a person sees: Debian's chromium, headless, driven by Playwright (which downloads
nothing: it is pointed at /usr/bin/chromium), against a real ``dagster dev`` with the demo.

The test opens the global asset graph (five groups), materializes the ``generic`` connector
with the UI's *Materialize all* button, waits for the run to succeed, and opens a materialized
asset's events with their metadata. Screenshots go to the test's temporary directory, and also
to ``RESTSYNC_SCREENSHOTS_DIR`` when it is set (``docs/screenshots`` refreshes the README's).

Without chromium the test is skipped, or fails when ``RESTSYNC_REQUIRE_BROWSER=1`` (CI)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from playwright.sync_api import expect

from restsync_dagster.cli.demo import demo_env
from restsync_dagster_tests.helpers import graphql_client, table_rows, wait_for_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GROUPS = ("analytics", "communications", "database", "ecommerce", "generic")
VIEWPORT = {"width": 1400, "height": 900}
#: Flags that keep chromium off the network and away from a sandbox this container lacks.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Everything the UI waits on is local, but the machine may be busy.
UI_TIMEOUT_MS = 60_000


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("RESTSYNC_CHROMIUM") or "/usr/bin/chromium"
    if not Path(path).exists():
        message = f"needs Debian's chromium at {path} (apt-get install chromium)"
        if os.environ.get("RESTSYNC_REQUIRE_BROWSER", "").strip() in {"1", "true", "yes"}:
            pytest.fail(f"RESTSYNC_REQUIRE_BROWSER=1 but this test {message}", pytrace=False)
        pytest.skip(f"this test {message}")
    return path


@pytest.fixture(scope="session")
def screenshots_copy_dir() -> Path | None:
    """Read before ``restsync_home`` clears every RESTSYNC_* variable."""
    value = os.environ.get("RESTSYNC_SCREENSHOTS_DIR", "").strip()
    return Path(value).absolute() if value else None


@pytest.fixture
def page(chromium_path: str, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport=VIEWPORT)  # a fresh profile
            context.set_default_timeout(UI_TIMEOUT_MS)
            yield context.new_page()
        finally:
            browser.close()


def dismiss_welcome_dialog(page: Any) -> None:
    """A fresh instance greets a new browser profile with a newsletter dialog."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=5_000)
    except Exception:
        return
    skip.click()


def test_a_person_materializes_a_connector_in_the_ui_and_sees_its_rows_and_metadata(
    page, start_dagster_dev, start_demo_api, restsync_home, tmp_path, screenshots_copy_dir
):
    api = start_demo_api()
    url = start_dagster_dev(demo_env(api.url()))
    shots = tmp_path / "screenshots"
    shots.mkdir()

    # 1. The global asset graph: one collapsed node per connector group.
    page.goto(f"{url}/asset-groups")
    dismiss_welcome_dialog(page)
    group_nodes = page.locator('[aria-label="unfold_more"]')  # a collapsed group's expand icon
    group_nodes.nth(len(GROUPS) - 1).wait_for()
    assert group_nodes.count() == len(GROUPS)
    for group in GROUPS:
        assert page.get_by_text(group, exact=True).count() >= 2, group  # in the graph and tree
    expect(page.get_by_text("fetching statuses")).to_have_count(0)
    page.screenshot(path=shots / "asset-graph.png")

    # 2. Materialize the `generic` group from its page; the toast links to the new run.
    page.goto(f"{url}/locations/restsync/asset-groups/generic")
    dismiss_welcome_dialog(page)
    page.get_by_role("button", name="Materialize all").click()
    view = page.locator('a[href*="/runs/"]', has_text=re.compile("^View$")).first
    view.wait_for()
    match = re.search(r"/runs/([0-9a-f-]{36})", view.get_attribute("href") or "")
    assert match, view.get_attribute("href")
    run_id = match.group(1)

    assert wait_for_run(graphql_client(url), run_id) == dg.DagsterRunStatus.SUCCESS
    page.goto(f"{url}/runs/{run_id}")
    page.get_by_text("Success", exact=True).first.wait_for()
    page.get_by_text("RUN_SUCCESS", exact=True).first.wait_for()  # the event log has loaded
    expect(page.get_by_text("Loading run logs")).to_have_count(0)
    page.screenshot(path=shots / "run.png")

    # 3. The materialization of generic/customers and its metadata, as the UI shows them.
    expected = api.expected_rows("generic", "customers")
    page.goto(f"{url}/assets/generic/customers?view=events")
    rows_loaded = metadata_row(page, "rows_loaded")
    rows_loaded.wait_for()
    assert rows_loaded.locator("td").nth(1).inner_text().strip() == str(len(expected))
    table = metadata_row(page, "dagster/table_name").locator("td").nth(1).inner_text()
    assert table.strip() == "warehouse.generic.customers"
    assert metadata_row(page, "http_requests").locator("td").nth(1).inner_text().strip() == "3"
    expect(metadata_row(page, "jobs")).to_have_count(0)  # dlt's local file paths are dropped
    rows_loaded.scroll_into_view_if_needed()
    page.screenshot(path=shots / "materialization.png")

    assert [r["id"] for r in table_rows(restsync_home, "generic.customers")] == [
        r["id"] for r in expected
    ]
    if screenshots_copy_dir:
        screenshots_copy_dir.mkdir(parents=True, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copy(shot, screenshots_copy_dir / shot.name)


def metadata_row(page: Any, key: str) -> Any:
    """The row of the metadata table whose first cell is ``key``."""
    return page.locator("tr").filter(
        has=page.locator("td", has_text=re.compile(rf"^{re.escape(key)}$"))
    )
