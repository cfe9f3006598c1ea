"""The typed model of a connector file's own keys (schedule, retry, partitions, ...).

Pydantic models, strict (an unknown key is an error) and frozen. ``source:`` is kept as the dlt
``RESTAPIConfig`` dict it is; :mod:`restsync_dagster.connector.rules` checks it. Pure: no Dagster.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from restsync_dagster.connector.cron import cron_problem

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESOURCE_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,126}$")
DEFAULT_RETRY_STATUSES: tuple[int, ...] = (429, 500, 502, 503, 504)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryConfig(_Strict):
    """HTTP-level retries of one connector."""

    statuses: tuple[int, ...] = DEFAULT_RETRY_STATUSES
    max_retries: int = Field(3, ge=0, le=10)
    backoff_factor: float = Field(2.0, ge=0, le=600)
    #: Cap on any single wait, the server's ``Retry-After`` included.
    max_delay_seconds: float = Field(60.0, gt=0, le=3600)
    #: Retry *runs* per failed run, by the ``retry_transient_failures`` sensor (default: the
    #: deployment's ``RESTSYNC_RUN_RETRIES``, 3).
    run_retries: int | None = Field(None, ge=0, le=20)
    #: Wait before the first retry run; doubles for each further one (default:
    #: ``RESTSYNC_RUN_RETRY_BASE_DELAY_SECONDS``, 60).
    run_base_delay_seconds: float | None = Field(None, ge=0, le=86_400)

    @field_validator("statuses")
    @classmethod
    def _http_error_statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [s for s in value if not 400 <= s <= 599]
        if bad:
            raise ValueError(f"retry statuses must be HTTP error codes (400-599), not {bad}")
        # Asking again cannot fix a wrong key, a refused permission or a wrong path; retrying
        # them would also make the retry sensor re-run syncs it promises never to re-run.
        never = [s for s in value if s in (400, 401, 403, 404)]
        if never:
            raise ValueError(f"{never} cannot be retry statuses: retrying does not fix them")
        return value


class ScheduleConfig(_Strict):
    """When the connector's sync job runs."""

    cron: str
    timezone: str = "UTC"
    #: Whether the schedule is on when the code location loads (it can be toggled in the UI).
    running: bool = True

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        problem = cron_problem(value)
        if problem is not None:
            raise ValueError(problem)
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a 5-field cron expression such as '0 * * * *'")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'UTC'"
            ) from None
        return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str) -> float:
    """``"26h"``, ``"90m"``, ``"2d"``... in seconds.

    Raises:
        ValueError: not a number followed by one of s, m, h, d, w.
    """
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration such as '30m', '26h' or '2d'")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


class TimeWindowConfig(_Strict):
    """A time-window partitioning: ``{start: 2026-01-01}`` (dates or ISO date-times)."""

    start: str
    end: str | None = None
    timezone: str = "UTC"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _iso(cls, value: Any) -> Any:
        from datetime import date, datetime

        if isinstance(value, date | datetime):
            return value.isoformat()
        if value is not None:
            try:
                datetime.fromisoformat(str(value))
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO date such as 2026-01-01") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        return ScheduleConfig._valid_timezone(value)


class BackfillConfig(_Strict):
    """Dagster's ``BackfillPolicy.multi_run``: ``{max_partitions_per_run: 7}``."""

    max_partitions_per_run: int = Field(ge=1, le=10_000)


class PartitionsConfig(_Strict):
    """Dagster time-window partitions mapped onto the incremental window: exactly one of
    hourly, daily, weekly, monthly; how many partition runs may load side by side; and how a
    backfill is cut into runs."""

    hourly: TimeWindowConfig | None = None
    daily: TimeWindowConfig | None = None
    weekly: TimeWindowConfig | None = None
    monthly: TimeWindowConfig | None = None
    #: Runs of different partitions that may sync at once (needs a destination that takes
    #: concurrent writers; DuckDB does not).
    max_concurrent: int = Field(1, ge=1, le=64)
    #: ``single_run`` (one run over the whole range) or ``{max_partitions_per_run: N}``;
    #: unset: one run per partition.
    backfill: Literal["single_run"] | BackfillConfig | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PartitionsConfig:
        chosen = [k for k in ("hourly", "daily", "weekly", "monthly") if getattr(self, k)]
        if len(chosen) != 1:
            raise ValueError("give exactly one of hourly, daily, weekly, monthly")
        return self

    @property
    def granularity(self) -> str:
        """``hourly``, ``daily``, ``weekly`` or ``monthly``."""
        return next(k for k in ("hourly", "daily", "weekly", "monthly") if getattr(self, k))

    @property
    def window(self) -> TimeWindowConfig:
        """The chosen partitioning's settings."""
        value = getattr(self, self.granularity)
        assert value is not None
        return value


class FreshnessConfig(_Strict):
    """How stale the connector's tables may get: ``{max_lag: 26h, warn_lag: 12h}``."""

    max_lag: str
    warn_lag: str | None = None

    @field_validator("max_lag", "warn_lag")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class DiscoveryConfig(_Strict):
    """Where an API describes a resource's fields; they become dlt column hints at run time.

    ``path`` may hold ``{resources.<parent>.<field>}`` like an endpoint path: the fields of every
    parent row's answer are merged.
    """

    path: str
    fields_selector: str = "fields"
    name_key: str = "name"
    type_key: str = "type"
    nullable_key: str = "nullable"


class RateLimitConfig(_Strict):
    """How hard restsync may press one API key: every run of every connector naming the same
    ``key`` shares these limits (see docs/connectors.md, "Rate limits")."""

    #: The API key's budget these limits belong to (default: the connector's name). Connectors
    #: with the same key share one budget, and must declare the same limits.
    key: str | None = None
    #: How many runs may spend the key at once, each a fixed share of its limits (default: the
    #: connector's ``partitions.max_concurrent``, else 1); a run beyond waits for one to end.
    runs: int | None = Field(None, ge=1, le=64)
    #: At most this many requests in any one-second window (no limit when unset). Above 1, a
    #: fraction is rounded down (2.5 allows 2); below 1, requests are spaced 1/N seconds apart.
    requests_per_second: float | None = Field(None, gt=0, le=10_000)
    #: At most this many requests in flight at once; above 1, offset pages are fetched
    #: concurrently once the first page has told the total.
    max_concurrency: int = Field(1, ge=1, le=64)
    #: Slow down before the API answers 429: spend the budget its rate-limit headers tell
    #: (``X-RateLimit-Remaining``/``-Reset``, IETF ``RateLimit``/``RateLimit-Policy``).
    from_headers: bool = False
    #: With ``from_headers``: requests of the budget to leave unspent (for other clients).
    reserve: int = Field(0, ge=0, le=100_000)

    @field_validator("key")
    @classmethod
    def _valid_key(cls, value: str | None) -> str | None:
        if value is not None and not NAME_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not a valid rate key: use lower-case letters, digits and '_', "
                "starting with a letter"
            )
        return value


#: A tenant's key: lower-case letters, digits, ``_`` and ``-`` (a subdomain, an account id).
TENANT_KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
#: Where a tenant's variable prefix puts the tenant (``SHOP_{TENANT}_``).
TENANT_PLACEHOLDER = "{TENANT}"


def tenant_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a tenant's key, or None when it can."""
    if not isinstance(key, str) or not TENANT_KEY_PATTERN.match(key):
        return (
            f"{key!r} is not a valid tenant key: use lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit, at most 63 characters"
        )
    return None


def tenant_token(key: str) -> str:
    """``acme-eu`` -> ``ACME_EU``: a tenant's key as it appears in its variables' names."""
    return "".join(c if c.isalnum() else "_" for c in key.upper())


class TenantsConfig(_Strict):
    """``tenants:``: one connector file serving many accounts, each a partition of the
    connector's assets with its own variables, dlt pipeline, state, locks and rate key."""

    #: The tenants, fixed in the file (exclusive with ``dynamic``).
    keys: tuple[str, ...] = ()
    #: Tenants are added at run time (a Dagster dynamic partitions definition).
    dynamic: bool = False
    #: The prefix of a tenant's variables; ``{TENANT}`` is its key upper-cased, each character
    #: other than a letter or digit made ``_`` (default: ``<NAME>_{TENANT}_``).
    variables: str | None = None
    #: ``shared``: one table per resource, each row tagged with its tenant in ``column``, which
    #: extends primary and merge keys; ``datasets``: one dataset per tenant.
    tables: Literal["shared", "datasets"] = "shared"
    #: The tenant column of shared tables.
    column: str = "tenant"
    #: Runs of different tenants that may sync at once (the connector's pool; each tenant has
    #: its own pipeline and locks, and loads into one dataset take turns).
    max_concurrent: int = Field(1, ge=1, le=64)

    @field_validator("keys")
    @classmethod
    def _valid_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [problem for key in value if (problem := tenant_key_problem(key))]
        if bad:
            raise ValueError("; ".join(bad))
        seen: dict[str, str] = {}
        for key in value:
            other = seen.setdefault(tenant_token(key), key)
            if other != key or value.count(key) > 1:
                raise ValueError(
                    f"tenants {other!r} and {key!r} would read the same variables "
                    f"({tenant_token(key)}): give each tenant a distinct key"
                    if other != key
                    else f"tenant {key!r} is listed twice"
                )
        return value

    @field_validator("variables")
    @classmethod
    def _valid_variables(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.count(TENANT_PLACEHOLDER) != 1:
            raise ValueError(
                f"{value!r} must hold {TENANT_PLACEHOLDER} exactly once (e.g. 'SHOP_{{TENANT}}_'): "
                "each tenant reads its own variables"
            )
        if not ENV_NAME_PATTERN.match(value.replace(TENANT_PLACEHOLDER, "X")):
            raise ValueError(f"{value!r} is not a variable-name prefix (letters, digits, '_')")
        return value

    @field_validator("column")
    @classmethod
    def _valid_column(cls, value: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", value) or value.startswith("_dlt"):
            raise ValueError(
                f"{value!r} is not a column name for the tenant (lower-case letters, digits, "
                "'_'; not starting with '_dlt')"
            )
        return value

    @model_validator(mode="after")
    def _keys_or_dynamic(self) -> TenantsConfig:
        if bool(self.keys) == self.dynamic:
            raise ValueError(
                "give the tenants as 'keys: [acme, globex]' or say 'dynamic: true' (tenants "
                "added at run time), not both" if self.dynamic else
                "give the tenants as 'keys: [acme, globex]' or say 'dynamic: true' (tenants "
                "added at run time)"
            )  # fmt: skip
        return self

    def prefix(self, connector: str, key: str) -> str:
        """The prefix of the variables tenant ``key`` of ``connector`` reads (``SHOP_ACME_``)."""
        pattern = self.variables or connector.upper() + "_" + TENANT_PLACEHOLDER + "_"
        return pattern.replace(TENANT_PLACEHOLDER, tenant_token(key))


SchemaContractMode = Literal["evolve", "freeze", "discard_row", "discard_value"]


class ConnectorConfig(_Strict):
    """The validated content of one connector file."""

    name: str
    description: str = ""
    owners: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    schedule: ScheduleConfig | None = None
    retry: RetryConfig = Field(default_factory=lambda: RetryConfig())
    #: Seconds to wait for a server to answer (connect and each read).
    timeout_seconds: float = Field(60.0, gt=0, le=3600)
    rate_limit: RateLimitConfig = Field(default_factory=lambda: RateLimitConfig())
    #: Hand pages to dlt as Arrow tables, root and child tables alike (extract/arrow.py).
    arrow: bool = True
    #: Let credentials travel over plain ``http://`` to a host that is not this machine.
    allow_insecure_http: bool = False
    #: Destination dataset (schema); defaults to the connector's name.
    dataset: str | None = None
    #: Time-window partitions mapped onto the incremental window of incremental resources.
    partitions: PartitionsConfig | None = None
    #: dlt's schema contract for the whole source (per-resource ones go in ``source:``).
    schema_contract: SchemaContractMode | dict[str, SchemaContractMode] | None = None
    freshness: FreshnessConfig | None = None
    #: Resource name -> where the API describes its fields.
    schema_discovery: dict[str, DiscoveryConfig] = Field(default_factory=dict)
    #: Variables beyond ``<NAME>_*`` this connector reads (with ``RESTSYNC_CONFINE_ENV``, each
    #: must be one of ``RESTSYNC_SHARED_ENV_VARS``; see docs/security.md).
    env: tuple[str, ...] = ()
    #: One file, many accounts: the tenants this connector serves (see :class:`TenantsConfig`).
    tenants: TenantsConfig | None = None
    source: dict[str, Any]

    @property
    def rate_key(self) -> str:
        """The API key's budget this connector's requests spend (``rate_limit.key``)."""
        return self.rate_limit.key or self.name

    @property
    def rate_runs(self) -> int:
        """How many runs may spend :attr:`rate_key` at once (``rate_limit.runs``, else
        ``partitions.max_concurrent``, else 1)."""
        if self.rate_limit.runs is not None:
            return self.rate_limit.runs
        return self.partitions.max_concurrent if self.partitions is not None else 1

    @property
    def pool_limit(self) -> int:
        """How many runs of the connector may sync at once: ``partitions.max_concurrent`` runs
        of each of ``tenants.max_concurrent`` tenants (1 when neither is set)."""
        partitions = self.partitions.max_concurrent if self.partitions is not None else 1
        tenants = self.tenants.max_concurrent if self.tenants is not None else 1
        return partitions * tenants

    @field_validator("env")
    @classmethod
    def _valid_env_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in value if not ENV_NAME_PATTERN.match(name)]
        if bad:
            raise ValueError(f"{bad} are not variable names (letters, digits, '_')")
        return value

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not a valid connector name: use lower-case letters, digits and "
                "'_', starting with a letter"
            )
        return value

    @field_validator("dataset")
    @classmethod
    def _valid_dataset(cls, value: str | None) -> str | None:
        if value is not None and not NAME_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a valid dataset name (lower-case, digits, '_')")
        return value

    @field_validator("owners")
    @classmethod
    def _valid_owners(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for owner in value:
            if "@" not in owner and not owner.startswith("team:"):
                raise ValueError(f"owner {owner!r} must be an email address or 'team:<name>'")
        return value

    @model_validator(mode="before")
    @classmethod
    def _schedule_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("schedule"), str):
            return {**data, "schedule": {"cron": data["schedule"]}}
        return data

    @property
    def dataset_name(self) -> str:
        """The destination dataset this connector loads into."""
        return self.dataset or self.name
