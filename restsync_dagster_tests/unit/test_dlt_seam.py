"""The private dlt seam (extract/dlt_seam.py) fits the installed dlt, and says so loudly when not.

If a test here fails after a dlt upgrade: read ``restsync_dagster/extract/dlt_seam.py``. The
seam lends nested tables their root's ``resource`` in ``Extract._compute_metrics``; check that
dlt still needs it (the upstream fix is in its docstring), then update ``WRITTEN_FOR`` and
``COMPUTE_METRICS_SHA256`` or remove the module. Until then, restsync hands every page to dlt's
own normalizer (slower, never other tables).
"""

from __future__ import annotations

import random

import dlt
import pyarrow as pa

from restsync_dagster.extract import dlt_seam
from restsync_dagster.extract.relational import nested_ids


def test_the_seam_fits_the_installed_dlt():
    found = dlt_seam.problem()
    assert found is None, f"{found}: see restsync_dagster/extract/dlt_seam.py"


def test_another_dlt_version_is_refused_with_a_message_naming_the_seam(monkeypatch):
    monkeypatch.setattr(dlt, "__version__", "1.32.0")
    found = dlt_seam.problem()
    assert found is not None
    assert "restsync_dagster/extract/dlt_seam.py" in found and "1.32.0" in found


def test_a_changed_compute_metrics_is_refused(monkeypatch):
    monkeypatch.setattr(dlt_seam, "COMPUTE_METRICS_SHA256", "0" * 64)
    found = dlt_seam.problem()
    assert found is not None and "Extract._compute_metrics changed" in found
    assert dlt_seam.compute_metrics_digest() in found


def test_child_ids_follow_dlts_own_formula():
    """``nested_ids`` computes dlt's ``get_nested_row_hash`` for a whole column at once."""
    from dlt.common.normalizers.json.helpers import get_nested_row_hash
    from dlt.common.normalizers.utils import generate_dlt_ids

    rng = random.Random(7)
    parents = generate_dlt_ids(500)
    positions = [rng.randrange(0, 10_000) for _ in parents]
    tables = ["t__comments", "t__ünï__x", "t__a" * 30]
    for table in tables:
        ours = nested_ids(pa.array(parents), table, pa.array(positions, pa.int64())).to_pylist()
        assert ours == [
            get_nested_row_hash(p, table, i) for p, i in zip(parents, positions, strict=True)
        ]
