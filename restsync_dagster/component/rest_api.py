"""``RestApiComponent``: one connector as a Dagster component, its attributes a connector file's keys.

Dagster neither renders nor validates the attributes: :meth:`RestApiComponent.load` keeps every
value as written (a ``{{ env.NAME }}`` is restsync's, read when a run starts, so no secret is
ever rendered into the definitions), and its JSON schema names and describes every key without
constraining it, so that ``dg check defs`` reports each problem once, with the connector floor's
own one-line message, exactly as for a connector file. :meth:`RestApiComponent.connectors` turns
the attributes back into that document and validates it with
:func:`restsync_dagster.connector.parse_connector_document`.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Annotated, Any, Self

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field

from restsync_dagster import names
from restsync_dagster.component.base import RestsyncComponent
from restsync_dagster.component.scaffold import RestApiScaffolder
from restsync_dagster.connector import (
    Connector,
    ConnectorFileError,
    Problem,
    parse_connector_document,
)

#: A value handed to restsync as written in ``defs.yaml``: no Jinja, no type coercion.
AsWritten = Annotated[Any, dg.Resolver.passthrough()]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # unset means restsync's default, which the description gives


def attribute(description: str) -> Any:
    """An optional attribute: described in the JSON schema, constrained by nothing there."""
    return Field(None, description=description, json_schema_extra=_no_default)


@dg.scaffold_with(RestApiScaffolder)
class RestApiComponent(RestsyncComponent, dg.Resolvable):
    """One REST API synced into the warehouse by restsync: attributes are a connector file's keys.

    Each resource of ``source:`` (a dlt ``RESTAPIConfig``) becomes an asset ``<name>/<resource>``
    in group ``<name>``, with its asset checks, a ``<name>_sync`` job, a schedule when
    ``schedule:`` is set, a ``<name>_env`` resource holding the variables it reads, and the
    ``<name>_retry_transient_failures`` sensor. Secrets are written ``{{ env.NAME }}`` and read
    when a run starts. The keys are documented in restsync's README, "Adding a connector".
    """

    # Unknown keys reach restsync's validation, which names them (did you mean ...?).
    model_config = ConfigDict(extra="allow", json_schema_extra={"title": "RestApiComponent"})

    name: AsWritten = attribute(
        "Unique connector name; asset keys <name>/<resource>. Default: the folder's name."
    )
    description: AsWritten = attribute("Shown on every asset of the connector.")
    owners: AsWritten = attribute("Emails or team:<name>, on every asset.")
    tags: AsWritten = attribute("Asset tags, a mapping of strings.")
    schedule: AsWritten = attribute(
        "A cron string, or {cron, timezone, running}: when <name>_sync runs."
    )
    retry: AsWritten = attribute(
        "HTTP retries (statuses, max_retries, backoff_factor, max_delay_seconds) and "
        "run retries (run_retries, run_base_delay_seconds).",
    )
    timeout_seconds: AsWritten = attribute("Per request (default 60).")
    rate_limit: AsWritten = attribute(
        "{requests_per_second, max_concurrency} for the whole connector."
    )
    arrow: AsWritten = attribute("Pages travel as Arrow tables, child tables too (default true).")
    allow_insecure_http: AsWritten = attribute(
        "Let credentials travel over plain http:// to another machine."
    )
    dataset: AsWritten = attribute("Destination dataset; default: the name.")
    partitions: AsWritten = attribute(
        "{hourly|daily|weekly|monthly: {start, end, timezone}}: backfills."
    )
    schema_contract: AsWritten = attribute(
        "dlt's schema contract: evolve, freeze, discard_row, discard_value."
    )
    freshness: AsWritten = attribute("{max_lag, warn_lag}, e.g. {max_lag: 26h}.")
    schema_discovery: AsWritten = attribute(
        "Resource -> {path, fields_selector, ...}: column hints from the API."
    )
    env: AsWritten = attribute(
        "Variables beyond <NAME>_* the connector reads (RESTSYNC_CONFINE_ENV, docs/security.md)."
    )
    tenants: AsWritten = attribute(
        "{keys: [acme, globex]} or {dynamic: true}, with variables, tables (shared|datasets), "
        "column: one connector for many accounts, each a partition with its own credentials "
        "({{ tenant.NAME }}), cursor, retries and rate budget (docs/tenants.md)."
    )
    source: AsWritten = attribute(
        "A dlt RESTAPIConfig (client, resource_defaults, resources), verbatim; "
        "secrets as {{ env.NAME }}.",
    )

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        """The component itself: every key described, none constrained (restsync validates)."""
        return cls

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> Self:
        """The attributes exactly as written in ``defs.yaml``: nothing rendered, nothing coerced."""
        given = attributes.model_dump(exclude_unset=True) if attributes is not None else {}
        component = cls.model_validate(given)
        component.locate(context)
        return component

    def document(self) -> dict[str, Any]:
        """The connector document these attributes are: a connector file's content."""
        document = {
            key: getattr(self, key)
            for key in type(self).model_fields
            if key in self.model_fields_set
        }
        document.update(self.model_extra or {})
        if "name" not in document:
            document["name"] = self.folder.name
        return document

    def connectors(self) -> list[Connector]:
        """The connector, validated as a connector file is.

        Raises:
            ConnectorFileError: one line per problem, ``<defs.yaml>: attributes.<key path>: ...``.
        """
        try:
            return [
                parse_connector_document(self.document(), self.folder / "defs.yaml", self.label)
            ]
        except ConnectorFileError as exc:
            raise ConnectorFileError(
                [self._in_attributes(problem) for problem in exc.problems]
            ) from None

    def build_key(self) -> Hashable:
        return json.dumps(self.document(), sort_keys=True, default=repr)

    def declared_names(self) -> dict[str, str]:
        name = self.document()["name"]
        return {name: self.label} if isinstance(name, str) else {}

    def sensor_name(self) -> str:
        return names.retry_sensor_name(str(self.document()["name"]))

    def _in_attributes(self, problem: Problem) -> Problem:
        key_path = f"attributes.{problem.key_path}" if problem.key_path else "attributes"
        message = problem.message
        if problem.key_path == "name" and "name" not in self.model_fields_set:
            message += " (the name defaults to the folder's name: set attributes.name)"
        return Problem(problem.file, key_path, message)
