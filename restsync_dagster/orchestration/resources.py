"""Dagster resources: where a connector's secrets and variables come from at run time.

Each connector gets one resource, ``<connector>_env``, whose fields are the variables its file
references without a default, each bound to ``dagster.EnvVar``. The UI's Resources tab lists
them by name with the values hidden; a missing one fails the run before any request, naming the
variable. Variables with a default are optional and read when the run starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg
import pydantic

from restsync_dagster.connector import Connector
from restsync_dagster.connector.tenants import tenant_prefix


class ConnectorEnv(dg.ConfigurableResource):
    """Values of the environment variables one connector reads (subclassed per connector)."""

    def values(self) -> dict[str, str]:
        """Variable name -> value, for every field of this resource."""
        return {name: str(getattr(self, name)) for name in type(self).model_fields}


def build_env_resource(connector: Connector) -> ConnectorEnv:
    """A resource with one ``EnvVar`` field per variable the connector requires."""
    camel = "".join(part.capitalize() for part in connector.name.split("_"))
    fields: dict[str, tuple[type, object]] = {
        name: (str, pydantic.Field(..., description=_describe(connector, name)))
        for name in connector.required_env
    }
    resource_cls = pydantic.create_model(  # type: ignore[call-overload]
        f"{camel}Env",
        __base__=ConnectorEnv,
        __doc__=f"Environment variables of connector {connector.name!r} ({connector.file.name}).",
        __module__=__name__,
        **fields,
    )
    return resource_cls(**{name: dg.EnvVar(name) for name in connector.required_env})


def runtime_env(
    connector: Connector, required: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every variable the connector reads, and no other: required ones from its resource,
    the others from the environment (defaults apply when unset). A connector bound to a tenant
    reads its tenant's variables from the environment too, when the run starts: the resource
    holds only what every tenant shares, so the code location does not grow with the tenants."""
    env = os.environ if environ is None else environ
    values = dict(required)
    # A required variable comes from the resource (what the UI shows and a run's config may set),
    # never from the environment behind its back; a tenant's own variables are the exception.
    own = tenant_prefix(connector, connector.tenant) if connector.tenant is not None else None
    for var in connector.env_vars:
        from_env = not var.required or (own is not None and var.name.startswith(own))
        if from_env and var.name not in values and var.name in env:
            values[var.name] = env[var.name]
    return values


def _describe(connector: Connector, name: str) -> str:
    use = next(v for v in connector.env_vars if v.name == name)
    kind = "secret" if use.secret else "variable"
    return f"{kind} used at {', '.join(use.key_paths)}"
