"""Connector files: parse, validate, and describe what each connector needs.

A connector file is the single source of truth for one REST API: its ``source:`` block is a dlt
``RESTAPIConfig`` kept verbatim; the keys around it (schedule, retry, owners, ...) are the
project's. A file becomes either a :class:`Connector` or a :class:`ConnectorFileError` listing
every problem, one line each, as ``<file>: <key path>: <what is wrong>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from restsync_dagster.connector.connector import Connector
from restsync_dagster.connector.locations import key_lines, with_lines
from restsync_dagster.connector.messages import pydantic_problems
from restsync_dagster.connector.model import ConnectorConfig
from restsync_dagster.connector.problems import ConnectorFileError, Problem, dedupe
from restsync_dagster.connector.rate_keys import rate_key_problems
from restsync_dagster.connector.rules import cross_problems, source_problems
from restsync_dagster.connector.trust import env_owner_problems, env_policy_problems
from restsync_dagster.settings import TrustPolicy

# --------------------------------------------------------------------------------------------
# Loading


# libyaml's C parser when PyYAML has it (it does in the wheels): ~5x faster on many files.
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
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


def parse_connector(
    text: str, file: str | Path, *, dry_build: bool = True, trust: TrustPolicy | None = None
) -> Connector:
    """Validate the text of one connector file.

    Args:
        text: The YAML document.
        file: Where it came from; only used in messages.
        dry_build: Also build the real dlt resources offline, with placeholders for the
            variables (:mod:`restsync_dagster.connector.dry_build`), to catch what dlt only
            catches then; ~7 ms per connector.
        trust: What the file may reach (variables, callables); default: the deployment's
            (:meth:`TrustPolicy.from_env`).

    Returns:
        The validated connector.

    Raises:
        ConnectorFileError: with one problem per thing wrong.
    """
    label = Path(file).name
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConnectorFileError([Problem(label, "", _yaml_message(exc))]) from None
    return parse_connector_document(document, file, dry_build=dry_build, text=text, trust=trust)


def parse_connector_document(
    document: Any,
    file: str | Path,
    label: str | None = None,
    *,
    dry_build: bool = True,
    text: str | None = None,
    trust: TrustPolicy | None = None,
) -> Connector:
    """Validate one connector document: a connector file's YAML once parsed, or the attributes of
    a Dagster component (:mod:`restsync_dagster.component`), which are the same keys.

    Args:
        document: The mapping of a connector's keys (``name``, ``schedule``, ``source``...).
        file: Where it came from.
        label: How messages name ``file`` (default: its file name).
        dry_build: See :func:`parse_connector`.
        text: The YAML text, when there is one: problems then carry their line numbers.
        trust: See :func:`parse_connector`.

    Returns:
        The validated connector.

    Raises:
        ConnectorFileError: with one problem per thing wrong.
    """
    label = label or Path(file).name
    lines = key_lines(text) if text is not None else {}
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise ConnectorFileError(
            [Problem(label, "", f"a connector file is a YAML mapping, this one is {kind}")]
        )
    trust = trust if trust is not None else TrustPolicy.from_env()
    name = document.get("name") if isinstance(document.get("name"), str) else None
    problems: list[Problem] = []
    try:
        config = ConnectorConfig.model_validate(document)
    except ValidationError as exc:
        problems.extend(pydantic_problems(label, exc))
        # Still check ``source:`` so one run reports everything that is wrong.
        source = document.get("source")
        if isinstance(source, dict):
            checked = source_problems(
                label, source, dry_build=dry_build, trust=trust, connector=name
            )
            problems.extend(checked[0])
        raise ConnectorFileError(with_lines(dedupe(problems), lines)) from None
    problems, env_vars = source_problems(
        label, config.source, dry_build=dry_build, trust=trust, connector=config.name
    )
    problems.extend(env_policy_problems(label, config.name, env_vars, config.env, trust))
    if not problems:
        problems = cross_problems(label, config)
    if problems:
        raise ConnectorFileError(with_lines(problems, lines))
    return Connector(config=config, file=Path(file), env_vars=tuple(env_vars))


def name_taken(label: str, name: str, other: str | Path) -> Problem:
    """The problem of a connector whose name another file (or component) already uses."""
    return Problem(label, "name", f"connector name {name!r} is already used by {other}")


def load_connector_file(
    path: Path, *, dry_build: bool = True, trust: TrustPolicy | None = None
) -> Connector:
    """Read and validate one connector file (``dry_build``, ``trust``: see
    :func:`parse_connector`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConnectorFileError([Problem(path.name, "", f"cannot read: {exc}")]) from None
    return parse_connector(text, path, dry_build=dry_build, trust=trust)


def connector_files(directories: Iterable[Path]) -> list[Path]:
    """``*.yaml`` and ``*.yml`` files of ``directories``, in a stable order."""
    files: list[Path] = []
    for directory in directories:
        files.extend(sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml")))
    return files


def file_stamps(directories: Iterable[Path]) -> list[tuple[str, int, int]]:
    """``(path, mtime, size)`` of every file of ``directories``: what tells that a loaded set of
    connector files is still the one on disk."""
    stamps = []
    for directory in directories:
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                stat = path.stat()
                stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
    return stamps


def load_connectors(
    directories: Iterable[Path], *, dry_build: bool = True, trust: TrustPolicy | None = None
) -> list[Connector]:
    """Load every connector file of ``directories`` (``dry_build``, ``trust``: see
    :func:`parse_connector`).

    Raises:
        ConnectorFileError: listing the problems of every bad file, connector names used twice,
            connectors of one rate key declaring different limits, and variables one connector
            reads that belong to another (``trust.confine_env``).
    """
    trust = trust if trust is not None else TrustPolicy.from_env()
    problems: list[Problem] = []
    connectors: list[Connector] = []
    dirs = list(directories)
    for directory in dirs:
        if not directory.is_dir():
            problems.append(Problem(str(directory), "", "connector directory does not exist"))
    for path in connector_files(d for d in dirs if d.is_dir()):
        try:
            connectors.append(load_connector_file(path, dry_build=dry_build, trust=trust))
        except ConnectorFileError as exc:
            problems.extend(exc.problems)
    first_file: dict[str, Connector] = {}
    for connector in connectors:
        if connector.name in first_file:
            problems.append(
                name_taken(connector.file.name, connector.name, first_file[connector.name].file)
            )
        else:
            first_file[connector.name] = connector
    problems.extend(env_owner_problems(connectors, trust))
    problems.extend(rate_key_problems(connectors))
    if problems:
        raise ConnectorFileError(problems)
    return connectors


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"YAML error at line {mark.line + 1}, column {mark.column + 1}: {what}"
    return f"YAML error: {what}"
