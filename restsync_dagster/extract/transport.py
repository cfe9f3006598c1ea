"""Credentials never travel unencrypted: every URL of a rendered source is checked before a run."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from restsync_dagster.connector import Connector
from restsync_dagster.connector.tree import leaves
from restsync_dagster.failures.errors import InsecureTransportError
from restsync_dagster.failures.redaction import redact_url


def check_transport(connector: Connector, config: Mapping[str, Any]) -> None:
    """Refuse to send credentials over plain http to anything but this machine.

    Raises:
        InsecureTransportError: unless the connector has no secret or allows it explicitly.
    """
    if not connector.secret_env or connector.config.allow_insecure_http:
        return
    # Every URL of the config: the base URL, absolute endpoint paths (resource_defaults too),
    # an OAuth access_token_url that receives the client secret...
    for url in _urls_in(config):
        parts = urlsplit(url)
        if parts.scheme.lower() == "http" and not _is_loopback(parts.hostname or ""):
            raise InsecureTransportError(connector.name, redact_url(url))


def _urls_in(config: Mapping[str, Any]) -> Iterator[str]:
    for _keys, leaf in leaves(dict(config)):
        if isinstance(leaf, str) and "://" in leaf:
            yield leaf


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
