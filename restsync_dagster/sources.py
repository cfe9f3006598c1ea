"""Connector -> dlt source.

Two builders, for the two moments a source is needed:

* :func:`spec_source` at definition load: a light ``DltSource`` with one empty resource per
  connector resource, enough for ``@dlt_assets`` to derive asset specs. It makes no request,
  reads no variable and costs ~1 ms (a real ``rest_api_source`` costs ~20 ms per connector).
* :func:`build_source` at run time: ``{{ env.* }}`` rendered, processing-step callables imported,
  the connector's retrying HTTP session installed, and every configured paginator wrapped in a
  :class:`ContractCheckingPaginator` that fails loudly when a page lacks the data selector.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests import Request, Response

from restsync_dagster.errors import ResponseContractError
from restsync_dagster.redaction import redact_url
from restsync_dagster.spec import Connector, resolve_callables
from restsync_dagster.templating import render_tree

if TYPE_CHECKING:
    from dlt.extract.source import DltSource


def spec_source(connector: Connector) -> DltSource:
    """A request-free stand-in source whose resources mirror the connector's, for asset specs."""
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
    return DltSource(Schema(connector.name), "restsync", resources)


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
) -> DltSource:
    """The real dlt ``rest_api_source`` for one run.

    Args:
        connector: The validated connector.
        env: Values of the variables the connector references (secrets included).
        session: The HTTP session (see :func:`restsync_dagster.http.build_session`).
        window: A partition's time window: every incremental resource loads exactly
            ``[start, end)`` of its cursor, without reading or moving the stored cursor.
        max_pages: Stop each paginated request sequence after this many pages (for previews).
    """
    from dlt.sources.rest_api import rest_api_source

    config = render_source_config(connector, env)
    config.setdefault("client", {})["session"] = session
    if connector.spec.schema_discovery:
        from restsync_dagster.discovery import discover_columns

        apply_column_hints(config, discover_columns(connector, config, session))
    if window is not None:
        bound_incremental(config, window)
    _install_contract_checks(config, max_pages)
    return rest_api_source(
        config,  # type: ignore[arg-type]
        name=connector.name,
        schema_contract=connector.spec.schema_contract,  # type: ignore[arg-type]
    )


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


def _install_contract_checks(config: dict[str, Any], max_pages: int | None = None) -> None:
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
        if inner is None or (not selector and max_pages is None):
            continue
        endpoint["paginator"] = ContractCheckingPaginator(
            inner, str(entry["name"]), str(selector) if selector else None, max_pages
        )
        entry["endpoint"] = endpoint


class ContractCheckingPaginator(BasePaginator):
    """Delegates to a dlt paginator; refuses pages that do not hold the declared data selector.

    dlt's REST client turns a missing selector into an empty page, which an offset paginator
    reads as "done": a silent partial load. This wrapper makes it an error naming the resource,
    the page's offset and the redacted URL. It parses the body again only for pages of zero or one
    item (the only ones where the selector can be missing or not a list), so full pages cost nothing.
    """

    def __init__(
        self,
        inner: BasePaginator,
        resource: str,
        data_selector: str | None,
        max_pages: int | None = None,
    ) -> None:
        super().__init__()
        self.inner = inner
        self.resource = resource
        self.data_selector = data_selector
        self.max_pages = max_pages
        self.pages = 0

    def init_request(self, request: Request) -> None:
        self.inner.init_request(request)
        self.pages = 0
        self._has_next_page = self.inner.has_next_page

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        offset = getattr(self.inner, "current_value", None)
        if self.data_selector and (data is None or len(data) <= 1):
            _check_page(response, self.data_selector, self.resource, offset)
        self.inner.update_state(response, data)
        self.pages += 1
        limited = self.max_pages is not None and self.pages >= self.max_pages
        self._has_next_page = self.inner.has_next_page and not limited

    def update_request(self, request: Request) -> None:
        self.inner.update_request(request)

    def __str__(self) -> str:
        return f"{self.inner} (checked for {self.data_selector!r})"


def _check_page(response: Response, selector: str, resource: str, offset: int | None) -> None:
    from dlt.common import jsonpath

    url = redact_url(response.url or "")
    try:
        body = response.json()
    except ValueError:
        raise ResponseContractError(
            resource, url, "the response body is not JSON", offset
        ) from None
    found = jsonpath.find_values(selector, body)
    if not found:
        keys = sorted(body)[:8] if isinstance(body, dict) else type(body).__name__
        raise ResponseContractError(
            resource,
            url,
            f"the response has no {selector!r} (data_selector); it holds {keys}",
            offset,
        )
    if len(found) == 1 and not isinstance(found[0], list):
        raise ResponseContractError(
            resource,
            url,
            f"{selector!r} (data_selector) is a {type(found[0]).__name__}, not a list of records",
            offset,
        )
