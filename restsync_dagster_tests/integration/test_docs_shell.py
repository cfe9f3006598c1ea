"""The shell blocks of README.md and docs/*.md run as a user runs them: each page's ```bash
blocks in order, in one bash (``-euo pipefail``) in a fresh folder that stands for the checkout
(its ``.venv`` is this interpreter's), with no connector variable and no restsync setting but a
fresh ``RESTSYNC_HOME``, while ``restsync demo-api --port 0`` runs there as in a first terminal
(on 127.0.0.1, at a free port that ``restsync demo-env`` finds as a user's second terminal does).

A block that cannot run here (the network, a cloud account, minutes of soak, a server that runs
until stopped) says so in the doc, on the line before it:
``<!-- docs-test: skip: <reason> -->``; a block without that marker runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from restsync_dagster_tests.helpers import (
    REPO,
    clean_env,
    kill_all,
    process_tree,
    shell,
    table_count,
)

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(
    r"^(?P<indent> *)```(?:bash|sh|shell)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
SKIP = re.compile(r"<!-- docs-test: skip: (?P<reason>\S.*?) -->\s*$")


def shell_blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """``(line, text, skip reason or None)`` of every shell block of ``page``."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        line = text[: match.start()].count("\n") + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        body = textwrap.dedent(match.group("body"))
        blocks.append((line, body, skip.group("reason") if skip else None))
    return blocks


def pages_with_blocks() -> list[Path]:
    return [page for page in PAGES if shell_blocks(page)]


def test_every_skipped_block_says_why_and_the_readme_tour_runs():
    blocks = {page.relative_to(REPO).as_posix(): shell_blocks(page) for page in PAGES}
    running = [line for line, _, reason in blocks["README.md"] if reason is None]
    assert len(running) >= 2, "the README's tour blocks (steps 3 and 4) must run"
    text = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    markers = re.findall(r"<!-- docs-test:[^>]*-->", text)
    assert all(SKIP.fullmatch(m) for m in markers), f"a marker without a reason: {markers}"
    assert len(markers) == sum(1 for b in blocks.values() for _, _, r in b if r is not None), (
        "every marker stands on the line before a shell block"
    )


@pytest.mark.parametrize("page", pages_with_blocks(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_the_shell_blocks_of_the_page_run_as_written(page: Path, tmp_path: Path) -> None:
    runnable = [(line, body) for line, body, reason in shell_blocks(page) if reason is None]
    if not runnable:
        pytest.skip(f"every block of {page.name} is marked skip, with its reason")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    home = tmp_path / "home"
    env = clean_env(RESTSYNC_HOME=str(home))
    env.pop("VIRTUAL_ENV", None)  # a new terminal: `source .venv/bin/activate` sets both
    env["PATH"] = os.environ.get("PATH", "")
    script = "\n".join(f"echo '### {page.name}:{line}' >&2\n{body}" for line, body in runnable)
    api = subprocess.Popen(
        [sys.executable, "-m", "restsync_dagster.cli", "demo-api", "--port", "0"],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert api.stdout is not None
        url = api.stdout.readline().split(" on ", 1)[1].split()[0]  # "listening on URL (...)"
        done = shell(script, checkout, env)
        assert done.returncode == 0, f"{page.name}:\n{done.stdout}\n{done.stderr}"
        if page.name == "README.md":
            # What the tour's steps leave: the example's and the user's own connector, complete.
            assert table_count(home, "generic.customers") == served(url, "generic", "customers")
            assert table_count(home, "shop.orders") == served(url, "ecommerce", "orders")
            assert (checkout / "shop.yaml").is_file()
    finally:
        tree = process_tree(api.pid)
        api.terminate()
        try:
            api.wait(timeout=10)
        finally:
            kill_all(tree)


def served(url: str, vertical: str, collection: str) -> int:
    """The number of records the demo API at ``url`` says it serves (its ``total``)."""
    answer = requests.get(
        f"{url}/{vertical}/v1/{collection}",
        params={"limit": 1, "api_key": f"demo-{vertical}-key"},
        timeout=30,
    )
    answer.raise_for_status()
    return int(answer.json()["total"])
