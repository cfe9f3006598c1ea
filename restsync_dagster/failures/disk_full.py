"""A full filesystem, found anywhere in an exception chain: dlt's working files (``OSError``
with ``ENOSPC`` while extracting or normalizing) or the destination's (DuckDB's "Could not write
file ...: No space left on device" while loading, inside dlt's load-job retries).

What it adds to the chain: the step of dlt that failed (``PipelineStepFailed.step``), the file
that could not be written when the error names it, and the table of the failed load job.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DiskFull", "disk_full"]

_NO_SPACE = "No space left on device"
_FILE = re.compile(r"""(?:Could not write file|write to file) ["']([^"']+)["']""")
#: dlt's words for its steps, as the middle of "while ...".
_PHASES = {
    "extract": "extracting (writing dlt's working files)",
    "normalize": "normalizing (writing dlt's working files)",
    "load": "loading into the destination",
    "sync": "syncing the pipeline state",
}


@dataclass(frozen=True)
class DiskFull:
    """Where a sync ran out of space."""

    #: ``extract``, ``normalize``, ``load``... (dlt's step), when known.
    step: str | None
    #: The file that could not be written, when the error names it.
    path: str | None
    #: The table whose load job failed (``orders__line_items``), when known.
    table: str | None

    @property
    def phase(self) -> str:
        """The step as the end of "while ...": ``loading into the destination``."""
        return _PHASES.get(self.step or "", f"running dlt's {self.step} step" if self.step else "")

    @property
    def resource(self) -> str | None:
        """The resource of :attr:`table`: dlt names child tables ``<parent>__<child>``."""
        return self.table.split("__", 1)[0] if self.table else None

    def detail(self, working_dir: str | None, destination: str | None) -> str:
        """What ran out, and what to do, for a failure message (``working_dir`` and
        ``destination`` as a message names them)."""
        text = "Out of space" + (f" while {self.phase}" if self.phase else "")
        where = [f"table {self.table!r}"] if self.table else []
        if self.path:
            where.append(f"writing {self.path}")
        if self.step == "load" and destination:
            where.append(destination)
        elif self.step in ("extract", "normalize") and working_dir:
            where.append(f"in {working_dir}; the destination was not written")
        if where:
            text += ": " + ", ".join(where)
        return text + ". Free space on that filesystem; the next sync loads what this one did not."


def disk_full(chain: Sequence[BaseException]) -> DiskFull | None:
    """The full filesystem behind ``chain`` (an exception and what it wraps), or None."""
    if not any(_is_no_space(e) for e in chain):
        return None
    steps = (getattr(e, "step", None) for e in chain)  # dlt's PipelineStepFailed
    step = next((s for s in steps if isinstance(s, str)), None)
    path = next((p for p in map(_path_of, chain) if p), None)
    jobs = (getattr(e, "job_id", None) for e in chain)  # dlt's LoadClientJobRetry
    job = next((str(j) for j in jobs if j), None)
    # dlt's job ids are ``<table>.<file id>.<format>``.
    table = job.split(".", 1)[0] if job else None
    return DiskFull(step=step, path=path, table=table)


def _is_no_space(e: BaseException) -> bool:
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return True
    return _NO_SPACE in str(e)


def _path_of(e: BaseException) -> str | None:
    if isinstance(e, OSError) and e.errno == errno.ENOSPC and e.filename:
        return str(e.filename)
    match = _FILE.search(str(e))
    return match.group(1) if match else None
