"""Connector -> the real dlt ``rest_api_source`` of one run.

``{{ env.* }}`` rendered, processing-step callables imported, the transport rule checked, the
run's HTTP session installed, discovered column hints and a partition's window applied, every
resource's paginator wrapped in the page checks (which also carry its identity and drive the
prefetcher), a tenant's rows tagged in shared tables (extract/tenants.py), and flat top-level
resources given an Arrow step. Everything goes through dlt's
public config (paginator instances, ``client.session``) and ``DltResource.add_step``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from restsync_dagster.connector import Connector, ResolvedResource
from restsync_dagster.connector.callables import resolve_callables
from restsync_dagster.connector.extensions import without_extensions
from restsync_dagster.connector.resources import resolve_resources
from restsync_dagster.connector.templates import render_tree
from restsync_dagster.extract.arrow import ArrowPages
from restsync_dagster.extract.body_actions import install_body_actions
from restsync_dagster.extract.children import read_all_children
from restsync_dagster.extract.graphql import expand_graphql
from restsync_dagster.extract.oauth_refresh import install_auths
from restsync_dagster.extract.pages import install_page_checks, resource_entries
from restsync_dagster.extract.prefetch import Prefetcher
from restsync_dagster.extract.report_jobs import expand_report_job
from restsync_dagster.extract.tenants import tag_tenant_rows
from restsync_dagster.extract.transport import check_transport
from restsync_dagster.extract.windows import Window
from restsync_dagster.failures.errors import ConfigurationError
from restsync_dagster.settings import TrustPolicy

if TYPE_CHECKING:
    from dlt.extract.source import DltSource


def render_source_config(connector: Connector, env: Mapping[str, str]) -> dict[str, Any]:
    """The connector's ``source:`` block with variables rendered and callables imported.

    Raises:
        MissingEnvVarError: a required variable is missing from ``env``.
    """
    rendered = render_tree(copy.deepcopy(connector.config.source), env)
    # The definitions' load checked the same references against the same policy; checked again
    # here, before any import, since a run is where the code would execute.
    resolved, errors = resolve_callables(rendered, TrustPolicy.from_env(), connector.name)
    if errors:  # a changed module, or a policy changed since the load
        path, message = errors[0]
        raise ConfigurationError(f"{connector.file.name}: {path}: {message}")
    return resolved


def build_source(
    connector: Connector,
    env: Mapping[str, str],
    session: Any,
    *,
    window: tuple[datetime, datetime] | None = None,
    windows: Mapping[str, Window] | None = None,
    max_pages: int | None = None,
    on_page: Callable[[str, int], None] | None = None,
    prefetcher: Prefetcher | None = None,
    on_stop: Callable[[str, str, bool], None] | None = None,
    on_notice: Callable[[str, str], None] | None = None,
    on_fallback: Callable[[str, str], None] | None = None,
) -> DltSource:
    """The real dlt ``rest_api_source`` for one run.

    Args:
        connector: The validated connector.
        env: Values of the variables the connector references (secrets included).
        session: The HTTP session (see :func:`restsync_dagster.extract.http.session_for`).
        window: A partition's time window: every incremental resource loads exactly
            ``[start, end)`` of its cursor, without reading or moving the stored cursor.
        windows: This load's window of each windowed resource (see
            :mod:`restsync_dagster.extract.windows`), bounded likewise.
        max_pages: Stop each paginated request sequence after this many pages (for previews).
        on_page: Told ``(resource, rows)`` after each page (progress reporting).
        prefetcher: Fetches known offset pages ahead of dlt (``rate_limit.max_concurrency``).
        on_stop: Told ``(resource, why, suspicious)`` when a resource's pages end.
        on_notice: Told ``(resource, message)`` once when restsync corrects how a resource
            pages (an API that serves fewer records a page than asked).
        on_fallback: Told ``(resource, reason)`` when a resource's records go to dlt's
            normalizer instead of Arrow (see :mod:`restsync_dagster.extract.arrow`).
    """
    from dlt.sources.rest_api import rest_api_source

    config = render_source_config(connector, env)
    check_transport(connector, config)
    config.setdefault("client", {})["session"] = session
    install_auths(config, session)
    if connector.config.schema_discovery:
        from restsync_dagster.extract.discovery import discover_columns

        apply_column_hints(config, discover_columns(connector, config, session))
    if window is not None:
        bound_incremental(config, window)
    if windows:
        bound_windows(config, windows)
    read_all_children(config)
    for entry in resource_entries(config):
        if isinstance(entry.get("endpoint"), dict):
            expand_graphql(entry["name"], entry["endpoint"])
            expand_report_job(entry["name"], entry["endpoint"], session)
    resources = resolve_resources(config)
    arrow = arrow_steps(connector, resources, on_fallback)
    paginators = install_page_checks(
        config, resources, max_pages, on_page, prefetcher, on_stop, on_notice
    )
    for name, step in arrow.items():
        if _pages_end_when_the_paginator_says(by_name(resources, name)):
            step.paginator = paginators[name]
        else:
            step.batch_rows = 1  # each page a table: nothing may be left gathered
    for entry in resource_entries(config):
        install_body_actions(entry["name"], entry["endpoint"])
    source = rest_api_source(
        without_extensions(config),  # type: ignore[arg-type]
        name=connector.name,
        schema_contract=connector.config.schema_contract,  # type: ignore[arg-type]
    )
    # First in each pipe (connector/tenants.py binds the rest of a tenant's run).
    tag_tenant_rows(connector, source)
    for name, step in arrow.items():
        source.resources[name].add_step(step)
    return source


def by_name(resources: list[ResolvedResource], name: str) -> ResolvedResource:
    return next(r for r in resources if r.name == name)


def _pages_end_when_the_paginator_says(resource: ResolvedResource) -> bool:
    """Whether a resource's pages stop only when its paginator has no next page. dlt also stops
    a sequence when a response action says ``ignore``, and closes it once an incremental with a
    ``row_order`` passes its ``end_value``: pages gathered then would be lost."""
    incremental = resource.incremental or {}
    return not resource.endpoint.get("response_actions") and not incremental.get("row_order")


def arrow_steps(
    connector: Connector,
    resources: list[ResolvedResource],
    on_fallback: Callable[[str, str], None] | None = None,
) -> dict[str, ArrowPages]:
    """The resources whose pages may travel as Arrow tables, with their steps: top-level ones
    whose records no step, column hint or child resource has to see one by one (dlt resolves a
    child's path parameters from its parent's dict records)."""
    if not connector.config.arrow:
        return {}
    parents = {r.parent for r in resources if r.parent}
    return {
        resource.name: ArrowPages(resource.name, on_fallback=on_fallback)
        for resource in resources
        if resource.parent is None and resource.name not in parents and not resource.sees_records
    }


def apply_column_hints(config: dict[str, Any], discovered: Mapping[str, Mapping[str, Any]]) -> None:
    """Add discovered column hints to their resources; hints written in the file win."""
    for entry in resource_entries(config):
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
    for entry in resource_entries(config):
        endpoint = entry.get("endpoint")
        incremental = endpoint.get("incremental") if isinstance(endpoint, dict) else None
        if not isinstance(incremental, dict):
            continue
        sample = incremental.get("initial_value")
        incremental["initial_value"] = _cursor_value(window[0], sample)
        incremental["end_value"] = _cursor_value(window[1], sample)


def bound_windows(config: dict[str, Any], windows: Mapping[str, Window]) -> None:
    """Pin each windowed resource to its window; its ``lag`` was applied when the windows were
    planned, so dlt must not apply it again."""
    for entry in resource_entries(config):
        endpoint = entry.get("endpoint")
        found = windows.get(entry["name"])
        if found is None or not isinstance(endpoint, dict):
            continue
        incremental = dict(endpoint.get("incremental") or {})
        incremental.pop("lag", None)
        incremental["initial_value"], incremental["end_value"] = found.start, found.end
        endpoint["incremental"] = incremental


def _cursor_value(moment: datetime, sample: Any) -> Any:
    if isinstance(sample, int | float) and not isinstance(sample, bool):
        return int(moment.timestamp())
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
