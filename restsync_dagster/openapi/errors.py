"""The one error of the OpenAPI generator: a document or request it cannot turn into a connector.

Every message is one line that names the document (or the output file) and says what is wrong, so
``restsync init`` can print it as it is, without a traceback.
"""

from __future__ import annotations


class OpenApiError(ValueError):
    """The document cannot be read, is not OpenAPI, or gives nothing a connector can sync."""

    def __init__(self, message: str) -> None:
        # One line, always: a message that spans lines reads like a traceback in a terminal.
        super().__init__(" ".join(message.split()))
