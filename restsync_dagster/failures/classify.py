"""Why a sync failed, as structured data: the classifier behind error messages and the retry sensor.

:func:`classify` walks an exception chain (dlt wraps the HTTP error in a ``ResourceExtractionError``
inside a ``PipelineStepFailed``) and returns a :class:`SyncFailure` naming the connector, resource,
HTTP status (or ``timeout`` / ``connection_error``), the redacted URL, ``Retry-After``, and whether
another attempt can help. restsync's own errors say their kind and transience through their class
(:mod:`restsync_dagster.failures.errors`); library errors are mapped here, by type. The same
:class:`SyncFailure` is written as a failed run's metadata and read back by the retry sensor.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from restsync_dagster.failures.disk_full import disk_full
from restsync_dagster.failures.errors import (
    FailureKind,
    MissingEnvVarError,
    RefusedMidSync,
    ResponseContractError,
    ResponseError,
    RestsyncError,
    UnreachableError,
)
from restsync_dagster.failures.redaction import Redactor, redact_body, redact_url
from restsync_dagster.failures.retry_after import parse_retry_after
from restsync_dagster.names import failure_key

#: Failures of the transport itself: another attempt may go through.
TRANSIENT_KINDS = frozenset(
    {FailureKind.TIMEOUT, FailureKind.CONNECTION_ERROR, FailureKind.TRUNCATED}
)


@dataclass(frozen=True)
class SyncFailure:
    """A failed sync, described for people and for the retry sensor."""

    connector: str
    resource: str | None
    kind: FailureKind
    status: int | None
    url: str | None
    retry_after: float | None
    transient: bool
    detail: str
    #: What the API answered with a 4xx: its body, redacted and cut short.
    response_body: str | None = None
    #: The tenant whose run failed (a connector file with ``tenants:``), or None.
    tenant: str | None = None

    @property
    def cause(self) -> str:
        """``429``, ``timeout``, ``connection_error``, ``bad_response``... in one word."""
        return str(self.status) if self.status is not None else str(self.kind)

    def message(self) -> str:
        """One paragraph for the run's failure message."""
        where = f"connector {self.connector!r}"
        if self.tenant:
            where += f", tenant {self.tenant!r}"
        if self.resource:
            where += f", resource {self.resource!r}"
        if self.kind == FailureKind.HTTP_STATUS:
            what = f"the API answered HTTP {self.status}"
        else:
            what = self.kind.summary
        url = f" ({self.url})" if self.url else ""
        verdict = (
            "This looks transient; a later attempt may succeed."
            if self.transient
            else "Retrying will not help until this is fixed."
        )
        return f"{where}: {what}{url}. {self.detail}\n{verdict}"

    def as_metadata(self) -> dict[str, Any]:
        """Flat values for ``dagster.Failure(metadata=...)``; :meth:`from_metadata` reads them."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["kind"] = str(self.kind)
        return {failure_key(k): v for k, v in values.items() if v is not None}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> SyncFailure | None:
        """Read back :meth:`as_metadata` (plain values); None when it is not a sync's failure."""
        connector = metadata.get(failure_key("connector"))
        if not connector:
            return None
        status, retry_after = (
            metadata.get(failure_key("status")),
            metadata.get(failure_key("retry_after")),
        )
        try:
            kind = FailureKind(metadata.get(failure_key("kind"), FailureKind.UNKNOWN))
        except ValueError:  # written by another version of restsync
            kind = FailureKind.UNKNOWN
        return cls(
            connector=str(connector),
            resource=metadata.get(failure_key("resource")) or None,
            kind=FailureKind(kind)
            if kind in FailureKind._value2member_map_
            else FailureKind.UNKNOWN,
            status=int(status) if status is not None else None,
            url=metadata.get(failure_key("url")),
            retry_after=float(retry_after) if retry_after is not None else None,
            transient=bool(metadata.get(failure_key("transient"), False)),
            detail=str(metadata.get(failure_key("detail"), "")),
            response_body=metadata.get(failure_key("response_body")) or None,
            tenant=metadata.get(failure_key("tenant")) or None,
        )


def is_transient(kind: str, status: int | None, retry_statuses: tuple[int, ...]) -> bool:
    """Whether another attempt can help: the connector's retry statuses, timeouts, connection
    errors. Never 400/401/403/404/422 and other 4xx, bad configuration or a missing secret."""
    if kind in TRANSIENT_KINDS:
        return True
    if kind == FailureKind.HTTP_STATUS and status is not None:
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
            getattr(current, "client_exception", None),  # dlt LoadClientJobRetry
            getattr(current, "dbapi_exception", None),  # dlt DatabaseException
            current.__cause__,
            current.__context__,
        ):
            if isinstance(linked, BaseException):
                stack.append(linked)


@dataclass(frozen=True)
class _Facts:
    """What one exception of the chain says about the failure."""

    kind: FailureKind
    detail: str
    url: str | None = None
    status: int | None = None
    retry_after: float | None = None
    resource: str | None = None
    transient: bool | None = None  # None: decided from kind and status
    response_body: str | None = None


@dataclass(frozen=True)
class Hints:
    """What the connector file says that makes a message point at the fix."""

    #: The variable that holds the base URL (``SHOP_BASE_URL``), if the file reads one.
    base_url_variable: str | None = None
    #: The variables holding credentials.
    secret_variables: tuple[str, ...] = ()
    #: The pipeline's dlt working directory, and the destination (a DuckDB file's path, or the
    #: destination's name): where a full disk may be.
    working_dir: str | None = None
    destination: str | None = None


def classify(
    exc: BaseException,
    *,
    connector: str,
    retry_statuses: tuple[int, ...],
    redactor: Redactor | None = None,
    hints: Hints | None = None,
) -> SyncFailure:
    """Describe the failure behind ``exc`` (any depth of wrapping).

    Args:
        exc: What the sync raised.
        connector: The connector's name.
        retry_statuses: The connector's transient HTTP statuses.
        redactor: Masks the run's secret values in every text of the result.
        hints: Variable names for messages that point at the fix.
    """
    redactor = redactor or Redactor()
    hints = hints or Hints()
    chain = list(iter_chain(exc))
    facts = _disk_full_facts(chain, hints) or next(
        (f for f in (_facts_of(e, hints) for e in chain) if f is not None), None
    )
    if facts is None:
        innermost = chain[-1] if chain else exc
        facts = _Facts(FailureKind.UNKNOWN, f"{type(innermost).__name__}: {_first_line(innermost)}")
    # dlt's PipeException (ResourceExtractionError...) names the resource as ``pipe_name``.
    pipe_names = (getattr(e, "pipe_name", None) for e in chain)
    resource = facts.resource or next((str(name) for name in pipe_names if name), None)
    transient = (
        facts.transient
        if facts.transient is not None
        else is_transient(facts.kind, facts.status, retry_statuses)
    )
    return SyncFailure(
        connector=connector,
        resource=resource,
        kind=facts.kind,
        status=facts.status,
        url=redactor.redact(facts.url) if facts.url else None,
        retry_after=facts.retry_after,
        transient=transient,
        detail=redactor.redact(facts.detail),
        response_body=redactor.redact(facts.response_body) if facts.response_body else None,
    )


def _facts_of(e: BaseException, hints: Hints) -> _Facts | None:
    """The facts of one exception, or None when it says nothing (a wrapper)."""
    from requests.exceptions import ChunkedEncodingError, ConnectionError, HTTPError, Timeout

    if isinstance(e, RestsyncError):
        return _restsync_facts(e, hints)
    contract = _schema_contract_facts(e) or _concurrency_facts(e)
    if contract is not None:
        return contract
    if isinstance(e, HTTPError) and e.response is not None:
        response = e.response
        body = _client_error_body(response)
        detail = _http_detail(response.status_code, hints)
        return _Facts(
            FailureKind.HTTP_STATUS,
            # An OAuth refusal says it in the server's own words already.
            _oauth_detail(response, hints) or (f"{detail} It answered: {body}" if body else detail),
            url=redact_url(response.url or ""),
            status=response.status_code,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            response_body=body,
        )
    if isinstance(e, Timeout) or _is_read_timeout(e):
        # requests reports a body that stops arriving as a ConnectionError around urllib3's
        # ReadTimeoutError: it is a timeout all the same.
        detail = "The request timed out after the connector's retries." + _check_address(hints)
        return _Facts(FailureKind.TIMEOUT, detail, url=_request_url(e))
    if isinstance(e, ChunkedEncodingError):
        detail = "The body was cut short on every attempt (the connector's retries included)."
        return _Facts(FailureKind.TRUNCATED, detail, url=_request_url(e))
    if isinstance(e, ConnectionError):
        detail = "The connection failed after the connector's retries."
        return _Facts(FailureKind.CONNECTION_ERROR, detail, url=_request_url(e))
    return None


def _disk_full_facts(chain: list[BaseException], hints: Hints) -> _Facts | None:
    full = disk_full(chain)
    if full is None:
        return None
    detail = full.detail(hints.working_dir, hints.destination)
    return _Facts(FailureKind.DISK_FULL, detail, resource=full.resource, transient=False)


def _restsync_facts(e: RestsyncError, hints: Hints) -> _Facts:
    if isinstance(e, UnreachableError):
        detail = f"{e.detail}." + _check_address(hints)
    elif isinstance(e, RefusedMidSync):
        detail = (
            f"{e.detail}: the address is right, the API stopped answering mid-sync (a restart, "
            "a deploy?), and the connector's retries did not outlast it."
        )
    elif isinstance(e, MissingEnvVarError):
        detail = f"Set {e.name} in the environment of the run."
    elif isinstance(e, ResponseContractError) and e.offset is not None:
        detail = f"{e.problem} (page at offset {e.offset})."
    elif isinstance(e, ResponseError):
        detail = e.problem if e.problem.endswith(".") else f"{e.problem}."
    else:
        detail = _first_line(e)
    return _Facts(e.kind, detail, url=e.url, resource=e.resource, transient=e.transient)


def _schema_contract_facts(e: BaseException) -> _Facts | None:
    from dlt.common.schema.exceptions import DataValidationError

    if not isinstance(e, DataValidationError):
        return None
    column = e.column_name
    detail = (
        f"Contract '{e.contract_mode}' on {e.schema_entity} refused a change to table "
        f"{e.table_name!r}"
        + (f", column {column!r}" if column else "")
        + ". Change the data, or relax 'schema_contract' in the connector file."
    )
    return _Facts(FailureKind.SCHEMA_CONTRACT, detail, resource=e.table_name)


#: PostgreSQL's codes for a lock not granted in time: lock_not_available, deadlock_detected.
_LOCK_WAIT_CODES = {"55P03", "40P01"}
_LOCK_WAIT_PHRASES = ("canceling statement due to lock timeout", "deadlock detected")
_PERMISSION_PHRASES = ("permission denied", "insufficient privilege", "must be owner")


def _concurrency_facts(e: BaseException) -> _Facts | None:
    """Failures of a load that met another writer of the destination: transient.

    - dlt's ``SchemaUpdateError``: a ``CREATE SCHEMA``/``CREATE TABLE``/``ALTER TABLE`` that
      raced another load ("schema already exists"). restsync's dataset load lock keeps its own
      loads apart, and dlt's ``retry_schema_update`` retried it (load/locks.py); what is left
      is a writer outside the lock. Not transient when the cause is a missing privilege.
    - A lock the destination did not grant in time (``lock_timeout``, a deadlock).
    - A unique violation on ``_dlt_id``: two loads inserting the same rows at once. restsync's
      locks make that impossible between its own runs, so a writer outside them (another lock
      database, a dlt pipeline of its own) did it: it has ended by the time a retry run starts,
      and the retry resumes from the last committed cursor. A cause that repeats (a load
      package replayed after a crash between its commit and dlt's record of it) fails again
      after the run's retries and says so.
    """
    from dlt.common.destination.exceptions import SchemaUpdateError

    text = str(e)
    if isinstance(e, SchemaUpdateError):
        cause = str(e.cause).strip().splitlines()[0][:300] if str(e.cause).strip() else ""
        denied = any(p in cause.lower() for p in _PERMISSION_PHRASES)
        what = f"tables {e.table_names}" if e.table_names else "the dataset"
        detail = (
            f"dlt could not create or change {what} of schema {e.schema_name!r} ({cause}). "
            + (
                "Grant the destination's user the right to create and alter them."
                if denied
                else "Another load changed the destination's schema at the same moment; a later "
                "attempt reads the destination again and applies only what is missing."
            )
        )
        return _Facts(FailureKind.SCHEMA_UPDATE, detail, transient=not denied)
    code = getattr(e, "pgcode", None)
    if code in _LOCK_WAIT_CODES or any(p in text for p in _LOCK_WAIT_PHRASES):
        detail = (
            "The destination gave up waiting for a lock (lock_timeout, or a deadlock with another "
            "session): another process held the tables this load writes. A later attempt can "
            "go through."
        )
        return _Facts(FailureKind.LOCK_WAIT, detail, transient=True)
    duplicate = code == "23505" or "duplicate key value violates unique constraint" in text
    if duplicate and "_dlt_id" in text:
        detail = (
            "Two loads inserted rows with the same _dlt_id at once: a process outside restsync's "
            "locks loaded this dataset at the same moment (a dlt pipeline of its own, or runs "
            "with another RESTSYNC_LOCK_DATABASE). A later attempt resumes from the last "
            "committed cursor; if it fails again, make every writer of the dataset use the same "
            "lock database (docs/deployment.md)."
        )
        return _Facts(FailureKind.CONCURRENT_WRITE, detail, transient=True)
    return None


def _check_address(hints: Hints) -> str:
    if hints.base_url_variable:
        return f" Check {hints.base_url_variable}."
    return " Check 'base_url' in the connector file."


def _http_detail(status: int, hints: Hints) -> str:
    if status == 401:
        if hints.secret_variables:
            return f"The API rejected the credentials: check {', '.join(hints.secret_variables)}."
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


def _client_error_body(response: Any) -> str | None:
    """A 4xx's body, redacted by name and cut short (often the API says what it refused, as
    ``{"error": "no such column: limit"}``); None for other statuses or an empty body. The run's
    secret values are masked afterwards, with the rest of the failure."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        raw = response.content
    except Exception:  # the body could not be read: there is nothing to show
        return None
    if not raw:
        return None
    text = raw[:16_384].decode("utf-8", errors="replace")
    return redact_body(text) or None


#: The error codes of an OAuth 2.0 token endpoint (RFC 6749 §5.2) and of a protected resource
#: (RFC 6750 §3.1): an answer ``{"error": <one of these>, "error_description": ...}`` is OAuth's.
OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_token",
        "insufficient_scope",
    }
)


def _oauth_detail(response: Any, hints: Hints) -> str | None:
    """An OAuth error answer in the server's words (``error`` and ``error_description``; the
    caller masks secrets in them), or None for any other answer."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if error not in OAUTH_ERRORS:
        return None
    said = str(error)
    description = body.get("error_description")
    if isinstance(description, str) and description.strip():
        said += f" ({' '.join(description.split())[:200]})"
    check = (
        f" Check {', '.join(hints.secret_variables)}."
        if hints.secret_variables
        else " Check the connector's credentials."
    )
    return f"The OAuth server refused the request: {said}.{check}"


def _is_read_timeout(exc: BaseException) -> bool:
    from urllib3.exceptions import ReadTimeoutError

    return any(isinstance(arg, ReadTimeoutError) for arg in getattr(exc, "args", ()))


def _request_url(exc: BaseException) -> str | None:
    """The URL of the request a ``requests`` exception belongs to (``RequestException.request``)."""
    url = getattr(getattr(exc, "request", None), "url", None)
    return redact_url(url) if url else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
