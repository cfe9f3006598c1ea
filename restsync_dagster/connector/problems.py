"""What is wrong with connector files: one :class:`Problem` per thing, all reported at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from restsync_dagster.failures.errors import ConfigurationError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one connector file, at one key path."""

    file: str
    key_path: str
    message: str
    #: The 1-based line of the key in the file, when the YAML node is known.
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.key_path:
            return f"{where}: {self.key_path}: {self.message}"
        return f"{where}: {self.message}"


class ConnectorFileError(ConfigurationError):
    """Connector files that cannot be used; ``problems`` lists every one found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in connector files:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


def shown_path(file: str | Path) -> str:
    """How problem lines name a file: as the user would type it from here (relative to the
    current directory when the file is under it, else whole), never by its base name alone."""
    path = Path(file)
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)
    return str(path)


def dedupe(problems: Sequence[Problem]) -> list[Problem]:
    """``problems`` without repeats, in order."""
    return list(dict.fromkeys(problems))
