"""Connector files: parse, validate, and describe what each connector needs.

A connector file is the single source of truth for one REST API: its ``source:`` block is a dlt
``RESTAPIConfig`` kept verbatim; the keys around it (schedule, retry, owners, ...) are the
project's. Everything here is pure (no Dagster, no network): a file becomes either a
:class:`Connector` or a :class:`ConnectorSpecError` listing every problem, one line each, as
``<file>: <key path>: <what is wrong>``.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from restsync_dagster.templating import EnvRef, TemplateError, find_refs, has_refs, walk

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESOURCE_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,126}$")
DEFAULT_RETRY_STATUSES: tuple[int, ...] = (429, 500, 502, 503, 504)

# Keys whose value is a credential. Matched on the key's lower-cased name with '-' read as '_'.
_SECRET_KEY_NAMES = frozenset(
    {
        "api_key", "apikey", "key", "token", "api_token", "access_token", "refresh_token",
        "auth_token", "session_token", "id_token", "password", "passwd", "pwd", "secret",
        "client_secret", "private_key", "x_api_key", "authorization", "proxy_authorization",
    }
)  # fmt: skip
_SECRET_KEY_SUFFIXES = ("_token", "_secret", "_password", "_api_key", "_apikey")
# Dicts whose keys are credentials when named like one. Elsewhere a key such as ``token`` may
# be a paginator setting (``cursor_param``), so the check is scoped to these containers.
_CREDENTIAL_CONTAINERS = frozenset({"auth", "headers", "params", "json", "data"})
# ``name`` in an api_key auth is the parameter's name, not its value.
_NOT_SECRET_IN_AUTH = frozenset({"type", "name", "location", "username", "client_id"})
_CALLABLE_KEYS = frozenset({"map", "filter", "yield_map", "convert"})
_CALLABLE_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


# --------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with one connector file."""

    file: str
    key_path: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.key_path}: {self.message}"
            if self.key_path
            else (f"{self.file}: {self.message}")
        )


class ConnectorSpecError(ValueError):
    """Connector files that cannot be used; ``problems`` lists every one found."""

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in connector files:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


# --------------------------------------------------------------------------------------------
# The model of the project's keys


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySpec(_Strict):
    """HTTP-level retries of one connector."""

    statuses: tuple[int, ...] = DEFAULT_RETRY_STATUSES
    max_retries: int = Field(3, ge=0, le=10)
    backoff_factor: float = Field(2.0, ge=0, le=600)
    #: Cap on any single wait, the server's ``Retry-After`` included.
    max_delay_seconds: float = Field(60.0, gt=0, le=3600)
    #: Retry *runs* per failed run, by the ``retry_transient_failures`` sensor (default: the
    #: deployment's ``RESTSYNC_RUN_RETRIES``, 3).
    run_retries: int | None = Field(None, ge=0, le=20)
    #: Wait before the first retry run; doubles for each further one (default:
    #: ``RESTSYNC_RUN_RETRY_BASE_DELAY_SECONDS``, 60).
    run_base_delay_seconds: float | None = Field(None, ge=0, le=86_400)

    @field_validator("statuses")
    @classmethod
    def _http_error_statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [s for s in value if not 400 <= s <= 599]
        if bad:
            raise ValueError(f"retry statuses must be HTTP error codes (400-599), not {bad}")
        return value


class ScheduleSpec(_Strict):
    """When the connector's sync job runs."""

    cron: str
    timezone: str = "UTC"
    #: Whether the schedule is on when the code location loads (it can be toggled in the UI).
    running: bool = True

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value) or len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a 5-field cron expression such as '0 * * * *'")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'UTC'"
            ) from None
        return value


class ConnectorSpec(_Strict):
    """The validated content of one connector file."""

    name: str
    description: str = ""
    owners: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    schedule: ScheduleSpec | None = None
    retry: RetrySpec = Field(default_factory=lambda: RetrySpec())
    #: Seconds to wait for a server to answer (connect and each read).
    timeout_seconds: float = Field(60.0, gt=0, le=3600)
    #: Destination dataset (schema); defaults to the connector's name.
    dataset: str | None = None
    source: dict[str, Any]

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not a valid connector name: use lower-case letters, digits and "
                "'_', starting with a letter"
            )
        return value

    @field_validator("dataset")
    @classmethod
    def _valid_dataset(cls, value: str | None) -> str | None:
        if value is not None and not NAME_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a valid dataset name (lower-case, digits, '_')")
        return value

    @field_validator("owners")
    @classmethod
    def _valid_owners(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for owner in value:
            if "@" not in owner and not owner.startswith("team:"):
                raise ValueError(f"owner {owner!r} must be an email address or 'team:<name>'")
        return value

    @model_validator(mode="before")
    @classmethod
    def _schedule_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("schedule"), str):
            return {**data, "schedule": {"cron": data["schedule"]}}
        return data

    @property
    def dataset_name(self) -> str:
        """The destination dataset this connector loads into."""
        return self.dataset or self.name


# --------------------------------------------------------------------------------------------
# What a connector is made of, once validated


@dataclass(frozen=True)
class EnvVarUse:
    """An environment variable a connector reads, and where."""

    name: str
    default: str | None
    secret: bool
    key_paths: tuple[str, ...]

    @property
    def required(self) -> bool:
        """True when the variable has no fallback."""
        return self.default is None


@dataclass(frozen=True)
class ResourceInfo:
    """What the Dagster side needs to know about one dlt resource, without building it."""

    name: str
    table_name: str
    path: str
    primary_key: str | tuple[str, ...] | None
    write_disposition: str
    parent: str | None = None


@dataclass(frozen=True)
class Connector:
    """A validated connector file."""

    spec: ConnectorSpec
    file: Path
    env_vars: tuple[EnvVarUse, ...] = field(default=())

    @property
    def name(self) -> str:
        """The connector's name (first element of its asset keys)."""
        return self.spec.name

    @property
    def resources(self) -> list[ResourceInfo]:
        """The resources of ``source:``, defaults applied, in file order."""
        return resource_infos(self.spec.source)

    @property
    def required_env(self) -> list[str]:
        """Variables that must be set for a run to start."""
        return [v.name for v in self.env_vars if v.required]

    @property
    def secret_env(self) -> list[str]:
        """Variables holding credentials."""
        return [v.name for v in self.env_vars if v.secret]


def resource_infos(source: Mapping[str, Any]) -> list[ResourceInfo]:
    """Resolve each resource of a ``source:`` block against ``resource_defaults``."""
    defaults = source.get("resource_defaults") or {}
    infos = []
    for entry in source.get("resources") or []:
        resource = {"name": entry} if isinstance(entry, str) else entry
        merged = {**defaults, **resource}
        endpoint = merged.get("endpoint") or {}
        if isinstance(endpoint, str):
            endpoint = {"path": endpoint}
        default_endpoint = defaults.get("endpoint") if isinstance(defaults, dict) else None
        if isinstance(default_endpoint, dict):
            endpoint = {**default_endpoint, **endpoint}
        path = str(endpoint.get("path") or resource["name"])
        pk = merged.get("primary_key")
        infos.append(
            ResourceInfo(
                name=str(resource["name"]),
                table_name=str(merged.get("table_name") or resource["name"]),
                path=path,
                primary_key=tuple(pk) if isinstance(pk, list) else pk,
                write_disposition=_disposition(merged.get("write_disposition", "append")),
                parent=_parent_of(endpoint),
            )
        )
    return infos


def _disposition(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("disposition", "append"))
    return str(value)


def _parent_of(endpoint: Mapping[str, Any]) -> str | None:
    for value in (endpoint.get("params") or {}).values():
        if isinstance(value, dict) and value.get("type") == "resolve":
            return str(value.get("resource"))
    match = re.search(r"\{resources\.([A-Za-z_]\w*)\.", str(endpoint.get("path", "")))
    return match.group(1) if match else None


# --------------------------------------------------------------------------------------------
# Loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys instead of keeping the last one silently."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_connector(text: str, file: str | Path) -> Connector:
    """Validate the text of one connector file.

    Args:
        text: The YAML document.
        file: Where it came from; only used in messages.

    Returns:
        The validated connector.

    Raises:
        ConnectorSpecError: with one problem per thing wrong.
    """
    label = Path(file).name
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConnectorSpecError([SpecProblem(label, "", _yaml_message(exc))]) from None
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise ConnectorSpecError(
            [SpecProblem(label, "", f"a connector file is a YAML mapping, this one is {kind}")]
        )
    problems: list[SpecProblem] = []
    try:
        spec = ConnectorSpec.model_validate(document)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(label, exc))
        # Still check ``source:`` so one run reports everything that is wrong.
        source = document.get("source")
        if isinstance(source, dict):
            problems.extend(_source_problems(label, source)[0])
        raise ConnectorSpecError(_dedupe(problems)) from None
    source_problems, env_vars = _source_problems(label, spec.source)
    if source_problems:
        raise ConnectorSpecError(source_problems)
    return Connector(spec=spec, file=Path(file), env_vars=tuple(env_vars))


def load_connector_file(path: Path) -> Connector:
    """Read and validate one connector file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConnectorSpecError([SpecProblem(path.name, "", f"cannot read: {exc}")]) from None
    return parse_connector(text, path)


def connector_files(directories: Iterable[Path]) -> list[Path]:
    """``*.yaml`` and ``*.yml`` files of ``directories``, in a stable order."""
    files: list[Path] = []
    for directory in directories:
        files.extend(sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml")))
    return files


def load_connectors(directories: Iterable[Path]) -> list[Connector]:
    """Load every connector file of ``directories``.

    Raises:
        ConnectorSpecError: listing the problems of every bad file, and connector names used twice.
    """
    problems: list[SpecProblem] = []
    connectors: list[Connector] = []
    dirs = list(directories)
    for directory in dirs:
        if not directory.is_dir():
            problems.append(SpecProblem(str(directory), "", "connector directory does not exist"))
    for path in connector_files(d for d in dirs if d.is_dir()):
        try:
            connectors.append(load_connector_file(path))
        except ConnectorSpecError as exc:
            problems.extend(exc.problems)
    first_file: dict[str, Connector] = {}
    for connector in connectors:
        if connector.name in first_file:
            other = first_file[connector.name].file
            problems.append(
                SpecProblem(
                    connector.file.name,
                    "name",
                    f"connector name {connector.name!r} is already used by {other}",
                )
            )
        else:
            first_file[connector.name] = connector
    if problems:
        raise ConnectorSpecError(problems)
    return connectors


# --------------------------------------------------------------------------------------------
# Rules on ``source:``


def _source_problems(
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
    return name in _SECRET_KEY_NAMES or name.endswith(_SECRET_KEY_SUFFIXES)


def _url_userinfo_refs(value: str) -> set[str] | bool | None:
    """For ``scheme://user:password@host`` strings: the env names in the password, or False if
    the password is literal. None when the string embeds no password."""
    match = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/@\s]*):([^/@\s]*)@", value)
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
    masked = _mask_credentials(resolved)
    try:
        validate_dict(RESTAPIConfig, masked, path=".")
    except DictValidationException as exc:
        path, message = _dlt_message(exc)
        return [SpecProblem(label, path, message)]
    return []


def _mask_credentials(source: dict[str, Any]) -> dict[str, Any]:
    masked = copy.deepcopy(source)
    for key_path, secret, _value in list(_leaves_with_secrecy(source, "")):
        if secret:
            _set_path(masked, key_path, "***")
    return masked


def _set_path(root: Any, key_path: str, value: Any) -> None:
    tokens = re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", key_path)
    node = root
    for i, (key, index) in enumerate(tokens):
        last = i == len(tokens) - 1
        selector: Any = int(index) if index else key
        if last:
            node[selector] = value
        else:
            node = node[selector]


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


def _pydantic_problems(label: str, exc: ValidationError) -> list[SpecProblem]:
    problems = []
    known = set(ConnectorSpec.model_fields)
    nested_known = {
        "retry": set(RetrySpec.model_fields),
        "schedule": set(ScheduleSpec.model_fields),
    }
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key_path = _loc_to_path(error["loc"])
        if error["type"] == "extra_forbidden":
            choices = nested_known.get(loc[0], known) if len(loc) > 1 else known
            guess = difflib.get_close_matches(loc[-1], choices, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            message = f"unknown key{hint}; allowed: {', '.join(sorted(choices))}"
        elif error["type"] == "missing":
            message = "is required"
        else:
            message = error["msg"].removeprefix("Value error, ")
        problems.append(SpecProblem(label, key_path, message))
    return problems


def _loc_to_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _dedupe(problems: list[SpecProblem]) -> list[SpecProblem]:
    return list(dict.fromkeys(problems))


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"YAML error at line {mark.line + 1}, column {mark.column + 1}: {what}"
    return f"YAML error: {what}"
