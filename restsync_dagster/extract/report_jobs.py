"""Asynchronous report jobs: create one, poll it until done, then download its result.

``endpoint.report_job`` (:mod:`restsync_dagster.connector.extensions`)::

    path: /v1/reports                 # POST here creates the job
    response_format: jsonl            # the result's format (json, jsonl, csv)
    report_job:
      create_json: {kind: daily}      # the create request's body (optional)
      id_path: id                     # where the create answer has the job id
      poll_path: "/v1/reports/{id}"   # default: <path>/{id}
      status_path: status
      done: [done]                    # statuses that mean the result is ready
      failed: [failed]                # statuses that mean it never will be
      message_path: error             # the API's words when it failed
      result_url_path: download_url   # where the poll answer names the result (or result_path)
      interval_seconds: 1
      timeout_seconds: 300

dlt's rest_api has no step before a request, so the job runs in the ``init_request`` of a
:class:`ReportJobPaginator`, the public seam dlt calls once per request sequence with the request
in hand (its auth, headers and URL): the create and poll requests carry the same auth and go
through the run's session (retries, limits, counters, masking), tagged with the resource. It then
points the request at the result, which dlt reads as one page in the endpoint's format.
A failed job fails the run with the API's message (``api_error``); one not done in time fails as
a transient timeout naming the job id.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from dlt.sources.helpers.rest_client.paginators import SinglePagePaginator
from requests import Request, Response

from restsync_dagster.extract.counters import tag_request
from restsync_dagster.failures.errors import ApiBodyError, ReportJobTimeout, ResponseContractError
from restsync_dagster.failures.redaction import redact_url


@dataclass(frozen=True)
class ReportJob:
    """How one endpoint's report jobs are created, polled and downloaded."""

    create_json: Mapping[str, Any] | None = None
    id_path: str = "id"
    poll_path: str | None = None
    status_path: str = "status"
    done: tuple[str, ...] = ("done", "completed", "succeeded", "success")
    failed: tuple[str, ...] = ("failed", "error", "cancelled", "canceled")
    message_path: str | None = None
    result_url_path: str | None = None
    result_path: str | None = None
    interval_seconds: float = 1.0
    timeout_seconds: float = 300.0

    @classmethod
    def of(cls, block: Mapping[str, Any]) -> ReportJob:
        """The job a file's ``report_job`` block describes."""
        values = dict(block)
        for key in ("done", "failed"):
            if key in values:
                values[key] = tuple(str(v) for v in values[key])
        return cls(**values)


class ReportJobPaginator(SinglePagePaginator):
    """Runs the endpoint's report job before its one request (see the module's docstring)."""

    def __init__(self, job: ReportJob, session: Any, resource: str) -> None:
        super().__init__()
        self.job, self.session, self.resource = job, session, resource

    def __deepcopy__(self, memo: dict[int, Any]) -> ReportJobPaginator:
        return copy.copy(self)  # the session is the run's: shared, never copied

    def init_request(self, request: Request) -> None:
        job, create_url = self.job, str(request.url)
        created, answer = self._send(request, "POST", create_url, job.create_json)
        job_id = _first(answer, job.id_path)
        if job_id is None:
            raise self._refuse(created, f"the create answer has no job id at {job.id_path!r}")
        poll_url = urljoin(create_url, (job.poll_path or f"{create_url}/{{id}}").format(id=job_id))
        polled = self._wait(request, poll_url, str(job_id))
        result = _first(polled, job.result_url_path)
        template = job.result_path or f"{poll_url}/result"
        request.url = urljoin(poll_url, str(result) if result else template.format(id=job_id))
        request.method, request.json = "GET", None
        super().init_request(request)

    def _wait(self, request: Request, poll_url: str, job_id: str) -> Any:
        """The poll answer that says the job is done."""
        job = self.job
        deadline = time.monotonic() + job.timeout_seconds
        while True:
            response, polled = self._send(request, "GET", poll_url)
            status = str(_first(polled, job.status_path))
            if status in job.done:
                return polled
            url = redact_url(response.url or poll_url)
            if status in job.failed:
                message = _first(polled, job.message_path)
                raise ApiBodyError(self.resource, url, f"report job {job_id} {status}: {message}")
            if time.monotonic() + job.interval_seconds > deadline:
                raise ReportJobTimeout(
                    self.resource,
                    url,
                    f"report job {job_id} was not done after {job.timeout_seconds:g} s "
                    f"(last status {status!r})",
                )
            time.sleep(job.interval_seconds)

    def _send(
        self, like: Request, method: str, url: str, body: Mapping[str, Any] | None = None
    ) -> tuple[Response, Any]:
        """One request of the job, and its answer as JSON (whatever the result's format)."""
        step = Request(method, url, headers=like.headers, auth=like.auth, json=body)
        tag_request(step, self.resource)
        response: Response = self.session.send(self.session.prepare_request(step))
        response.raise_for_status()
        try:
            return response, json.loads(response.content)
        except ValueError:
            raise self._refuse(response, "the report job's answer is not JSON") from None

    def _refuse(self, response: Response, problem: str) -> ResponseContractError:
        return ResponseContractError(self.resource, redact_url(response.url or ""), problem)


def expand_report_job(resource: str, endpoint: dict[str, Any], session: Any) -> None:
    """Turn an endpoint's ``report_job`` block into a :class:`ReportJobPaginator`, in place."""
    block = endpoint.pop("report_job", None)
    if isinstance(block, Mapping):
        endpoint["method"] = "GET"
        endpoint["paginator"] = ReportJobPaginator(ReportJob.of(block), session, resource)


def _first(answer: Any, path: str | None) -> Any:
    from dlt.common import jsonpath

    if not path:
        return None
    values = jsonpath.find_values(path, answer)
    return values[0] if values else None
