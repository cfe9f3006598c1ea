"""Asynchronous report jobs for the demo API: create, poll, download.

* ``POST /<vertical>/reports/<collection>`` starts a job: ``201 {"id": "r-1", "status":
  "running"}``;
* ``GET /<vertical>/reports/<collection>/<id>`` tells its status: ``running`` until
  ``DemoApiConfig.report_seconds`` have passed, then ``done`` with ``download_url``;
* ``GET /<vertical>/reports/<collection>/<id>/result`` is the whole collection as gzip-encoded
  JSON lines (404 before the job is done).

``POST /_demo/misbehave?path=/generic/reports/items&mode=report_failed`` makes new jobs fail
(``status: failed`` with an ``error`` message), ``mode=report_stuck`` keeps them running.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

REPORT_MISBEHAVIOURS = ("report_failed", "report_stuck")


@dataclass
class Job:
    """One report job."""

    id: str
    collection: str
    ready_at: float
    outcome: str  # "done", "failed" or "stuck"


class ReportJobs:
    """Every job the demo API started, and when each is ready."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def create(self, collection: str, broken: str | None) -> Job:
        """Start a job for ``collection`` (``broken``: a misbehaviour of the path, if any)."""
        outcome = {"report_failed": "failed", "report_stuck": "stuck"}.get(broken or "", "done")
        with self._lock:
            job = Job(f"r-{next(self._ids)}", collection, time.monotonic() + self.seconds, outcome)
            self._jobs[job.id] = job
        return job

    def status(self, collection: str, job_id: str, base: str) -> tuple[int, dict[str, object]]:
        """``(status code, answer)`` of a poll; ``base`` is the job's URL path."""
        job = self._jobs.get(job_id)
        if job is None or job.collection != collection:
            return 404, {"error": "not_found", "message": f"no report job {job_id!r}"}
        if job.outcome == "stuck" or time.monotonic() < job.ready_at:
            return 200, {"id": job.id, "status": "running"}
        if job.outcome == "failed":
            return 200, {"id": job.id, "status": "failed", "error": "the report query timed out"}
        return 200, {"id": job.id, "status": "done", "download_url": f"{base}/result"}

    def ready(self, collection: str, job_id: str) -> bool:
        """Whether the job's result can be downloaded."""
        job = self._jobs.get(job_id)
        return (
            job is not None
            and job.collection == collection
            and job.outcome == "done"
            and time.monotonic() >= job.ready_at
        )
