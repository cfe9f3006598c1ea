"""Rules on ``source:`` that dlt only enforces when it builds the source, worded with key paths.

dlt's ``validate_dict`` checks the shape of a ``RESTAPIConfig``; building the resources checks
more (a credential of the auth, a ``resolve`` naming a resource that exists, placeholders bound,
no cycle) and reports it as a bare ``ValueError`` or a missing dlt config field. These rules say
the same things up front, naming the key path, and suggesting the nearest valid value. The
paginator and auth a file names are checked against their own class (dlt's registries, so a
registered paginator or auth is checked too), not against the union dlt validates, whose
complaint names whichever member it tried last. Parent/child rules are in
:mod:`restsync_dagster.connector.parents`.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from restsync_dagster.connector.endpoint_rules import endpoint_problems
from restsync_dagster.connector.extensions import AUTH_TYPES, PAGINATOR_KEYS
from restsync_dagster.connector.messages import did_you_mean
from restsync_dagster.connector.problems import Problem

#: The credential fields each auth type needs; restsync wants them from ``{{ env.NAME }}``.
AUTH_CREDENTIALS: Mapping[str, tuple[str, ...]] = {
    "bearer": ("token",),
    "api_key": ("api_key",),
    "http_basic": ("username", "password"),
    "oauth2_client_credentials": ("access_token_url", "client_id", "client_secret"),
    "oauth2_refresh_token": ("access_token_url", "client_id", "client_secret", "refresh_token"),
}


def places(source: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(key path, dict)`` of every block that may hold ``auth`` and ``paginator``."""
    if isinstance(source.get("client"), Mapping):
        yield "source.client", source["client"]
    defaults = source.get("resource_defaults")
    if isinstance(defaults, Mapping) and isinstance(defaults.get("endpoint"), Mapping):
        yield "source.resource_defaults.endpoint", defaults["endpoint"]
    for index, entry in enumerate(source.get("resources") or []):
        if isinstance(entry, Mapping) and isinstance(entry.get("endpoint"), Mapping):
            yield f"source.resources[{index}].endpoint", entry["endpoint"]


def auth_and_paginator_problems(label: str, source: Mapping[str, Any]) -> list[Problem]:
    """Each auth and paginator of a ``source:`` block against its own type (any shape)."""
    problems: list[Problem] = []
    for where, block in places(source):
        if "auth" in block:
            problems.extend(_auth_problems(label, f"{where}.auth", block["auth"]))
        if "paginator" in block:
            problems.extend(_paginator_problems(label, f"{where}.paginator", block["paginator"]))
        problems.extend(endpoint_problems(label, where, block))
    return problems


def _auth_problems(label: str, where: str, auth: Any) -> list[Problem]:
    from dlt.sources.rest_api.config_setup import AUTH_MAP

    if auth is None:
        return []
    if not isinstance(auth, str | Mapping):
        return [Problem(label, where, "write auth as a mapping such as {type: bearer, token: ...}")]
    kind = auth if isinstance(auth, str) else auth.get("type", "bearer")
    if not isinstance(kind, str):
        return [Problem(label, f"{where}.type", f"must be one of {', '.join(AUTH_MAP)}")]
    known = [*AUTH_MAP, *AUTH_TYPES]
    if kind not in known:
        path = where if isinstance(auth, str) else f"{where}.type"
        return [Problem(label, path, f"unknown auth type {kind!r}{did_you_mean(kind, known)}")]
    needed = AUTH_CREDENTIALS.get(kind, ())
    if isinstance(auth, str):
        fields = ", ".join(f"{name}: '{{{{ env.NAME }}}}'" for name in needed)
        return [
            Problem(
                label,
                where,
                f"auth {kind!r} needs its credentials in the file: write {{type: {kind}, {fields}}}"
                if needed
                else f"write auth as {{type: {kind}, ...}}",
            )
        ]
    problems = [
        Problem(
            label,
            f"{where}.{name}",
            f"is required by auth type {kind!r}: write '{{{{ env.NAME }}}}'",
        )
        for name in needed
        if name not in auth
    ]
    allowed = set(AUTH_TYPES[kind]) if kind in AUTH_TYPES else _auth_keys(AUTH_MAP[kind])
    for key in auth:
        if allowed and key not in allowed:
            problems.append(
                Problem(
                    label,
                    f"{where}.{key}",
                    f"unknown key for auth type {kind!r}{did_you_mean(str(key), allowed)}; "
                    f"allowed: {', '.join(sorted(allowed))}",
                )
            )
    return problems


def _auth_keys(auth_class: type) -> set[str]:
    """The keys a dict of this auth class may hold: dlt's ``<Class>Config`` TypedDict's."""
    from dlt.sources.rest_api import typing as rest_typing

    wanted = f"{auth_class.__name__}config".lower()
    for name in dir(rest_typing):
        if name.lower() == wanted:
            return set(typing.get_type_hints(getattr(rest_typing, name))) | {"type"}
    return set()


def _paginator_problems(label: str, where: str, paginator: Any) -> list[Problem]:
    from dlt.sources.rest_api.config_setup import PAGINATOR_MAP

    if paginator is None or not isinstance(paginator, str | Mapping):
        return []
    kind = paginator if isinstance(paginator, str) else paginator.get("type", "auto")
    if not isinstance(kind, str):
        return [Problem(label, f"{where}.type", f"must be one of {', '.join(PAGINATOR_MAP)}")]
    if kind not in PAGINATOR_MAP:
        path = where if isinstance(paginator, str) else f"{where}.type"
        message = f"unknown paginator type {kind!r}{did_you_mean(kind, PAGINATOR_MAP)}"
        return [Problem(label, path, f"{message}; one of: {', '.join(PAGINATOR_MAP)}")]
    paginator_class = PAGINATOR_MAP[kind]
    if paginator_class is None or isinstance(paginator, str):
        return []
    return _argument_problems(label, where, kind, paginator_class, paginator)


def _argument_problems(
    label: str, where: str, kind: str, paginator_class: Any, arguments: Mapping[str, Any]
) -> list[Problem]:
    """Each argument against the paginator class's own signature and type hints."""
    parameters = {
        name: p
        for name, p in inspect.signature(paginator_class.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    try:
        hints = typing.get_type_hints(paginator_class.__init__)
    except Exception:  # a registered class with hints that do not evaluate: names only
        hints = {}
    allowed = set(parameters) | set(PAGINATOR_KEYS.get(kind, ())) | {"type"}
    problems = []
    for key, value in arguments.items():
        path = f"{where}.{key}"
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            listing = ", ".join(sorted(allowed - {"type"})) or "none"
            problems.append(
                Problem(
                    label, path, f"unknown argument of paginator {kind!r}{hint}; allowed: {listing}"
                )
            )
        elif key in hints and not _fits(value, hints[key]):
            problems.append(
                Problem(label, path, f"must be {_type_words(hints[key])}, not {value!r}")
            )
    if arguments.get("total_header") is not None and arguments.get("total_path") is not None:
        problems.append(
            Problem(label, f"{where}.total_path", "give total_header or total_path, not both")
        )
    problems.extend(_record_total_problems(label, where, arguments))
    for name, parameter in parameters.items():
        if parameter.default is parameter.empty and name not in arguments:
            problems.append(Problem(label, f"{where}.{name}", f"is required by paginator {kind!r}"))
    return problems


def _record_total_problems(label: str, where: str, arguments: Mapping[str, Any]) -> list[Problem]:
    """``page_number``'s ``total_records_path`` (restsync's) needs ``page_size`` and replaces
    dlt's ``total_path``, which counts pages."""
    if "total_records_path" not in arguments and "page_size" not in arguments:
        return []
    size = arguments.get("page_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        return [Problem(label, f"{where}.page_size", "must be the records a page holds (>= 1)")]
    if not isinstance(arguments.get("total_records_path"), str):
        return [Problem(label, f"{where}.total_records_path", "is required with page_size")]
    if arguments.get("total_path") is not None:
        return [
            Problem(
                label,
                f"{where}.total_path",
                "give total_records_path (records) or total_path (pages), not both",
            )
        ]
    return []


def _fits(value: Any, annotation: Any) -> bool:
    """Whether a YAML value fits a type hint; hints it cannot judge are given the benefit."""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        return any(_fits(value, arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin in (list, dict, tuple):
        return isinstance(value, origin)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _type_words(annotation: Any) -> str:
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    named = sorted({words[a] for a in args if a in words}) or [str(annotation)]
    optional = " (or null)" if type(None) in typing.get_args(annotation) else ""
    return " or ".join(named) + optional
