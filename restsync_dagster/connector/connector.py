"""A validated connector: its config, the file it came from, the variables it reads, and its
resources resolved once against ``resource_defaults``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from restsync_dagster import names
from restsync_dagster.connector.model import ConnectorConfig
from restsync_dagster.connector.resources import ResolvedResource, resolve_resources
from restsync_dagster.failures.classify import Hints


@dataclass(frozen=True)
class EnvVarUse:
    """An environment variable a connector reads, and where."""

    name: str
    default: str | None
    secret: bool
    key_paths: tuple[str, ...]
    #: A ``{{ tenant.NAME }}``: ``name`` is the suffix after a tenant's prefix (``API_KEY``).
    tenant: bool = False

    @property
    def required(self) -> bool:
        """True when the variable has no fallback."""
        return self.default is None


@dataclass(frozen=True)
class Connector:
    """A validated connector file."""

    config: ConnectorConfig
    file: Path
    #: The ``{{ env.NAME }}`` variables (every tenant's, in a file with ``tenants:``); once bound
    #: to a tenant (:func:`restsync_dagster.connector.tenants.for_tenant`), its own too.
    env_vars: tuple[EnvVarUse, ...] = field(default=())
    #: The ``{{ tenant.NAME }}`` variables, by suffix (``API_KEY``); empty once bound.
    tenant_vars: tuple[EnvVarUse, ...] = field(default=())
    #: The tenant this connector is bound to (a run of one tenant), or None.
    tenant: str | None = None

    @property
    def name(self) -> str:
        """The connector's name (first element of its asset keys)."""
        return self.config.name

    @property
    def has_tenants(self) -> bool:
        """Whether the file declares ``tenants:`` (bound to one or not)."""
        return self.config.tenants is not None

    @property
    def pipeline_scope(self) -> str:
        """What the connector's dlt pipeline and pipeline locks are named after: its name, or
        for a connector bound to a tenant, the tenant's own scope (:func:`names.tenant_scope`)."""
        if self.tenant is None:
            return self.name
        return names.tenant_scope(self.name, self.tenant)

    @cached_property
    def resources(self) -> list[ResolvedResource]:
        """The resources of ``source:``, defaults applied once, in file order."""
        return resolve_resources(self.config.source)

    def resource(self, name: str) -> ResolvedResource:
        """The resource called ``name``.

        Raises:
            KeyError: the connector has no such resource.
        """
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)

    @property
    def required_env(self) -> list[str]:
        """Variables that must be set for a run to start."""
        return [v.name for v in self.env_vars if v.required]

    @property
    def secret_env(self) -> list[str]:
        """Variables holding credentials."""
        return [v.name for v in self.env_vars if v.secret]

    @property
    def hints(self) -> Hints:
        """The variable names a failure message should point at (base URL, credentials)."""
        base_url = next(
            (v.name for v in self.env_vars if "source.client.base_url" in v.key_paths), None
        )
        return Hints(base_url_variable=base_url, secret_variables=tuple(self.secret_env))
