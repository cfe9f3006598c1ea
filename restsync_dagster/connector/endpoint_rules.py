"""Rules on restsync's own endpoint keys (:mod:`restsync_dagster.connector.extensions`):
``response_format``, ``response_actions`` entries (dlt's and restsync's), ``graphql`` and
``report_job`` blocks, ``incremental`` windows. Each problem names its key path and, where it can, the nearest valid value.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from restsync_dagster.connector.extensions import (
    BODY_ACTION_KEYS,
    BODY_ACTIONS,
    GRAPHQL_KEYS,
    REPORT_JOB_KEYS,
    RESPONSE_FORMATS,
    is_body_action,
)
from restsync_dagster.connector.messages import did_you_mean
from restsync_dagster.connector.problems import Problem
from restsync_dagster.connector.windows import incremental_problems


def endpoint_problems(label: str, where: str, block: Mapping[str, Any]) -> list[Problem]:
    """The problems of restsync's keys in one ``client``/endpoint block at ``where``."""
    problems: list[Problem] = []
    body_format = block.get("response_format")
    if body_format is not None and where == "source.client":
        problems.append(
            Problem(
                label,
                f"{where}.response_format",
                "belongs in an endpoint (or in resource_defaults.endpoint)",
            )
        )
    elif body_format is not None and body_format not in RESPONSE_FORMATS:
        problems.append(
            Problem(
                label,
                f"{where}.response_format",
                f"{body_format!r} is not one of "
                f"{', '.join(RESPONSE_FORMATS)}{did_you_mean(str(body_format), RESPONSE_FORMATS)}",
            )
        )
    if "report_job" in block:
        problems.extend(_block_problems(label, f"{where}.report_job", block["report_job"]))
        if "paginator" in block:
            problems.append(
                Problem(
                    label,
                    f"{where}.paginator",
                    "a report job's result is one download: drop the paginator",
                )
            )
    if "graphql" in block:
        problems.extend(_graphql_problems(label, f"{where}.graphql", block))
    if "incremental" in block:
        problems.extend(incremental_problems(label, f"{where}.incremental", block["incremental"]))
    actions = block.get("response_actions")
    for index, entry in enumerate(actions if isinstance(actions, list) else []):
        path = f"{where}.response_actions[{index}]"
        problems.extend(_response_action_problems(label, path, entry))
    return problems


def unknown_keys(
    label: str, where: str, block: Mapping[str, Any], allowed: Collection[str]
) -> list[Problem]:
    """One problem per key of ``block`` not in ``allowed``, with the nearest and the list."""
    return [
        Problem(
            label,
            f"{where}.{key}",
            f"unknown key{did_you_mean(str(key), allowed)}; allowed: {', '.join(sorted(allowed))}",
        )
        for key in block
        if key not in allowed
    ]


def _block_problems(label: str, where: str, block: Any) -> list[Problem]:
    """A ``report_job`` block: a mapping of known keys, with numbers where numbers go."""
    if not isinstance(block, Mapping):
        return [Problem(label, where, "write a mapping such as {id_path: id, status_path: status}")]
    problems = unknown_keys(label, where, block, REPORT_JOB_KEYS)
    for key in ("interval_seconds", "timeout_seconds"):
        value = block.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            problems.append(Problem(label, f"{where}.{key}", "must be a positive number"))
    return problems


def _graphql_problems(label: str, where: str, endpoint: Mapping[str, Any]) -> list[Problem]:
    block = endpoint["graphql"]
    if not isinstance(block, Mapping):
        return [Problem(label, where, "write {query: ..., variables: {...}, connection: ...}")]
    problems = unknown_keys(label, where, block, GRAPHQL_KEYS)
    if not isinstance(block.get("query"), str) or not block.get("query"):
        problems.append(Problem(label, f"{where}.query", "is required (a string)"))
    connection = block.get("connection")
    if connection is not None and (not isinstance(connection, str) or not connection):
        problems.append(Problem(label, f"{where}.connection", "must be a dotted path (a string)"))
    if connection is None and "data_selector" not in endpoint:
        problems.append(
            Problem(
                label,
                where,
                "say where the records are: connection: <field> for a Relay connection (nodes "
                "and pageInfo), or the endpoint's data_selector (data.<field>)",
            )
        )
    if not isinstance(block.get("variables", {}), Mapping):
        problems.append(Problem(label, f"{where}.variables", "must be a mapping"))
    endpoint_where = where[: -len(".graphql")]
    for key in ("json", "data"):
        if key in endpoint:
            problems.append(
                Problem(
                    label,
                    f"{endpoint_where}.{key}",
                    "the graphql block is the request's body: drop it, or drop the block and "
                    "write the body in json (literal braces doubled, as dlt requires)",
                )
            )
    if str(endpoint.get("method", "POST")).upper() != "POST":
        problems.append(Problem(label, f"{endpoint_where}.method", "a graphql request is a POST"))
    return problems


def _response_action_problems(label: str, where: str, entry: Any) -> list[Problem]:
    """dlt's entries and restsync's (:mod:`restsync_dagster.connector.extensions`) alike: a
    known action, and for restsync's, known keys and something to match."""
    if not isinstance(entry, Mapping):
        return []
    action = entry.get("action")
    if isinstance(action, str) and action not in BODY_ACTIONS:
        return [
            Problem(
                label,
                f"{where}.action",
                f"unknown action {action!r}"
                f"{did_you_mean(action, BODY_ACTIONS)}; one of: {', '.join(BODY_ACTIONS)}",
            )
        ]
    if not is_body_action(entry):
        return []
    problems = unknown_keys(label, where, entry, BODY_ACTION_KEYS)
    for key in ("json_path", "message_path", "content"):
        if key in entry and not isinstance(entry[key], str):
            problems.append(Problem(label, f"{where}.{key}", "must be a string"))
    if not any(key in entry for key in ("json_path", "content", "status_code")):
        problems.append(
            Problem(
                label, where, "say what to match: json_path (and value), content or status_code"
            )
        )
    return problems
