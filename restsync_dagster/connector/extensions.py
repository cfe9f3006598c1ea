"""restsync's own keys inside ``source:``, the one place that names them.

``source:`` is a dlt ``RESTAPIConfig``, kept verbatim, except for these keys that extend dlt's
vocabulary where it has no word (a total read from a header, a response that is not JSON...).
They are checked by restsync's rules, read by the extract floor, and removed from the copy dlt
validates and builds, so dlt never sees a key it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Paginator keys restsync adds, per paginator type.
PAGINATOR_KEYS: Mapping[str, frozenset[str]] = {
    # The header that tells the total number of records (X-Total-Count, Content-Range).
    "offset": frozenset({"total_header"}),
}


def paginator_extensions(paginator: Any) -> dict[str, Any]:
    """The restsync keys of a paginator dict (empty for anything else)."""
    if not isinstance(paginator, Mapping):
        return {}
    allowed = PAGINATOR_KEYS.get(str(paginator.get("type")), frozenset())
    return {key: paginator[key] for key in allowed if key in paginator}


def without_extensions(source: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``source`` without restsync's keys: what dlt validates and builds."""
    copied = dict(source)
    client = copied.get("client")
    if isinstance(client, Mapping):
        copied["client"] = _endpoint_without(client)
    defaults = copied.get("resource_defaults")
    if isinstance(defaults, Mapping) and isinstance(defaults.get("endpoint"), Mapping):
        copied["resource_defaults"] = {
            **defaults,
            "endpoint": _endpoint_without(defaults["endpoint"]),
        }
    resources = copied.get("resources")
    if isinstance(resources, list):
        copied["resources"] = [_resource_without(entry) for entry in resources]
    return copied


def _resource_without(entry: Any) -> Any:
    if isinstance(entry, Mapping) and isinstance(entry.get("endpoint"), Mapping):
        return {**entry, "endpoint": _endpoint_without(entry["endpoint"])}
    return entry


def _endpoint_without(endpoint: Mapping[str, Any]) -> dict[str, Any]:
    copied = dict(endpoint)
    paginator = copied.get("paginator")
    extra = paginator_extensions(paginator)
    if extra and isinstance(paginator, Mapping):
        copied["paginator"] = {k: v for k, v in paginator.items() if k not in extra}
    return copied
