"""What every ``restsync`` command shares: exit codes, the error it prints as is, loading files."""

from __future__ import annotations

from restsync_dagster.connector import Connector, ConnectorFileError, load_connectors
from restsync_dagster.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """An error to print as is (no traceback) before exiting with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load(settings: Settings) -> list[Connector]:
    """Every connector of the settings' directories, or a :class:`CliError` listing problems."""
    try:
        return load_connectors(settings.connector_dirs, trust=settings.trust)
    except ConnectorFileError as exc:
        raise CliError(str(exc)) from None
