"""restsync's own keys inside ``source:``, the one place that names them.

``source:`` is a dlt ``RESTAPIConfig``, kept verbatim, except for these keys that extend dlt's
vocabulary where it has no word (a total read from a header, response actions that match the
body of a 200 and retry or fail, a response that is not JSON...).
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
    # A count of records (not pages) read from the body, and the records a page holds.
    "page_number": frozenset({"total_records_path", "page_size"}),
}


#: Endpoint keys restsync adds: how the body holds the records (extract/formats.py).
ENDPOINT_KEYS = frozenset({"response_format", "graphql", "report_job"})
#: The keys of an endpoint's ``report_job`` block (extract/report_jobs.py).
REPORT_JOB_KEYS = frozenset(
    {
        "create_json",
        "id_path",
        "poll_path",
        "status_path",
        "done",
        "failed",
        "message_path",
        "result_url_path",
        "result_path",
        "interval_seconds",
        "timeout_seconds",
    }
)
#: Keys restsync adds to dlt's ``incremental`` block (extract/windows.py): ``window`` slices a
#: sync into bounded windows, each committed before the next; ``children`` says whether child
#: resources read the children of the parents in this sync's window (``changed``) or of all.
INCREMENTAL_KEYS = frozenset({"window", "children"})
CHILDREN_CHOICES = ("changed", "all")
#: The keys of an endpoint's ``graphql`` block (extract/graphql.py).
GRAPHQL_KEYS = frozenset({"query", "variables", "connection"})
RESPONSE_FORMATS = ("json", "jsonl", "csv")
#: Auth types restsync adds, with their keys (extract/oauth_refresh.py). Built as instances,
#: which dlt's config takes as they are, so no process-wide registration is needed.
AUTH_TYPES: Mapping[str, frozenset[str]] = {
    "oauth2_refresh_token": frozenset(
        {
            "type",
            "access_token_url",
            "client_id",
            "client_secret",
            "refresh_token",
            "access_token_request_data",
            "default_token_expiration",
        }
    ),
}
#: Actions a restsync response action may take (dlt's own entries only know ``ignore``).
BODY_ACTIONS = ("retry", "fail", "ignore")
#: The keys of a restsync response action.
BODY_ACTION_KEYS = frozenset(
    {"json_path", "value", "content", "action", "message_path", "status_code"}
)


def is_verbatim(keys: tuple[str | int, ...]) -> bool:
    """Whether the string at ``keys`` is sent as written: a GraphQL query, made of braces, is
    neither a ``{{ env.NAME }}`` template nor a dlt placeholder."""
    return keys[-2:] == ("graphql", "query")


#: The endpoint keys whose strings dlt formats with ``str.format`` before each request
#: (``paginate_resource`` and ``process_parent_data_item`` in dlt's rest_api config_setup):
#: ``{name}`` there is a dlt placeholder and ``{{``/``}}`` a literal brace.
DLT_FORMATTED_KEYS = frozenset({"path", "params", "json", "data", "headers"})


def is_dlt_formatted(keys: tuple[str | int, ...]) -> bool:
    """Whether dlt formats the string at ``keys`` (relative to ``source:``): a resource's or
    ``resource_defaults``' endpoint path, params, json, data or headers, or an endpoint written
    as a path string. Elsewhere (``client``, ``auth``, selectors...) dlt uses strings as written.
    """
    if keys[:1] == ("resources",) and len(keys) >= 3 and keys[2] == "endpoint":
        rest = keys[3:]
    elif keys[:2] == ("resource_defaults", "endpoint"):
        rest = keys[2:]
    else:
        return False
    return not rest or rest[0] in DLT_FORMATTED_KEYS


def is_body_action(entry: Any) -> bool:
    """Whether a ``response_actions`` entry is restsync's (it matches a JSON path, or retries or
    fails) rather than dlt's (``status_code``/``content`` with ``action: ignore``)."""
    return isinstance(entry, Mapping) and (
        "json_path" in entry or "message_path" in entry or entry.get("action") in ("retry", "fail")
    )


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


def is_restsync_auth(auth: Any) -> bool:
    """Whether an ``auth`` value is one of restsync's own types."""
    return isinstance(auth, Mapping) and auth.get("type") in AUTH_TYPES


def _endpoint_without(endpoint: Mapping[str, Any]) -> dict[str, Any]:
    copied = {k: v for k, v in endpoint.items() if k not in ENDPOINT_KEYS}
    if is_restsync_auth(copied.get("auth")):
        del copied["auth"]  # built by restsync; dlt sees the instance at run time
    actions = copied.get("response_actions")
    if isinstance(actions, list) and any(is_body_action(a) for a in actions):
        kept = [a for a in actions if not is_body_action(a)]
        if kept:
            copied["response_actions"] = kept
        else:
            del copied["response_actions"]
    incremental = copied.get("incremental")
    if isinstance(incremental, Mapping) and INCREMENTAL_KEYS & set(incremental):
        copied["incremental"] = {k: v for k, v in incremental.items() if k not in INCREMENTAL_KEYS}
    paginator = copied.get("paginator")
    extra = paginator_extensions(paginator)
    if extra and isinstance(paginator, Mapping):
        copied["paginator"] = {k: v for k, v in paginator.items() if k not in extra}
    return copied
