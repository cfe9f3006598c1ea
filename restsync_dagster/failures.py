"""Why a sync failed, as structured data: the classifier behind error messages and the retry sensor.

Pure functions, no Dagster: :func:`classify` walks an exception chain (dlt wraps the HTTP error in a
``ResourceExtractionError`` inside a ``PipelineStepFailed``) and returns a :class:`SyncFailure`
naming the connector, resource, HTTP status (or ``timeout`` / ``connection_error``), the redacted
URL, ``Retry-After``, and whether another attempt can help.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from restsync_dagster.errors import (
    InsecureTransportError,
    ResponseContractError,
    UnknownCharsetError,
)
from restsync_dagster.redaction import Redactor, redact_url
from restsync_dagster.templating import MissingEnvVarError

TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
HTTP_STATUS = "http_status"
BAD_RESPONSE = "bad_response"
TRUNCATED = "truncated_response"
MISSING_ENV = "missing_env_var"
SCHEMA_CONTRACT = "schema_contract"
INVALID_CONFIG = "invalid_config"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class SyncFailure:
    """A failed sync, described for people and for the retry sensor."""

    connector: str
    resource: str | None
    kind: str
    status: int | None
    url: str | None
    retry_after: float | None
    transient: bool
    detail: str

    @property
    def cause(self) -> str:
        """``429``, ``timeout``, ``connection_error``, ``bad_response``... in one word."""
        return str(self.status) if self.status is not None else self.kind

    def message(self) -> str:
        """One paragraph for the run's failure message."""
        where = f"connector {self.connector!r}"
        if self.resource:
            where += f", resource {self.resource!r}"
        if self.kind == HTTP_STATUS:
            what = f"the API answered HTTP {self.status}"
        elif self.kind == TIMEOUT:
            what = "the API did not answer in time"
        elif self.kind == CONNECTION_ERROR:
            what = "could not connect to the API"
        elif self.kind == BAD_RESPONSE:
            what = "the API sent a response the connector cannot read"
        elif self.kind == TRUNCATED:
            what = "the connection closed before the whole response arrived"
        elif self.kind == MISSING_ENV:
            what = "a required environment variable is not set"
        elif self.kind == SCHEMA_CONTRACT:
            what = "the data broke the connector's schema contract"
        elif self.kind == INVALID_CONFIG:
            what = "the connector's configuration cannot be used"
        else:
            what = "the sync failed"
        url = f" ({self.url})" if self.url else ""
        verdict = (
            "This looks transient; a later attempt may succeed."
            if self.transient
            else "Retrying will not help until this is fixed."
        )
        return f"{where}: {what}{url}. {self.detail}\n{verdict}"

    def as_metadata(self) -> dict[str, Any]:
        """Flat values for ``dagster.Failure(metadata=...)``; read back by the retry sensor."""
        return {f"restsync/{k}": v for k, v in asdict(self).items() if v is not None}


def is_transient(kind: str, status: int | None, retry_statuses: tuple[int, ...]) -> bool:
    """Whether another attempt can help: the connector's retry statuses, timeouts, connection
    errors. Never 400/401/403/404/422 and other 4xx, bad configuration or a missing secret."""
    if kind in (TIMEOUT, CONNECTION_ERROR, TRUNCATED):
        return True
    if kind == HTTP_STATUS and status is not None:
        return status in retry_statuses
    return False


def iter_chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception reachable from ``exc`` through causes, contexts and dlt's wrappers."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (
            getattr(current, "exception", None),  # dlt PipelineStepFailed
            current.__cause__,
            current.__context__,
        ):
            if isinstance(linked, BaseException):
                stack.append(linked)


def classify(
    exc: BaseException,
    *,
    connector: str,
    retry_statuses: tuple[int, ...],
    redactor: Redactor | None = None,
    last_url: str | None = None,
) -> SyncFailure:
    """Describe the failure behind ``exc`` (any depth of wrapping).

    Args:
        exc: What the sync raised.
        connector: The connector's name.
        retry_statuses: The connector's transient HTTP statuses.
        redactor: Masks the run's secret values in every text of the result.
        last_url: The last URL requested, for failures that carry none (a body that is not JSON).
    """
    from json import JSONDecodeError

    from requests.exceptions import ChunkedEncodingError, ConnectionError, HTTPError, Timeout

    redactor = redactor or Redactor()
    chain = list(iter_chain(exc))
    # dlt's PipeException (ResourceExtractionError...) names the resource as ``pipe_name``.
    pipe_names = (getattr(e, "pipe_name", None) for e in chain)
    resource = next((str(name) for name in pipe_names if name), None)
    kind, status, url, retry_after, detail = UNKNOWN, None, None, None, ""

    for e in chain:
        if type(e).__name__ == "DataValidationError" and hasattr(e, "contract_mode"):
            kind = SCHEMA_CONTRACT
            resource = resource or getattr(e, "table_name", None)
            column = getattr(e, "column_name", None)
            detail = (
                f"Contract '{e.contract_mode}' on {getattr(e, 'schema_entity', '?')} refused a "
                f"change to table {getattr(e, 'table_name', '?')!r}"
                + (f", column {column!r}" if column else "")
                + ". Change the data, or relax 'schema_contract' in the connector file."
            )
            break
        if isinstance(e, InsecureTransportError):
            kind, url, detail = INVALID_CONFIG, e.url, str(e)
            break
        if isinstance(e, MissingEnvVarError):
            kind, detail = MISSING_ENV, f"Set {e.name} in the environment of the run."
            break
        if isinstance(e, ResponseContractError):
            kind, url, detail = BAD_RESPONSE, e.url, f"{e.problem}."
            resource = e.resource
            if e.offset is not None:
                detail = f"{e.problem} (page at offset {e.offset})."
            break
        if isinstance(e, HTTPError) and e.response is not None:
            response = e.response
            kind, status = HTTP_STATUS, response.status_code
            url = redact_url(response.url or "")
            retry_after = _retry_after(response.headers.get("Retry-After"))
            detail = _http_detail(status)
            break
        if isinstance(e, Timeout) or _is_read_timeout(e):
            # requests reports a body that stops arriving as a ConnectionError around
            # urllib3's ReadTimeoutError: it is a timeout all the same.
            kind, url = TIMEOUT, _request_url(e) or (redact_url(last_url) if last_url else None)
            detail = "The request timed out after the connector's retries."
            break
        if isinstance(e, JSONDecodeError | UnicodeDecodeError | UnknownCharsetError):
            failed_url = getattr(e, "restsync_url", None) or last_url
            kind, url = BAD_RESPONSE, redact_url(failed_url) if failed_url else None
            if isinstance(e, UnknownCharsetError):
                detail = str(e)
            elif isinstance(e, UnicodeDecodeError):
                detail = "The response body is not valid UTF-8."
            else:
                detail = "The response body is not valid JSON."
            break
        if isinstance(e, ChunkedEncodingError):
            failed_url = getattr(e, "restsync_url", None) or last_url
            kind, url = TRUNCATED, redact_url(failed_url) if failed_url else None
            detail = "The body was cut short on every attempt (the connector's retries included)."
            break
        if isinstance(e, ConnectionError):
            kind, url = (
                CONNECTION_ERROR,
                _request_url(e) or (redact_url(last_url) if last_url else None),
            )
            detail = "The connection failed after the connector's retries."
            break
    if kind == UNKNOWN:
        innermost = chain[-1] if chain else exc
        detail = f"{type(innermost).__name__}: {_first_line(str(innermost))}"
    return SyncFailure(
        connector=connector,
        resource=resource,
        kind=kind,
        status=status,
        url=redactor.redact(url) if url else None,
        retry_after=retry_after,
        transient=is_transient(kind, status, retry_statuses),
        detail=redactor.redact(detail),
    )


def _http_detail(status: int) -> str:
    if status == 401:
        return "The API rejected the credentials: check the connector's API key variable."
    if status == 403:
        return "The credentials are valid but not allowed to read this endpoint."
    if status == 404:
        return "The endpoint does not exist: check 'path' and 'base_url' in the connector file."
    if status == 429:
        return "The API is rate limiting this client."
    if status >= 500:
        return "The API had a server-side error."
    return "The API refused the request."


def _is_read_timeout(exc: BaseException) -> bool:
    from urllib3.exceptions import ReadTimeoutError

    return any(isinstance(arg, ReadTimeoutError) for arg in getattr(exc, "args", ()))


def _request_url(exc: BaseException) -> str | None:
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None) or getattr(exc, "restsync_url", None)
    return redact_url(url) if url else None


def _retry_after(header: str | None) -> float | None:
    if header and header.strip().isdigit():
        return float(header.strip())
    return None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:300]
