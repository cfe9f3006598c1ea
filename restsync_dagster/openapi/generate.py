"""From an OpenAPI document to a connector file: the steps in order, and what comes out.

document -> list endpoints -> parents -> names -> per resource (paginator, key, columns,
incremental candidate) -> auth -> YAML text -> validation. Nothing is written here; see
:mod:`restsync_dagster.openapi.command` for the file and the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from restsync_dagster.openapi.auth import choose_auth
from restsync_dagster.openapi.document import Document
from restsync_dagster.openapi.endpoints import LIST_KEYS, assign_names, find_list_endpoints
from restsync_dagster.openapi.endpoints import ListEndpoint as Endpoint
from restsync_dagster.openapi.errors import OpenApiError
from restsync_dagster.openapi.incremental import find_incremental
from restsync_dagster.openapi.loading import load_document
from restsync_dagster.openapi.pagination import choose_paginator
from restsync_dagster.openapi.parents import ParentLink, link_parents
from restsync_dagster.openapi.render import ConnectorPlan, ResourcePlan, env_ref, render
from restsync_dagster.openapi.schema import column_hints, primary_key
from restsync_dagster.openapi.tenants import tenant_server
from restsync_dagster.openapi.validate import EnvVar, validate_connector_text

_LISTED_SKIPS = 20


@dataclass
class Generated:
    """A generated connector file and what the person running the generator should know."""

    text: str
    #: ``(path, reason)`` of every GET endpoint left out.
    skipped: list[tuple[str, str]]
    #: Names of the variables the file reads, in file order.
    env_vars: list[str]
    #: Things to check that concern the whole file (auth, base URL).
    notes: list[str] = field(default_factory=list)
    #: The same variables with their defaults and whether they hold secrets.
    variables: list[EnvVar] = field(default_factory=list)
    #: The resources' names, in file order.
    resources: list[str] = field(default_factory=list)


def generate(
    document_source: str,
    name: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    base_url: str | None = None,
) -> Generated:
    """Generate a connector file from an OpenAPI 3 or Swagger 2 document.

    Args:
        document_source: A file path or an ``http(s)`` URL.
        name: The connector's name (lower-case letters, digits and ``_``).
        include: Keep only endpoints matching one of these (``/path/glob*`` or a tag).
        exclude: Leave out endpoints matching one of these.
        base_url: The default base URL, instead of the document's first server.

    Returns:
        The file's text, which has passed restsync's connector validation.

    Raises:
        OpenApiError: one line naming the document (or the file) and what is wrong.
    """
    document = load_document(document_source)
    endpoints, skipped = find_list_endpoints(document, include, exclude)
    kept, links, parent_skips = link_parents(endpoints)
    skipped.extend(parent_skips)
    if not kept:
        raise OpenApiError(_nothing_to_sync(document, skipped, include))
    assign_names(kept)
    prefix = re.sub(r"[^A-Za-z0-9]", "_", name).upper()
    server = tenant_server(document) if base_url is None else None
    auth = choose_auth(document, kept, prefix, tenants=server is not None)
    client: dict[str, Any] = {}
    client_comments: dict[str, list[str]] = {}
    notes: list[str] = []
    if server is not None:
        client["base_url"] = server.base_url
        client_comments["base_url"] = list(server.comments)
        notes.extend(c.removeprefix("guessed: ") for c in server.comments[1:])
    else:
        client["base_url"], base_note = _base_url(document, base_url, prefix)
        if base_note:
            client_comments["base_url"] = [f"guessed: {base_note}"]
            notes.append(base_note)
    auth_comments = auth.facts + [f"guessed: {g}" for g in auth.guesses]
    if auth.config is not None:
        client["auth"] = auth.config
        client_comments["auth"] = auth_comments
    else:
        client_comments.setdefault("base_url", []).extend(auth_comments)
    notes.extend(f"auth: {g}" for g in auth.guesses)
    resources = [_resource(document, e, links.get(id(e))) for e in kept]
    plan = ConnectorPlan(
        name=name,
        description=_description(document),
        header=_header(document, name, skipped),
        client=client,
        client_comments=client_comments,
        write_disposition="merge",
        resources=resources,
        tenants=server.tenants if server is not None else None,
    )
    text = render(plan)
    variables = validate_connector_text(text, f"{name}.yaml")
    names = [r.name for r in resources]
    return Generated(text, skipped, [v.name for v in variables], notes, variables, names)


def _base_url(document: Document, override: str | None, prefix: str) -> tuple[str, str | None]:
    url = (override or document.server_url()).rstrip("/")
    variable = f"{prefix}_BASE_URL"
    if not url.startswith(("http://", "https://")):
        # A relative server URL is relative to where the document was served from, which a
        # sync does not know: the variable becomes required.
        what = f"the document's server URL {url!r} is relative" if url else "no server URL"
        return env_ref(variable), f"{what}: set {variable}"
    return env_ref(variable, url), None


def _resource(document: Document, endpoint: Endpoint, link: ParentLink | None) -> ResourcePlan:
    paging = choose_paginator(document, endpoint)
    comments: dict[str, list[str]] = {}
    summary = str(endpoint.operation.get("summary") or "").strip().splitlines()
    comments["resource"] = [f"GET {endpoint.path}" + (f": {summary[0]}" if summary else "")]
    comments["resource"] += [f"guessed: {g}" for g in endpoint.guesses]
    path = endpoint.path
    if link is not None:
        path = path.replace(
            "{" + link.parameter + "}", f"{{resources.{link.parent.name}.{link.field}}}"
        )
        comments["path"] = [
            f"guessed: {{{link.parameter}}} is the {link.field!r} of each {link.parent.name} record"
        ]
    spec: dict[str, Any] = {"path": path, "data_selector": endpoint.data_selector or "$"}
    last_key = (endpoint.data_selector or "").rsplit(".", 1)[-1].lower()
    if endpoint.data_selector and last_key not in LIST_KEYS:
        comments["data_selector"] = [
            f"guessed: the records are the list at {endpoint.data_selector!r}"
        ]
    spec["paginator"] = paging.paginator
    comments["paginator"] = [f"guessed: {'; '.join(paging.guesses)}"] if paging.guesses else []
    params, param_guesses = _required_params(endpoint)
    params.update(paging.params)
    if params:
        spec["params"] = params
        comments["params"] = param_guesses
    key = primary_key(endpoint.records, endpoint.name)
    if key is not None:
        comments["primary_key"] = [f"guessed: {key!r} looks like each record's key"]
    else:
        comments["write_disposition"] = [
            "guessed: no field looks like a key, so each sync replaces the table"
        ]
    candidate = find_incremental(document, endpoint)
    if candidate is not None:
        comments["incremental"] = [
            f"guessed: {candidate.start_param} filters on {candidate.cursor_path}; uncomment to "
            "sync only what changed (and set initial_value)"
        ]
    return ResourcePlan(
        name=endpoint.name,
        endpoint=spec,
        primary_key=key,
        write_disposition="merge" if key is not None else "replace",
        columns=column_hints(document, endpoint.records, f"{endpoint.where}.(records)"),
        incremental=candidate.block() if candidate is not None else None,
        comments=comments,
    )


def _required_params(endpoint: Endpoint) -> tuple[dict[str, Any], list[str]]:
    """Values for required query parameters: their default, else their first allowed value."""
    params: dict[str, Any] = {}
    guesses = []
    for parameter in endpoint.query:
        if not parameter.required:
            continue
        if "default" in parameter.schema:
            params[parameter.name] = parameter.schema["default"]
        elif parameter.schema.get("enum"):
            params[parameter.name] = parameter.schema["enum"][0]
            guesses.append(f"guessed: {parameter.name} is required: its first allowed value")
    return params, guesses


def _description(document: Document) -> str:
    text = document.description or document.title
    return text if len(text) <= 200 else text[:197].rstrip() + "..."


def _header(document: Document, name: str, skipped: list[tuple[str, str]]) -> list[str]:
    title = f'"{document.title}"' if document.title else "a document with no title"
    lines = [
        f"Generated by `restsync init {name} --from-openapi {document.label}`",
        f"from {title} ({document.kind}).",
        "Check every 'guessed:' comment, then try it: restsync preview <this file's path>",
    ]
    if skipped:
        lines.append("Left out:")
        lines.extend(f"  GET {path}: {reason}" for path, reason in skipped[:_LISTED_SKIPS])
        if len(skipped) > _LISTED_SKIPS:
            lines.append(f"  ... and {len(skipped) - _LISTED_SKIPS} more")
    return lines


def _nothing_to_sync(
    document: Document, skipped: list[tuple[str, str]], include: Sequence[str]
) -> str:
    if not skipped:
        return f"{document.label}: the document has no GET endpoint, so nothing to sync"
    if include and all(reason == "not selected by --include" for _, reason in skipped):
        return f"{document.label}: no GET endpoint matches --include {' '.join(include)}"
    shown = "; ".join(f"GET {p}: {r}" for p, r in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return (
        f"{document.label}: no GET endpoint returns a list of records "
        f"({len(skipped)} looked at: {shown}{more})"
    )
