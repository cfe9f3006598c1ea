"""The one place the generator meets restsync's connector-file validation.

A generated file is only ever written after it passed the same validation as a hand-written
one: :func:`parse_connector` with dlt's ``RESTAPIConfig`` checks and the credential rules.
Keeping the import here means a move of the validation module changes one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from restsync_dagster.connector import ConnectorFileError, parse_connector
from restsync_dagster.openapi.errors import OpenApiError


@dataclass(frozen=True)
class EnvVar:
    """A variable the generated connector reads."""

    name: str
    default: str | None
    secret: bool


def load_connector(text: str, file_name: str) -> Any:
    """The validated connector (restsync's ``Connector``) of a generated file's text.

    Raises:
        OpenApiError: the text is not a valid connector file; the message lists every problem.
    """
    try:
        return parse_connector(text, file_name)
    except ConnectorFileError as exc:
        problems = "; ".join(str(p) for p in exc.problems)
        raise OpenApiError(
            f"{file_name}: the generated connector file is not valid, so it was not written: "
            f"{problems}"
        ) from None


def validate_connector_text(text: str, file_name: str) -> list[EnvVar]:
    """Validate a generated file and return the variables it reads, in file order.

    Raises:
        OpenApiError: the text is not a valid connector file.
    """
    connector = load_connector(text, file_name)
    return [EnvVar(v.name, v.default, v.secret) for v in connector.env_vars]
