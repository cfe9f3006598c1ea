"""What every ``restsync`` command shares: exit codes, the error it prints as is, and which
connectors a command sees: those of the ``dg`` project it runs in (its restsync components), else
the settings' directories; plus any connector file named by its path."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from restsync_dagster.connector import (
    Connector,
    ConnectorFileError,
    load_connector_file,
    load_connectors,
)
from restsync_dagster.connector.messages import did_you_mean
from restsync_dagster.load.destination import check_parallel_partitions
from restsync_dagster.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Ended by Ctrl-C (SIGINT): 128 + 2, as shells report it.
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An error to print as is (no traceback) before exiting with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(CliError):
    """Ctrl-C stopped the command: one line, exit 130."""

    def __init__(self, what: str) -> None:
        super().__init__(f"interrupted (Ctrl-C): {what}", EXIT_INTERRUPTED)


def load(settings: Settings) -> list[Connector]:
    """Every connector a command sees, or a :class:`CliError` listing problems.

    In a ``dg`` project (:mod:`restsync_dagster.cli.project`): its restsync components'
    connectors and those of ``RESTSYNC_CONNECTORS_DIR``, never the bundled examples, which its
    code location does not have. Elsewhere: the settings' directories.
    """
    try:
        return seen(settings)
    except ConnectorFileError as exc:
        raise CliError(str(exc)) from None


def seen(settings: Settings) -> list[Connector]:
    """:func:`load`, raising :class:`ConnectorFileError` for files with problems."""
    from restsync_dagster.cli.project import dg_project

    project = dg_project()
    if project is None:
        connectors = load_connectors(settings.connector_dirs, trust=settings.trust)
    else:
        extra = load_connectors(settings.extra_connector_dirs, trust=settings.trust)
        connectors = project.connectors + extra
    check_parallel_partitions(connectors, settings)
    return connectors


def is_path(argument: str) -> bool:
    """Whether a CONNECTOR argument is a connector file's path rather than a connector's name."""
    return argument.endswith((".yaml", ".yml")) or "/" in argument or os.sep in argument


def select(settings: Settings, wanted: Sequence[str]) -> list[Connector]:
    """:func:`chosen`, with a file's problems as a :class:`CliError`."""
    try:
        return chosen(settings, wanted)
    except ConnectorFileError as exc:
        raise CliError(str(exc)) from None


def chosen(settings: Settings, wanted: Sequence[str]) -> list[Connector]:
    """The connectors a command was given, by name or by a connector file's path (each file read
    and validated as a connector directory's are); every connector when ``wanted`` is empty.

    Raises:
        ConnectorFileError: a file with problems, one line each.
        CliError: a missing file, or an unknown name (with a did-you-mean, and the path to use
            when ``NAME.yaml`` is in the current folder).
    """
    files = [Path(w) for w in wanted if is_path(w)]
    names = [w for w in wanted if not is_path(w)]
    for file in files:
        if not file.is_file():
            raise CliError(f"{file}: no such connector file", EXIT_USAGE)
    by_file = [load_connector_file(f, trust=settings.trust) for f in files]
    if files and not names:
        check_parallel_partitions(by_file, settings)
        return by_file
    known = {c.name: c for c in seen(settings)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CliError(unknown_connectors(unknown, known), EXIT_USAGE)
    if not wanted:
        return list(known.values())
    given = iter(by_file)
    return [next(given) if is_path(w) else known[w] for w in wanted]


def unknown_connectors(unknown: Sequence[str], known: Iterable[str]) -> str:
    """The message for names no connector has: did you mean, a file here, the known names."""
    message = f"unknown connector(s): {', '.join(unknown)}"
    known = sorted(known)
    message += did_you_mean(unknown[0], known)
    here = [f"./{n}{ext}" for n in unknown for ext in (".yaml", ".yml") if Path(n + ext).is_file()]
    if here:
        message += f"; to use a connector file, give its path: {', '.join(here)}"
    return f"{message}; known: {', '.join(known) or '(none)'}"


#: What Dagster's storage raises when its database cannot be reached: dagster-postgres gives
#: up after its retries with ``DagsterPostgresException``; SQLAlchemy's ``OperationalError`` is
#: what is under it (and what the SQLite storage raises on a locked or vanished file).
_STORAGE_ERRORS = {
    ("dagster_postgres.utils", "DagsterPostgresException"),
    ("sqlalchemy.exc", "OperationalError"),
}


def storage_unreachable(exc: BaseException) -> str | None:
    """The line to print when ``exc`` is Dagster's own storage being unreachable, else None."""
    import os

    from restsync_dagster.failures.classify import iter_chain

    for error in iter_chain(exc):
        if (type(error).__module__, type(error).__name__) in _STORAGE_ERRORS:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            home = os.environ.get("DAGSTER_HOME", "(unset)")
            return (
                f"Dagster's instance storage is unreachable (DAGSTER_HOME={home}): {first}. "
                "A run this command started may show as STARTED until Dagster's run monitoring "
                "marks it failed (run_monitoring in dagster.yaml, see docs/deployment.md); the "
                "next sync loads from the last committed load."
            )
    return None


def required_variables(connector: Connector, tenant: str | None = None) -> list[str]:
    """The variables a run of ``connector`` (of its ``tenant``) cannot start without."""
    if tenant is None:
        return connector.required_env
    from restsync_dagster.connector.tenants import tenant_variables

    return [v.name for v in tenant_variables(connector, tenant) if v.required]


def unset_variables(connector: Connector, tenant: str | None = None) -> str | None:
    """What to say when required variables of ``connector`` (of its ``tenant``) are unset here,
    else None; for the bundled examples, where their demo values come from."""
    missing = [name for name in required_variables(connector, tenant) if not os.environ.get(name)]
    if not missing:
        return None
    who = f"connector {connector.name!r}" + (f" tenant {tenant!r}" if tenant else "")
    message = f"{who}: environment variable(s) not set: {', '.join(missing)}"
    if Settings.is_example(connector.file):
        message += (
            '. For the demo API (restsync demo, restsync demo-api), set them with: eval "$(restsync '
            "demo-env)\" (it reads the running demo's port, else 8765)"
        )
    return message
