"""The one hierarchy of restsync's errors: each class says what went wrong and whether waiting helps.

Every error restsync raises derives from :class:`RestsyncError`. Its class carries the
:class:`FailureKind` a run reports and whether the failure is transient (another attempt may
succeed), so neither the run body nor the retry sensor guesses from a message or a class name::

    RestsyncError
    ├── ConfigurationError          invalid_config        fix the file or the settings
    │   ├── ConnectorFileError      (connector/problems.py: every problem of the files)
    │   ├── SettingsError           a RESTSYNC_* variable
    │   ├── TemplateError           a malformed {{ env.NAME }}
    │   ├── MissingEnvVarError      missing_env_var
    │   ├── InsecureTransportError  insecure_transport
    │   └── DestinationConfigError  destination_config
    ├── DiscoveryError              schema_discovery      the API's field description
    ├── UnreachableError                                  the address is wrong: no waiting helps
    │   ├── ConnectionRefused       connection_refused
    │   ├── HostNotFound            host_not_found
    │   └── TlsError                tls_error
    ├── RefusedMidSync              connection_error, transient: the API answered, then went
    │                               away (also a requests ConnectionError: dlt retries it)
    ├── ResponseError               bad_response          a 2xx the connector cannot read
    │   ├── ResponseContractError   a page breaks the file's promises
    │   │   └── ApiBodyError        api_error: a response action 'fail' matched the body
    │   │       ├── ApiBodyRetriesExhausted  transient: 'retry' matched on every attempt
    │   │       └── GraphQLErrors   GraphQL ``errors`` in a 200, partial data or none
    │   └── ReportJobTimeout        timeout, transient: a report job not done in time
    │   ├── ResponseBodyError       not JSON, not valid UTF-8
    │   └── UnknownCharsetError
    ├── PreviewError                invalid_config        preview asked for something absent
    └── LockError                   transient: another run, or the lock database, is in the way
        ├── LockLost                lock_lost: a lock the run held is gone; it stops before loading
        └── LockDatabaseError       lock_database: the lock database cannot be reached

Library errors (``requests``, dlt) are mapped onto the same kinds by
:func:`restsync_dagster.failures.classify.classify`. Messages are written for people.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from requests.exceptions import ConnectionError as RequestsConnectionError


class FailureKind(StrEnum):
    """Why a sync failed, in one word (the ``restsync/kind`` metadata of a failed run)."""

    HTTP_STATUS = "http_status"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    CONNECTION_REFUSED = "connection_refused"
    HOST_NOT_FOUND = "host_not_found"
    TLS_ERROR = "tls_error"
    TRUNCATED = "truncated_response"
    BAD_RESPONSE = "bad_response"
    MISSING_ENV = "missing_env_var"
    SCHEMA_CONTRACT = "schema_contract"
    INVALID_CONFIG = "invalid_config"
    INSECURE_TRANSPORT = "insecure_transport"
    DESTINATION_CONFIG = "destination_config"
    SCHEMA_DISCOVERY = "schema_discovery"
    API_ERROR = "api_error"
    DISK_FULL = "disk_full"
    LOCK_LOST = "lock_lost"
    LOCK_DATABASE = "lock_database"
    LOCK_WAIT = "lock_wait"
    SCHEMA_UPDATE = "schema_update"
    CONCURRENT_WRITE = "concurrent_write"
    UNKNOWN = "unknown"

    @property
    def summary(self) -> str:
        """What happened, as the middle of a sentence ("connector 'x': <summary>")."""
        return _SUMMARIES[self]


_SUMMARIES = {
    FailureKind.HTTP_STATUS: "the API answered with an error status",
    FailureKind.TIMEOUT: "the API did not answer in time",
    FailureKind.CONNECTION_ERROR: "could not connect to the API",
    FailureKind.CONNECTION_REFUSED: "nothing is listening at the API's address",
    FailureKind.HOST_NOT_FOUND: "the API's host name does not resolve",
    FailureKind.TLS_ERROR: "the TLS handshake with the API failed",
    FailureKind.TRUNCATED: "the connection closed before the whole response arrived",
    FailureKind.BAD_RESPONSE: "the API sent a response the connector cannot read",
    FailureKind.API_ERROR: "the API answered with an error in the body of a success",
    FailureKind.MISSING_ENV: "a required environment variable is not set",
    FailureKind.SCHEMA_CONTRACT: "the data broke the connector's schema contract",
    FailureKind.INVALID_CONFIG: "the connector's configuration cannot be used",
    FailureKind.INSECURE_TRANSPORT: "the connector would send credentials unencrypted",
    FailureKind.DESTINATION_CONFIG: "the destination settings cannot work for this connector",
    FailureKind.SCHEMA_DISCOVERY: "the API's description of its fields cannot be used",
    FailureKind.DISK_FULL: "no space left on device",
    FailureKind.LOCK_LOST: "a lock this run held was lost before it loaded",
    FailureKind.LOCK_DATABASE: "the lock database could not be reached",
    FailureKind.LOCK_WAIT: "the destination did not grant a lock in time",
    FailureKind.SCHEMA_UPDATE: "another load changed the destination's schema at the same moment",
    FailureKind.CONCURRENT_WRITE: "another load wrote the same rows at the same moment",
    FailureKind.UNKNOWN: "the sync failed",
}


class RestsyncError(Exception):
    """Base of every error restsync raises. The class decides the kind and the transience."""

    kind: ClassVar[FailureKind] = FailureKind.UNKNOWN
    #: Whether another attempt, unchanged, may succeed.
    transient: ClassVar[bool] = False
    #: The resource the error concerns, when known.
    resource: str | None = None
    #: The (redacted) URL the error concerns, when there is one.
    url: str | None = None


class ConfigurationError(RestsyncError, ValueError):
    """Something a person must change (a connector file, a setting, the environment)."""

    kind = FailureKind.INVALID_CONFIG


class SettingsError(ConfigurationError):
    """An environment variable holds a value restsync cannot use."""


class TemplateError(ConfigurationError):
    """A ``{{ ... }}`` that is not a valid environment reference."""


class MissingEnvVarError(ConfigurationError, KeyError):
    """A required environment variable is not set."""

    kind = FailureKind.MISSING_ENV

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"environment variable {self.name} is not set"


class InsecureTransportError(ConfigurationError):
    """A credential would travel unencrypted over the network."""

    kind = FailureKind.INSECURE_TRANSPORT

    def __init__(self, connector: str, url: str) -> None:
        self.connector = connector
        self.url = url
        super().__init__(
            f"connector {connector!r} would send its credentials over plain http:// to {url}; "
            "use https://, or set 'allow_insecure_http: true' in the connector file if this "
            "network is trusted"
        )


class DestinationConfigError(ConfigurationError):
    """The destination settings cannot work for a connector."""

    kind = FailureKind.DESTINATION_CONFIG


class DiscoveryError(RestsyncError, ValueError):
    """The API's field description cannot be turned into column hints."""

    kind = FailureKind.SCHEMA_DISCOVERY


class UnreachableError(RestsyncError):
    """The API's address cannot work as written: nothing listens there, the host name does not
    resolve, or TLS fails. Not retried, by dlt or by the retry sensor: a typo in a port or a host
    does not fix itself, and the message says which variable holds the address."""

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        self.detail = detail
        super().__init__(f"{detail} ({url})")


class ConnectionRefused(UnreachableError):
    """The host answered, but nothing listens on the port."""

    kind = FailureKind.CONNECTION_REFUSED


class HostNotFound(UnreachableError):
    """The host name does not resolve."""

    kind = FailureKind.HOST_NOT_FOUND


class TlsError(UnreachableError):
    """The TLS handshake failed (certificate, protocol)."""

    kind = FailureKind.TLS_ERROR


class RefusedMidSync(RestsyncError, RequestsConnectionError):
    """A refused connection to an API that has already answered this run: the address is right,
    the API went away mid-sync (a restart, a deploy, a crash). Transient, unlike
    :class:`ConnectionRefused` at the first request. Also a ``requests`` ``ConnectionError``, so
    dlt's client retries it with the connector's backoff, as any connection error."""

    kind = FailureKind.CONNECTION_ERROR
    transient = True

    def __init__(self, url: str, address: str, good_answers: int, request: Any = None) -> None:
        self.url = url
        self.address = address
        self.good_answers = good_answers
        self.detail = (
            f"Connection refused at {address} after {good_answers} good "
            f"answer{'s' * (good_answers != 1)} from it in this run"
        )
        RequestsConnectionError.__init__(self, f"{self.detail} ({url})", request=request)


class PreviewError(ConfigurationError):
    """The preview cannot run as asked (an unknown resource...)."""


class ResponseError(RestsyncError, ValueError):
    """An API answered 2xx, but with something the connector cannot use."""

    kind = FailureKind.BAD_RESPONSE

    def __init__(
        self, problem: str, *, resource: str | None = None, url: str | None = None
    ) -> None:
        self.problem = problem
        self.resource = resource
        self.url = url
        super().__init__(problem)


class ResponseContractError(ResponseError):
    """A page breaks what the connector file promises (its selector, keys, total...).

    Raised from inside dlt's extraction, so dlt wraps it; the classifier finds it in the chain
    and reports it with the connector, resource, page and redacted URL.
    """

    def __init__(self, resource: str, url: str, problem: str, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(problem, resource=resource, url=url)
        where = f" (offset {offset})" if offset is not None else ""
        self.args = (f"resource {resource!r}{where}: {problem} at {url}",)


class ResponseBodyError(ResponseError):
    """A body that does not parse (not JSON, not valid UTF-8). Also a ``ValueError``, like the
    ``JSONDecodeError`` of ``requests``, so code that expects that still catches it."""


class UnknownCharsetError(ResponseError):
    """A response declares a charset Python has no codec for: its body cannot be read."""

    def __init__(self, charset: str, *, url: str | None = None) -> None:
        super().__init__(f"The response declares an unknown charset {charset!r}.", url=url)
        self.charset = charset


class ApiBodyError(ResponseContractError):
    """A 2xx whose body says it failed (a ``response_actions`` entry with ``action: fail``);
    the message is the API's own."""

    kind = FailureKind.API_ERROR

    def __init__(
        self, resource: str, url: str, api_message: str, offset: int | None = None
    ) -> None:
        self.api_message = api_message
        super().__init__(resource, url, f"the API reported an error: {api_message}", offset)


class ApiBodyRetriesExhausted(ApiBodyError):
    """A 2xx whose body asked for a retry (``action: retry``) on every attempt."""

    transient = True

    def __init__(
        self, resource: str, url: str, api_message: str, offset: int | None = None
    ) -> None:
        super().__init__(resource, url, api_message, offset)
        where = f" (offset {offset})" if offset is not None else ""
        self.problem = f"the API still reported an error after the retries: {api_message}"
        self.args = (f"resource {resource!r}{where}: {self.problem} at {url}",)


class GraphQLErrors(ApiBodyError):
    """A GraphQL API answered 200 with ``errors``: nothing of the answer is loaded, even the
    records beside them (partial data), since a field or a record may be missing from them."""

    def __init__(
        self, resource: str, url: str, api_message: str, partial_records: int | None
    ) -> None:
        super().__init__(resource, url, api_message)
        self.partial_records = partial_records
        beside = (
            f" beside {partial_records} record(s) of partial data"
            if partial_records
            else " and no data"
        )
        self.problem = (
            f"the GraphQL API answered errors in a 200{beside}: {api_message}; nothing of this "
            "answer was loaded"
        )
        self.args = (f"resource {resource!r}: {self.problem} at {url}",)


class ReportJobTimeout(ResponseContractError):
    """An asynchronous report job that was not done within its ``timeout_seconds``."""

    kind = FailureKind.TIMEOUT
    transient = True


class LockError(RestsyncError):
    """A lock restsync takes (docs/deployment.md) is in the way: waiting and another attempt help."""

    transient = True


class LockLost(LockError):
    """A lock the run held is gone (its database session ended): another run may hold it now, so
    the run stops before it writes anything more."""

    kind = FailureKind.LOCK_LOST


class LockDatabaseError(LockError):
    """The database that holds restsync's locks cannot be reached."""

    kind = FailureKind.LOCK_DATABASE
