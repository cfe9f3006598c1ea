"""Rules on a connector file beyond its types, and messages written for people.

Credentials must come from ``{{ env.NAME }}``; templates must parse; resources need unique names;
paginator limits must be positive; ``source:`` must pass dlt's own ``RESTAPIConfig`` validation;
the project's keys must agree with the resources. Every rule reports :class:`Problem` lines
``<file>: <key path>: <what is wrong>``. Pure: no Dagster, no network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from restsync_dagster.connector.callables import callable_problems, resolve_callables
from restsync_dagster.connector.connector import EnvVarUse
from restsync_dagster.connector.dry_build import dry_build_problems
from restsync_dagster.connector.extensions import is_verbatim, without_extensions
from restsync_dagster.connector.messages import did_you_mean, dlt_message
from restsync_dagster.connector.model import RESOURCE_NAME_PATTERN, ConnectorConfig
from restsync_dagster.connector.parents import parent_problems
from restsync_dagster.connector.problems import Problem
from restsync_dagster.connector.resources import resolve_resources
from restsync_dagster.connector.source_rules import auth_and_paginator_problems
from restsync_dagster.connector.templates import EnvRef, TemplateError, find_refs, has_refs
from restsync_dagster.connector.tree import Keys, key_path, leaves, nearest_key
from restsync_dagster.failures.redaction import is_credential_name
from restsync_dagster.settings import TrustPolicy

# Dicts whose keys are credentials when named like one. Elsewhere a key such as ``token`` may
# be a paginator setting (``cursor_param``), so the check is scoped to these containers.
_CREDENTIAL_CONTAINERS = frozenset({"auth", "headers", "params", "json", "data"})
# ``name`` in an api_key auth is the parameter's name, not its value.
_NOT_SECRET_IN_AUTH = frozenset({"type", "name", "location", "username", "client_id"})


def cross_problems(label: str, spec: ConnectorConfig) -> list[Problem]:
    """Rules that tie the project's keys to the resources of ``source:``."""
    problems = []
    infos = resolve_resources(spec.source)
    names = [info.name for info in infos]
    for resource in spec.schema_discovery:
        if resource not in names:
            problems.append(
                Problem(
                    label,
                    f"schema_discovery.{resource}",
                    f"no resource named {resource!r}; resources: {', '.join(names)}",
                )
            )
    if spec.partitions is not None and not any(
        info.incremental and info.incremental.get("start_param") for info in infos
    ):
        problems.append(
            Problem(
                label,
                f"partitions.{spec.partitions.granularity}",
                "partitions map onto an incremental window: give at least one resource an "
                "'endpoint.incremental' with 'start_param' (and 'end_param')",
            )
        )
    if isinstance(spec.schema_contract, dict):
        entities = ("tables", "columns", "data_type")
        problems.extend(
            Problem(
                label,
                f"schema_contract.{entity}",
                f"unknown entity{did_you_mean(str(entity), entities)}; use {', '.join(entities)}",
            )
            for entity in sorted(set(spec.schema_contract) - set(entities), key=str)
        )
    return problems


# --------------------------------------------------------------------------------------------
# Rules on ``source:``


def source_problems(
    label: str,
    source: dict[str, Any],
    *,
    dry_build: bool = True,
    trust: TrustPolicy | None = None,
    connector: str | None = None,
) -> tuple[list[Problem], list[EnvVarUse]]:
    """Every problem of ``source:``, and the variables it reads (``trust``: which callables it
    may name; the variables are checked against it by the caller, who knows the name)."""
    problems: list[Problem] = []

    def problem(path: str, message: str) -> None:
        problems.append(Problem(label, path, message))

    refs: dict[tuple[bool, str], list[tuple[str, EnvRef, bool]]] = {}
    for keys, where, leaf_secret, value in _leaves_with_secrecy(source, "source"):
        if is_verbatim(keys):
            continue  # sent as written (connector/extensions.py)
        if isinstance(value, str) and ("{{" in value or "}}" in value):
            try:
                found = find_refs(value)
            except TemplateError as exc:
                problem(where, str(exc))
                continue
        else:
            found = []
        url_secret_refs = _url_userinfo_refs(value) if isinstance(value, str) else None
        if url_secret_refs is False:
            problem(where, "a URL embeds a literal password; use {{ env.NAME }} instead")
        for ref in found:
            if ref.is_tenant_key:
                continue  # the tenant's key itself, no variable
            is_secret = leaf_secret or (
                isinstance(url_secret_refs, set) and ref.name in url_secret_refs
            )
            refs.setdefault((ref.tenant, ref.name), []).append((where, ref, is_secret))
        if leaf_secret:
            if not isinstance(value, str) or not any(not ref.is_tenant_key for ref in found):
                problem(
                    where,
                    "a credential must come from the environment: write {{ env.NAME }} "
                    "(or a tenant's {{ tenant.NAME }}) instead of a literal value",
                )
            elif any(ref.default is not None for ref in found):
                problem(where, "a credential cannot have a default value; drop '| default(...)'")

    problems.extend(_base_url_problems(label, source))
    problems.extend(_resource_problems(label, source))
    problems.extend(callable_problems(label, source, trust, connector))
    env_vars = []
    for (tenant, name), uses in refs.items():
        defaults = {ref.default for _, ref, _ in uses}
        if len(defaults) > 1:
            shown = f"tenant.{name}" if tenant else name
            problem(uses[0][0], f"{shown} is given different defaults in different places")
        env_vars.append(
            EnvVarUse(
                name=name,
                default=uses[0][1].default if len(defaults) == 1 else None,
                secret=any(secret for _, _, secret in uses),
                key_paths=tuple(path for path, _, _ in uses),
                tenant=tenant,
            )
        )
    if not problems:
        problems.extend(_dlt_problems(label, source, dry_build, trust))
    return problems, env_vars


def _base_url_problems(label: str, source: dict[str, Any]) -> list[Problem]:
    """``client.base_url`` must start with a scheme or a ``{{ env.NAME }}`` (dlt's requests
    would refuse anything else at run time, after every resource had been set up)."""
    client = source.get("client")
    base_url = client.get("base_url") if isinstance(client, dict) else None
    if not isinstance(base_url, str) or not base_url:
        return []
    if re.match(r"^(https?://|\{\{\s*(env|tenant)\.)", base_url, re.IGNORECASE):
        return []
    hint = "; a variable is written {{ env.NAME }}" if "{{" in base_url else ""
    return [Problem(label, "source.client.base_url", f"{base_url!r} is not an http(s) URL{hint}")]


def _leaves_with_secrecy(value: Any, path: str) -> Iterator[tuple[Keys, str, bool, Any]]:
    """Yield ``(keys, key_path, is_credential, leaf)``. A leaf is a credential when its nearest key is
    named like one inside a credential container (``auth``, ``headers``, ``params``...): a dict
    under such a key (``{type: resolve, ...}``) is configuration, and list items inherit it."""
    for keys, leaf in leaves(value):
        index, key = nearest_key(keys)
        containers = [k for k in keys[:index] if isinstance(k, str) and k in _CREDENTIAL_CONTAINERS]
        container = containers[-1] if containers else None
        secret = key is not None and _is_secret_key(key, container)
        yield keys, key_path(path, keys), secret, leaf


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


def _resource_problems(label: str, source: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    resources = source.get("resources")
    if not isinstance(resources, list) or not resources:
        return [Problem(label, "source.resources", "must be a non-empty list of resources")]
    seen: dict[str, int] = {}
    for index, entry in enumerate(resources):
        where = f"source.resources[{index}]"
        if isinstance(entry, str):
            name = entry
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            name = entry["name"]
        else:
            problems.append(Problem(label, where, "a resource needs a 'name' (a string)"))
            continue
        if not RESOURCE_NAME_PATTERN.match(name):
            problems.append(
                Problem(
                    label,
                    f"{where}.name",
                    f"{name!r} is not a valid resource name: use letters, digits and '_'",
                )
            )
        if name in seen:
            problems.append(
                Problem(
                    label,
                    f"{where}.name",
                    f"resource name {name!r} is already used by source.resources[{seen[name]}]",
                )
            )
        else:
            seen[name] = index
    for keys, value in leaves(source):
        path = key_path("source", keys)
        if re.search(r"\.paginator\.(limit|page_size)$", path) and not (
            isinstance(value, int) and not isinstance(value, bool) and value > 0
        ):
            problems.append(Problem(label, path, "must be a positive integer"))
        if re.search(r"\.paginator\.(maximum_offset|offset|maximum_page|base_page)$", path) and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            problems.append(Problem(label, path, "must be an integer >= 0"))
    return problems


def _dlt_problems(
    label: str, source: dict[str, Any], dry_build: bool, trust: TrustPolicy | None
) -> list[Problem]:
    """What dlt would refuse, worded for people: the build-time rules, dlt's own validation of a
    ``RESTAPIConfig`` (its first complaint), then a build of the real resources offline."""
    from dlt.common.exceptions import DictValidationException
    from dlt.common.validation import validate_dict
    from dlt.sources.rest_api.typing import RESTAPIConfig

    resolved, errors = resolve_callables(source, trust)
    if errors:
        return [Problem(label, path, message) for path, message in errors]
    problems = auth_and_paginator_problems(label, resolved)
    if problems:
        return problems
    for_dlt = without_extensions(resolved)
    # Only reached once every credential is an {{ env.NAME }} reference: no value to mask.
    try:
        validate_dict(RESTAPIConfig, for_dlt, path=".")
    except DictValidationException as exc:
        path, message = dlt_message(exc)
        return [Problem(label, path, message)]
    problems = parent_problems(label, resolved)
    if problems or not dry_build:
        return problems
    return dry_build_problems(label, for_dlt)
