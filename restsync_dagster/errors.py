"""Errors raised by restsync while a sync runs (load-time errors live in :mod:`spec`)."""

from __future__ import annotations


class ResponseContractError(Exception):
    """An API answered 2xx, but not with what the connector file promises.

    Raised from inside dlt's extraction, so dlt wraps it; :mod:`restsync_dagster.failures` finds it
    in the chain and reports it with the connector, resource, page and redacted URL.
    """

    def __init__(self, resource: str, url: str, problem: str, offset: int | None = None) -> None:
        self.resource = resource
        self.url = url
        self.problem = problem
        self.offset = offset
        where = f" (offset {offset})" if offset is not None else ""
        super().__init__(f"resource {resource!r}{where}: {problem} at {url}")


class InsecureTransportError(ValueError):
    """A credential would travel unencrypted over the network."""

    def __init__(self, connector: str, url: str) -> None:
        self.connector = connector
        self.url = url
        super().__init__(
            f"connector {connector!r} would send its credentials over plain http:// to {url}; "
            "use https://, or set 'allow_insecure_http: true' in the connector file if this "
            "network is trusted"
        )


class UnknownCharsetError(ValueError):
    """A response declares a charset Python has no codec for: its body cannot be read."""

    def __init__(self, charset: str) -> None:
        super().__init__(f"The response declares an unknown charset {charset!r}.")
        self.charset = charset
