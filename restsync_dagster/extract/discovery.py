"""Schema discovery: an API's own description of a resource's fields becomes dlt column hints.

``schema_discovery: {records: {path: "/v1/databases/{resources.databases.id}/schema"}}`` asks every
database for its fields before the sync and merges them, so the table's types and nullability come
from the API instead of being guessed from the first values (an all-null field still gets its
column; a decimal stays a decimal). Column hints written in the file (``columns:``) win.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from restsync_dagster.connector import Connector
from restsync_dagster.connector.model import DiscoveryConfig
from restsync_dagster.connector.resources import resolve_resources
from restsync_dagster.extract.counters import ResourceTag
from restsync_dagster.extract.pages import install_page_checks
from restsync_dagster.failures.errors import DiscoveryError

_PLACEHOLDER = re.compile(r"\{resources\.([A-Za-z_]\w*)\.([A-Za-z_][\w.]*)\}")
_SIMPLE_TYPES = {
    "bigint": "bigint", "int": "bigint", "integer": "bigint", "long": "bigint", "smallint": "bigint",
    "text": "text", "string": "text", "varchar": "text", "char": "text", "uuid": "text",
    "double": "double", "float": "double", "real": "double", "number": "double",
    "decimal": "decimal", "numeric": "decimal",
    "boolean": "bool", "bool": "bool",
    "timestamp": "timestamp", "datetime": "timestamp", "timestamptz": "timestamp",
    "date": "date", "time": "time",
    "json": "json", "object": "json", "array": "json",
    "binary": "binary", "bytes": "binary",
}  # fmt: skip


def column_hint(api_type: str, nullable: bool) -> dict[str, Any]:
    """One dlt column hint from an API type name such as ``decimal(12,2)`` or ``timestamp``.

    Raises:
        DiscoveryError: the type is not one restsync knows.
    """
    match = re.fullmatch(r"\s*([A-Za-z]+)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*", api_type)
    base = _SIMPLE_TYPES.get(match.group(1).lower()) if match else None
    if match is None or base is None:
        known = ", ".join(sorted(set(_SIMPLE_TYPES)))
        raise DiscoveryError(f"unknown field type {api_type!r}; known types: {known}")
    hint: dict[str, Any] = {"data_type": base, "nullable": bool(nullable)}
    # An integer's number is a display width (MySQL's int(11)), not dlt's precision in bits:
    # taken as bits, int(11) would become SMALLINT and refuse the values.
    if match.group(2) and base in ("decimal", "text", "binary", "timestamp"):
        hint["precision"] = int(match.group(2))
        if match.group(3) and base == "decimal":
            hint["scale"] = int(match.group(3))
    return hint


def merge_fields(
    answers: Iterable[Iterable[Mapping[str, Any]]], spec: DiscoveryConfig
) -> dict[str, dict[str, Any]]:
    """Column hints from every answer's field list: the union of fields, nullable if any answer
    says so.

    Raises:
        DiscoveryError: a field is missing its name or type, or answers disagree on a type.
    """
    columns: dict[str, dict[str, Any]] = {}
    for fields in answers:
        for entry in fields:
            name, api_type = entry.get(spec.name_key), entry.get(spec.type_key)
            if not name or not api_type:
                raise DiscoveryError(
                    f"a field lacks {spec.name_key!r} or {spec.type_key!r}: {dict(entry)}"
                )
            hint = column_hint(str(api_type), bool(entry.get(spec.nullable_key, True)))
            known = columns.get(str(name))
            if known is None:
                columns[str(name)] = hint
                continue
            if {k: v for k, v in known.items() if k != "nullable"} != {
                k: v for k, v in hint.items() if k != "nullable"
            }:
                raise DiscoveryError(f"field {name!r} has different types: {known} and {hint}")
            known["nullable"] = known["nullable"] or hint["nullable"]
    return columns


def discover_columns(
    connector: Connector, config: Mapping[str, Any], session: Any
) -> dict[str, dict[str, dict[str, Any]]]:
    """Ask the API for the fields of every resource that has ``schema_discovery``.

    Args:
        connector: The connector.
        config: Its rendered ``source:`` config (variables substituted).
        session: The connector's HTTP session (retries, counters).

    Returns:
        Resource name -> column name -> dlt column hint.
    """
    from dlt.common import jsonpath
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.rest_api.config_setup import create_auth

    client_config = config.get("client") or {}
    client = RESTClient(
        base_url=client_config["base_url"],
        headers=client_config.get("headers"),
        auth=create_auth(client_config.get("auth")),
        session=session,
    )
    discovered = {}
    for resource, spec in connector.config.schema_discovery.items():
        answers = []
        for path in _expand(spec.path, config, session):
            # Tagged, so the requests count for the resource being discovered.
            response = client.get(path, hooks={"response": [ResourceTag(resource)]})
            response.raise_for_status()
            found = jsonpath.find_values(spec.fields_selector, response.json())
            fields = found[0] if len(found) == 1 and isinstance(found[0], list) else found
            if not isinstance(fields, list):
                raise DiscoveryError(f"{path}: {spec.fields_selector!r} is not a list of fields")
            answers.append(fields)
        discovered[resource] = merge_fields(answers, spec)
    return discovered


def _expand(path: str, config: Mapping[str, Any], session: Any) -> list[str]:
    """``path`` once per distinct parent value of its ``{resources.<parent>.<field>}``."""
    placeholders = set(_PLACEHOLDER.findall(path))
    if not placeholders:
        return [path]
    if len({parent for parent, _ in placeholders}) > 1:
        raise DiscoveryError(f"{path!r}: placeholders may name one parent resource only")
    parent = next(iter(placeholders))[0]
    rows = _parent_rows(parent, config, session)
    paths = []
    for row in rows:
        expanded = path
        for _, field_name in placeholders:
            value = row.get(field_name)
            if value is None:
                raise DiscoveryError(f"a {parent!r} row has no {field_name!r} for {path!r}")
            expanded = expanded.replace(f"{{resources.{parent}.{field_name}}}", str(value))
        paths.append(expanded)
    return list(dict.fromkeys(paths))


def _parent_rows(parent: str, config: Mapping[str, Any], session: Any) -> list[dict[str, Any]]:
    from dlt.sources.rest_api import rest_api_source

    entries = [  # copies: the page checks are installed on these, not on the sync's own
        dict(e) if isinstance(e, dict) else e
        for e in config.get("resources") or []
        if (e if isinstance(e, str) else e.get("name")) == parent
    ]
    if not entries:
        raise DiscoveryError(f"no resource named {parent!r} to discover from")
    sub_config = {
        "client": {**(config.get("client") or {}), "session": session},
        "resource_defaults": config.get("resource_defaults") or {},
        "resources": entries,
    }
    # The parent's own page checks: its pages are checked and counted as they are in a sync.
    install_page_checks(sub_config, resolve_resources(sub_config))
    source = rest_api_source(sub_config, name=f"discover_{parent}")  # type: ignore[arg-type]
    return [row for row in source.resources[parent] if isinstance(row, dict)]
