"""Connector files: parse, validate, and describe what each connector needs.

A connector file is the single source of truth for one REST API: its ``source:`` block is a dlt
``RESTAPIConfig`` kept verbatim; the keys around it (schedule, retry, owners, ...) are the
project's. A file becomes either a :class:`Connector` or a :class:`ConnectorFileError` listing
every problem, one line each, as ``<file>: <key path>: <what is wrong>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from restsync_dagster.connector.connector import Connector
from restsync_dagster.connector.locations import key_lines, with_lines
from restsync_dagster.connector.messages import pydantic_problems
from restsync_dagster.connector.model import ConnectorConfig
from restsync_dagster.connector.problems import ConnectorFileError, Problem, dedupe, shown_path
from restsync_dagster.connector.rate_keys import rate_key_problems
from restsync_dagster.connector.rules import cross_problems, source_problems
from restsync_dagster.connector.tenants import (
    scope_clash_problems,
    tenant_owner_problems,
    tenants_problems,
)
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
    label = shown_path(file)
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
        label: How messages name ``file`` (default: its path, as :func:`shown_path` shows it).
        dry_build: See :func:`parse_connector`.
        text: The YAML text, when there is one: problems then carry their line numbers.
        trust: See :func:`parse_connector`.

    Returns:
        The validated connector.

    Raises:
        ConnectorFileError: with one problem per thing wrong.
    """
    label = label or shown_path(file)
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
    problems, found = source_problems(
        label, config.source, dry_build=dry_build, trust=trust, connector=config.name
    )
    env_vars = [use for use in found if not use.tenant]
    tenant_vars = [use for use in found if use.tenant]
    problems.extend(env_policy_problems(label, config.name, env_vars, config.env, trust))
    connector = Connector(
        config=config, file=Path(file), env_vars=tuple(env_vars), tenant_vars=tuple(tenant_vars)
    )
    problems.extend(tenants_problems(label, connector, found, trust))
    if not problems:
        problems = cross_problems(label, config)
    if problems:
        raise ConnectorFileError(with_lines(problems, lines))
    return connector


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
        raise ConnectorFileError([Problem(shown_path(path), "", f"cannot read: {exc}")]) from None
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


@dataclass(frozen=True)
class ConnectorFiles:
    """The connector files of some directories, read one by one: a bad file leaves out only its
    own connector."""

    #: The usable connectors, in file order.
    connectors: list[Connector]
    #: Each file whose connector is left out, with its problems (its own, a name another file
    #: already uses, variables that belong to another connector).
    bad_files: dict[Path, list[Problem]]
    #: Problems that are no one file's: a connector directory that does not exist.
    elsewhere: list[Problem]

    @property
    def problems(self) -> list[Problem]:
        """Every problem: the directories', then the files' in file order."""
        return self.elsewhere + [p for problems in self.bad_files.values() for p in problems]


def read_connector_files(
    directories: Iterable[Path], *, dry_build: bool = True, trust: TrustPolicy | None = None
) -> ConnectorFiles:
    """Read every connector file of ``directories`` (``dry_build``, ``trust``: see
    :func:`parse_connector`); unlike :func:`load_connectors`, a bad file is set aside with its
    problems and the others are kept."""
    trust = trust if trust is not None else TrustPolicy.from_env()
    dirs = list(directories)
    elsewhere = [
        Problem(shown_path(d), "", "connector directory does not exist")
        for d in dirs
        if not d.is_dir()
    ]
    bad: dict[Path, list[Problem]] = {}
    first_file: dict[str, Connector] = {}
    for path in connector_files(d for d in dirs if d.is_dir()):
        try:
            connector = load_connector_file(path, dry_build=dry_build, trust=trust)
        except ConnectorFileError as exc:
            bad[path] = list(exc.problems)
            continue
        if connector.name in first_file:
            taken_by = shown_path(first_file[connector.name].file)
            bad[path] = [name_taken(shown_path(path), connector.name, taken_by)]
        else:
            first_file[connector.name] = connector
    connectors = list(first_file.values())
    # A bad file's connector still owns its variables: its name keeps them from the others.
    others = [name for name in map(declared_name, bad) if name]
    files = {shown_path(c.file): c.file for c in connectors}
    for problem in env_owner_problems(connectors, trust, others):
        bad.setdefault(files[problem.file], []).append(problem)
    for problem in rate_key_problems([c for c in connectors if c.file not in bad]):
        bad.setdefault(files[problem.file], []).append(problem)
    for problem in [*scope_clash_problems(connectors), *tenant_owner_problems(connectors, trust)]:
        bad.setdefault(files[problem.file], []).append(problem)
    return ConnectorFiles([c for c in connectors if c.file not in bad], bad, elsewhere)


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
    files = read_connector_files(directories, dry_build=dry_build, trust=trust)
    if files.problems:
        raise ConnectorFileError(files.problems)
    return files.connectors


def declared_name(path: Path) -> str | None:
    """The ``name:`` a connector file declares, if it can be read at all (for a bad file)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    name = document.get("name") if isinstance(document, dict) else None
    return name if isinstance(name, str) and name else None


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"YAML error at line {mark.line + 1}, column {mark.column + 1}: {what}"
    return f"YAML error: {what}"
