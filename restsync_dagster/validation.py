"""Rules on a connector file beyond its types, and messages written for people.

Credentials must come from ``{{ env.NAME }}``; templates must parse; resources need unique names;
paginator limits must be positive; ``source:`` must pass dlt's own ``RESTAPIConfig`` validation;
the project's keys must agree with the resources. Every rule reports :class:`SpecProblem` lines
``<file>: <key path>: <what is wrong>``. Pure: no Dagster, no network.
"""

from __future__ import annotations

import difflib
import importlib
import re
import typing
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from restsync_dagster.redaction import is_credential_name
from restsync_dagster.spec_models import (
    RESOURCE_NAME_PATTERN,
    ConnectorSpec,
    EnvVarUse,
    SpecProblem,
    resource_infos,
)
from restsync_dagster.templating import EnvRef, TemplateError, find_refs, has_refs, walk

# Dicts whose keys are credentials when named like one. Elsewhere a key such as ``token`` may
# be a paginator setting (``cursor_param``), so the check is scoped to these containers.
_CREDENTIAL_CONTAINERS = frozenset({"auth", "headers", "params", "json", "data"})
# ``name`` in an api_key auth is the parameter's name, not its value.
_NOT_SECRET_IN_AUTH = frozenset({"type", "name", "location", "username", "client_id"})
_CALLABLE_KEYS = frozenset({"map", "filter", "yield_map", "convert"})
_CALLABLE_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def cross_problems(label: str, spec: ConnectorSpec) -> list[SpecProblem]:
    """Rules that tie the project's keys to the resources of ``source:``."""
    problems = []
    infos = resource_infos(spec.source)
    names = [info.name for info in infos]
    for resource in spec.schema_discovery:
        if resource not in names:
            problems.append(
                SpecProblem(
                    label,
                    f"schema_discovery.{resource}",
                    f"no resource named {resource!r}; resources: {', '.join(names)}",
                )
            )
    if spec.partitions is not None and not any(
        info.incremental and info.incremental.get("start_param") for info in infos
    ):
        problems.append(
            SpecProblem(
                label,
                f"partitions.{spec.partitions.granularity}",
                "partitions map onto an incremental window: give at least one resource an "
                "'endpoint.incremental' with 'start_param' (and 'end_param')",
            )
        )
    if isinstance(spec.schema_contract, dict):
        unknown = set(spec.schema_contract) - {"tables", "columns", "data_type"}
        if unknown:
            problems.append(
                SpecProblem(
                    label,
                    "schema_contract",
                    f"unknown entities {sorted(unknown)}; use tables, columns, data_type",
                )
            )
    return problems


# --------------------------------------------------------------------------------------------
# Rules on ``source:``


def source_problems(
    label: str, source: dict[str, Any]
) -> tuple[list[SpecProblem], list[EnvVarUse]]:
    problems: list[SpecProblem] = []

    def problem(key_path: str, message: str) -> None:
        problems.append(SpecProblem(label, key_path, message))

    refs: dict[str, list[tuple[str, EnvRef, bool]]] = {}
    for key_path, leaf_secret, value in _leaves_with_secrecy(source, "source"):
        if isinstance(value, str) and ("{{" in value or "}}" in value):
            try:
                found = find_refs(value)
            except TemplateError as exc:
                problem(key_path, str(exc))
                continue
        else:
            found = []
        url_secret_refs = _url_userinfo_refs(value) if isinstance(value, str) else None
        if url_secret_refs is False:
            problem(key_path, "a URL embeds a literal password; use {{ env.NAME }} instead")
        for ref in found:
            is_secret = leaf_secret or (
                isinstance(url_secret_refs, set) and ref.name in url_secret_refs
            )
            refs.setdefault(ref.name, []).append((key_path, ref, is_secret))
        if leaf_secret:
            if not isinstance(value, str) or not found:
                problem(
                    key_path,
                    "a credential must come from the environment: write {{ env.NAME }} "
                    "instead of a literal value",
                )
            elif any(ref.default is not None for ref in found):
                problem(key_path, "a credential cannot have a default value; drop '| default(...)'")

    problems.extend(_resource_problems(label, source))
    env_vars = []
    for name, uses in refs.items():
        defaults = {ref.default for _, ref, _ in uses}
        if len(defaults) > 1:
            problem(uses[0][0], f"{name} is given different defaults in different places")
        env_vars.append(
            EnvVarUse(
                name=name,
                default=uses[0][1].default if len(defaults) == 1 else None,
                secret=any(secret for _, _, secret in uses),
                key_paths=tuple(path for path, _, _ in uses),
            )
        )
    if not problems:
        problems.extend(_dlt_problems(label, source))
    return problems, env_vars


def _leaves_with_secrecy(value: Any, path: str) -> Iterator[tuple[str, bool, Any]]:
    """Yield ``(key_path, is_credential, leaf)``; a credential is judged by its key and container."""

    def visit(
        node: Any, node_path: str, container: str | None, secret: bool
    ) -> Iterator[tuple[str, bool, Any]]:
        if isinstance(node, dict):
            for key, child in node.items():
                key_str = str(key)
                # A dict under a credential-named key (``{type: resolve, ...}``) is configuration,
                # so secrecy is judged by the nearest key only; list items inherit it.
                child_secret = _is_secret_key(key_str, container)
                child_container = key_str if key_str in _CREDENTIAL_CONTAINERS else container
                yield from visit(child, f"{node_path}.{key_str}", child_container, child_secret)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from visit(child, f"{node_path}[{index}]", container, secret)
        else:
            yield node_path, secret, node

    yield from visit(value, path, None, False)


def _is_secret_key(key: str, container: str | None) -> bool:
    if container is None:
        return False
    name = key.lower().replace("-", "_")
    if container == "auth" and name in _NOT_SECRET_IN_AUTH:
        return False
    if name.endswith("_url"):
        return False
    return is_credential_name(name)


def _url_userinfo_refs(value: str) -> set[str] | bool | None:
    """For ``scheme://user:password@host`` strings: the env names in the password, or False if
    the password is literal. None when the string embeds no password."""
    # Templates may hold spaces ("{{ env.PASSWORD }}"): only "/" and "@" end the userinfo.
    match = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/@:]*):([^/@]*)@", value)
    if match is None:
        return None
    password = match.group(2)
    if not has_refs(password):
        return False
    try:
        return {ref.name for ref in find_refs(password)}
    except TemplateError:
        return None


def _resource_problems(label: str, source: dict[str, Any]) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    resources = source.get("resources")
    if not isinstance(resources, list) or not resources:
        return [SpecProblem(label, "source.resources", "must be a non-empty list of resources")]
    seen: dict[str, int] = {}
    for index, entry in enumerate(resources):
        key_path = f"source.resources[{index}]"
        if isinstance(entry, str):
            name = entry
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            name = entry["name"]
        else:
            problems.append(SpecProblem(label, key_path, "a resource needs a 'name' (a string)"))
            continue
        if not RESOURCE_NAME_PATTERN.match(name):
            problems.append(
                SpecProblem(
                    label,
                    f"{key_path}.name",
                    f"{name!r} is not a valid resource name: use letters, digits and '_'",
                )
            )
        if name in seen:
            problems.append(
                SpecProblem(
                    label,
                    f"{key_path}.name",
                    f"resource name {name!r} is already used by source.resources[{seen[name]}]",
                )
            )
        else:
            seen[name] = index
    for key_path, _key, value in walk(source, "source"):
        if re.search(r"\.paginator\.(limit|page_size)$", key_path) and not (
            isinstance(value, int) and not isinstance(value, bool) and value > 0
        ):
            problems.append(SpecProblem(label, key_path, "must be a positive integer"))
        if re.search(
            r"\.paginator\.(maximum_offset|offset|maximum_page|base_page)$", key_path
        ) and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            problems.append(SpecProblem(label, key_path, "must be an integer >= 0"))
    return problems


def resolve_callable(reference: str) -> Any:
    """Import ``package.module:attribute``, used for processing steps written in YAML."""
    module_name, _, attribute = reference.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


def resolve_callables(source: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A copy of ``source`` with ``map``/``filter``/``yield_map``/``convert`` references imported.

    Returns:
        The copy, and ``(key_path, message)`` for each reference that cannot be imported.
    """
    errors: list[tuple[str, str]] = []

    def visit(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, child in node.items():
                child_path = f"{path}.{key}"
                if key in _CALLABLE_KEYS and isinstance(child, str):
                    if not _CALLABLE_REF.match(child):
                        errors.append((child_path, "write a callable as 'package.module:function'"))
                        out[key] = child
                        continue
                    try:
                        out[key] = resolve_callable(child)
                    except Exception as exc:
                        errors.append((child_path, f"cannot import {child!r}: {exc}"))
                        out[key] = child
                else:
                    out[key] = visit(child, child_path)
            return out
        if isinstance(node, list):
            return [visit(child, f"{path}[{i}]") for i, child in enumerate(node)]
        return node

    return visit(source, "source"), errors


def _dlt_problems(label: str, source: dict[str, Any]) -> list[SpecProblem]:
    """Run dlt's own validation of a ``RESTAPIConfig`` and word its first complaint for people."""
    from dlt.common.exceptions import DictValidationException
    from dlt.common.validation import validate_dict
    from dlt.sources.rest_api.typing import RESTAPIConfig

    resolved, errors = resolve_callables(source)
    if errors:
        return [SpecProblem(label, path, message) for path, message in errors]
    # Only reached once every credential is an {{ env.NAME }} reference: no value to mask.
    try:
        validate_dict(RESTAPIConfig, resolved, path=".")
    except DictValidationException as exc:
        path, message = _dlt_message(exc)
        return [SpecProblem(label, path, message)]
    return []


def _dlt_message(exc: Any) -> tuple[str, str]:
    """The deepest (most specific) of dlt's nested validation errors, as (key path, message)."""
    deepest = exc
    while getattr(deepest, "nested_exceptions", None):
        deepest = max(deepest.nested_exceptions, key=lambda e: e.path.count("/"))
    path = "source" + deepest.path.lstrip(".").replace("/", ".")
    field_name = getattr(deepest, "field", None)
    if field_name and "unexpected" not in deepest.msg and "missing" not in deepest.msg:
        path = f"{path}.{field_name}"
    unexpected = re.search(r"received unexpected fields `\{(.*)\}`", deepest.msg)
    if unexpected:
        keys = re.findall(r"'([^']*)'", unexpected.group(1))
        allowed = _typeddict_keys(getattr(deepest, "expected_type", None))
        guess = difflib.get_close_matches(keys[0], allowed, n=1) if keys and allowed else []
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        listing = f"; allowed: {', '.join(sorted(allowed))}" if allowed else ""
        return f"{path}.{keys[0] if keys else '?'}", f"unknown key{hint}{listing}"
    message = re.sub(r"\s+", " ", deepest.msg.replace("`", "'")).strip()
    return path, f"{message} (dlt rest_api validation)"


def _typeddict_keys(spec: Any) -> list[str]:
    from typing import get_type_hints

    try:
        return list(get_type_hints(spec)) if spec is not None else []
    except Exception:
        return []


def pydantic_problems(label: str, exc: ValidationError) -> list[SpecProblem]:
    problems = []
    for error in exc.errors():
        loc = error["loc"]
        key_path = _loc_to_path(loc)
        if error["type"] == "extra_forbidden":
            choices = _keys_at(loc[:-1])
            guess = difflib.get_close_matches(str(loc[-1]), choices, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            message = f"unknown key{hint}; allowed: {', '.join(sorted(choices))}"
        elif error["type"] == "missing":
            message = "is required"
        else:
            message = error["msg"].removeprefix("Value error, ")
        problems.append(SpecProblem(label, key_path, message))
    return problems


def _keys_at(loc: Sequence[int | str]) -> list[str]:
    """The keys allowed in the block at ``loc`` (``rate_limit``, ``partitions.daily``...), read
    from the model itself, so every block's typo gets its own block's choices."""
    annotation: Any = ConnectorSpec
    for part in loc:
        model = _model_in(annotation)
        if model is not None and part in model.model_fields:
            annotation = model.model_fields[str(part)].annotation
        else:  # a mapping's key or a list's index
            annotation = _item_type(annotation)
    model = _model_in(annotation)
    return sorted(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):  # X | None, and other unions
        model = _model_in(arg)
        if model is not None:
            return model
    return None


def _item_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis and a is not type(None)]
    if origin in (dict, list, tuple, set, frozenset) and args:
        return args[-1]
    for arg in args:  # a union: the member that holds items
        item = _item_type(arg)
        if item is not None:
            return item
    return None


def _loc_to_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def dedupe(problems: list[SpecProblem]) -> list[SpecProblem]:
    return list(dict.fromkeys(problems))
