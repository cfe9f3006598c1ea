"""A snapshot of the whole code location: every asset, check, job, schedule, sensor and resource of
the five example connectors, as the UI and the daemon see them.

Any unintended change to a name, a group, a kind, a tag, a schedule or a resource fails here. After
an intended change, regenerate with ``RESTSYNC_UPDATE_SNAPSHOT=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import describe_code_location

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "code_location.json"
#: Read at import: the ``restsync_home`` fixture clears every ``RESTSYNC_*`` variable.
UPDATE = bool(os.environ.get("RESTSYNC_UPDATE_SNAPSHOT"))


def test_the_code_location_matches_its_snapshot(restsync_home):
    current = describe_code_location(load_definitions())
    if UPDATE:
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert current == expected
