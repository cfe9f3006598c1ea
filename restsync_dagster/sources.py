"""Connector -> dlt source.

Two builders, for the two moments a source is needed:

* :func:`spec_source` at definition load: a light ``DltSource`` with one empty resource per
  connector resource, enough for ``@dlt_assets`` to derive asset specs. It makes no request,
  reads no variable and costs ~1 ms (a real ``rest_api_source`` costs ~20 ms per connector).
* :func:`build_source` at run time: ``{{ env.* }}`` rendered, processing-step callables imported,
  the connector's retrying HTTP session installed, discovered column hints and a partition's
  window applied, and every configured paginator wrapped in a
  :class:`~restsync_dagster.pages.ContractCheckingPaginator` that checks each page.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from restsync_dagster.errors import InsecureTransportError
from restsync_dagster.fetch import FetchPlan, client_class
from restsync_dagster.http import path_router
from restsync_dagster.pages import ContractCheckingPaginator, PageContract
from restsync_dagster.redaction import redact_url
from restsync_dagster.spec import Connector, resolve_callables
from restsync_dagster.templating import render_tree

if TYPE_CHECKING:
    from dlt.extract.source import DltSource


def spec_source(connector: Connector, schema: Any | None = None) -> DltSource:
    """A request-free stand-in source whose resources mirror the connector's, for asset specs.

    Args:
        connector: The connector.
        schema: A dlt ``Schema`` to hold the stand-in resources; one can serve every connector
            of a code location (a new one costs ~3 ms). Runs build their own.
    """
    import dlt
    from dlt.common.schema import Schema
    from dlt.extract.source import DltSource

    resources = [
        dlt.resource(  # type: ignore[call-overload]
            [],
            name=info.name,
            table_name=info.table_name,
            write_disposition=info.write_disposition,  # type: ignore[arg-type]
            primary_key=list(info.primary_key)
            if isinstance(info.primary_key, tuple)
            else info.primary_key,
        )
        for info in connector.resources
    ]
    return DltSource(
        schema if schema is not None else Schema(connector.name), "restsync", resources
    )


def render_source_config(connector: Connector, env: Mapping[str, str]) -> dict[str, Any]:
    """The connector's ``source:`` block with variables rendered and callables imported.

    Raises:
        MissingEnvVarError: a required variable is missing from ``env``.
    """
    rendered = render_tree(copy.deepcopy(connector.spec.source), env)
    resolved, errors = resolve_callables(rendered)
    if errors:  # load-time validation imports the same references; this is a changed module
        path, message = errors[0]
        raise ValueError(f"{connector.file.name}: {path}: {message}")
    return resolved


def build_source(
    connector: Connector,
    env: Mapping[str, str],
    session: Any,
    *,
    window: tuple[datetime, datetime] | None = None,
    max_pages: int | None = None,
    on_page: Callable[[str, int], None] | None = None,
) -> DltSource:
    """The real dlt ``rest_api_source`` for one run.

    Args:
        connector: The validated connector.
        env: Values of the variables the connector references (secrets included).
        session: The HTTP session (see :func:`restsync_dagster.http.build_session`).
        window: A partition's time window: every incremental resource loads exactly
            ``[start, end)`` of its cursor, without reading or moving the stored cursor.
        max_pages: Stop each paginated request sequence after this many pages (for previews).
        on_page: Told ``(resource, rows)`` after each page (progress reporting).
    """
    from dlt.sources.rest_api import rest_api_source

    config = render_source_config(connector, env)
    check_transport(connector, config)
    config.setdefault("client", {})["session"] = session
    if connector.spec.schema_discovery:
        from restsync_dagster.discovery import discover_columns

        apply_column_hints(config, discover_columns(connector, config, session))
    if window is not None:
        bound_incremental(config, window)
    _install_contract_checks(config, max_pages, on_page)
    plan = fetch_plan(connector, config)
    _type_text_cursors(config, plan)
    with _rest_client_class(client_class(plan)):
        return rest_api_source(
            config,  # type: ignore[arg-type]
            name=connector.name,
            schema_contract=connector.spec.schema_contract,  # type: ignore[arg-type]
        )


def fetch_plan(connector: Connector, config: Mapping[str, Any]) -> FetchPlan:
    """How ``connector``'s pages are fetched: its concurrency, and which resources may travel as
    Arrow batches (top-level ones whose records no step, column hint or child resource has to
    see one by one: dlt resolves a child's path parameters from its parent's dict records)."""
    infos = connector.resources
    defaults = config.get("resource_defaults") or {}
    entries = {e["name"]: e for e in config.get("resources") or [] if isinstance(e, dict)}
    parents = {info.parent for info in infos if info.parent}

    def sees_records(name: str) -> bool:
        # dlt applies resource_defaults to every resource, steps and column hints included.
        merged = {**defaults, **entries.get(name, {})}
        return bool(merged.get("processing_steps") or merged.get("columns"))

    arrow = frozenset(
        info.name
        for info in infos
        if connector.spec.arrow
        and info.parent is None
        and info.name not in parents
        and not sees_records(info.name)
    )
    keys = {
        info.name: info.primary_key
        if isinstance(info.primary_key, tuple)
        else ((info.primary_key,) if info.primary_key else ())
        for info in infos
    }
    cursors = {
        info.name: frozenset({str(info.incremental["cursor_path"])})
        for info in infos
        if info.name in arrow and info.incremental and info.incremental.get("cursor_path")
    }
    return FetchPlan(
        max_concurrency=connector.spec.rate_limit.max_concurrency,
        arrow_resources=arrow,
        route=path_router({info.name: info.path for info in infos}),
        primary_keys=keys,
        keep_text=cursors,
        table_names={info.name: info.table_name for info in infos},
    )


def _type_text_cursors(config: dict[str, Any], plan: FetchPlan) -> None:
    """An ISO-8601 incremental cursor kept as text in Arrow batches is still a timestamp in the
    table, as dlt's normalizer would make it: a column hint says so."""
    for entry in _resource_entries(config):
        for cursor in plan.keep_text.get(entry["name"], frozenset()):
            endpoint = entry.get("endpoint")
            incremental = endpoint.get("incremental") if isinstance(endpoint, dict) else None
            sample = incremental.get("initial_value") if isinstance(incremental, dict) else None
            if isinstance(sample, str) and _looks_like_timestamp(sample):
                columns = entry.setdefault("columns", {})
                if isinstance(columns, dict):
                    columns.setdefault(cursor, {"data_type": "timestamp"})


def _looks_like_timestamp(value: str) -> bool:
    import re

    return re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value) is not None


_CLIENT_SWAP = threading.Lock()


@contextlib.contextmanager
def _rest_client_class(cls: type) -> Iterator[None]:
    """dlt builds one ``RESTClient`` per resource inside ``rest_api_source``, from a module
    global: swap in restsync's client class for that call only."""
    import dlt.sources.rest_api as rest_api_module

    with _CLIENT_SWAP:
        original = rest_api_module.RESTClient
        rest_api_module.RESTClient = cls  # type: ignore[misc,assignment]
        try:
            yield
        finally:
            rest_api_module.RESTClient = original  # type: ignore[misc]


def check_transport(connector: Connector, config: Mapping[str, Any]) -> None:
    """Refuse to send credentials over plain http to anything but this machine.

    Raises:
        InsecureTransportError: unless the connector has no secret or allows it explicitly.
    """
    if not connector.secret_env or connector.spec.allow_insecure_http:
        return
    # Every URL of the config: the base URL, absolute endpoint paths (resource_defaults too),
    # an OAuth access_token_url that receives the client secret...
    for url in _urls_in(config):
        parts = urlsplit(url)
        if parts.scheme.lower() == "http" and not _is_loopback(parts.hostname or ""):
            raise InsecureTransportError(connector.name, redact_url(url))


def _urls_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        if "://" in node:
            yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _urls_in(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _urls_in(value)


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _resource_entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The resource dicts of ``config`` (string shorthands expanded in place)."""
    resources = config.get("resources") or []
    for index, entry in enumerate(resources):
        if isinstance(entry, str):
            resources[index] = {"name": entry}
    return [e for e in resources if isinstance(e, dict)]


def apply_column_hints(config: dict[str, Any], discovered: Mapping[str, Mapping[str, Any]]) -> None:
    """Add discovered column hints to their resources; hints written in the file win."""
    for entry in _resource_entries(config):
        found = discovered.get(entry["name"])
        if not found:
            continue
        written = entry.get("columns") or {}
        if isinstance(written, list):
            written = {c["name"]: c for c in written if isinstance(c, dict) and "name" in c}
        merged = {name: {**hint, **written.get(name, {})} for name, hint in found.items()}
        merged.update({k: v for k, v in written.items() if k not in merged})
        entry["columns"] = merged


def bound_incremental(config: dict[str, Any], window: tuple[datetime, datetime]) -> None:
    """Pin every incremental resource to ``[start, end)``.

    With an ``end_value`` dlt neither reads nor updates the stored cursor, so partition runs are
    independent and can be re-run. Values take the type of the file's ``initial_value`` (epoch
    seconds for numbers, ISO-8601 otherwise).
    """
    for entry in _resource_entries(config):
        endpoint = entry.get("endpoint")
        incremental = endpoint.get("incremental") if isinstance(endpoint, dict) else None
        if not isinstance(incremental, dict):
            continue
        sample = incremental.get("initial_value")
        incremental["initial_value"] = _cursor_value(window[0], sample)
        incremental["end_value"] = _cursor_value(window[1], sample)


def _cursor_value(moment: datetime, sample: Any) -> Any:
    if isinstance(sample, int | float) and not isinstance(sample, bool):
        return int(moment.timestamp())
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _install_contract_checks(
    config: dict[str, Any],
    max_pages: int | None = None,
    on_page: Callable[[str, int], None] | None = None,
) -> None:
    """Wrap each resource's paginator so a page without its data selector fails the run (and,
    for previews, so it stops after ``max_pages`` pages)."""
    from dlt.sources.rest_api.config_setup import create_paginator

    defaults = config.get("resource_defaults") or {}
    default_endpoint: dict[str, Any] = (
        defaults["endpoint"] if isinstance(defaults.get("endpoint"), dict) else {}
    )
    client_paginator = (config.get("client") or {}).get("paginator")
    for entry in _resource_entries(config):
        raw_endpoint = entry.get("endpoint") or {}
        endpoint: dict[str, Any] = (
            {"path": raw_endpoint} if isinstance(raw_endpoint, str) else dict(raw_endpoint)
        )
        merged = {**default_endpoint, **endpoint}
        selector = merged.get("data_selector")
        paginator_config = merged.get("paginator", client_paginator)
        if paginator_config is None:
            continue  # dlt auto-detects: nothing declared to check against
        inner = create_paginator(paginator_config)
        if inner is None:
            continue
        key = entry.get("primary_key", defaults.get("primary_key"))
        contract = PageContract(
            resource=str(entry["name"]),
            data_selector=str(selector) if selector else None,
            primary_key=tuple(key) if isinstance(key, list | tuple) else ((key,) if key else ()),
            max_pages=max_pages,
            on_page=on_page,
        )
        endpoint["paginator"] = ContractCheckingPaginator(inner, contract)
        entry["endpoint"] = endpoint
