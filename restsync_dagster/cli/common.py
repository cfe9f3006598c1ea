"""What every ``restsync`` command shares: exit codes, the error it prints as is, loading files."""

from __future__ import annotations

from restsync_dagster.connector import Connector, ConnectorFileError, load_connectors
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
    """Every connector of the settings' directories, or a :class:`CliError` listing problems."""
    try:
        connectors = load_connectors(settings.connector_dirs, trust=settings.trust)
        check_parallel_partitions(connectors, settings)
        return connectors
    except ConnectorFileError as exc:
        raise CliError(str(exc)) from None


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
