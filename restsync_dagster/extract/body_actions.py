"""Errors inside a 200: response actions that match the body and retry, fail or ignore.

dlt's ``response_actions`` match a status and a substring of the body, and can only ``ignore``.
restsync's entries (:mod:`restsync_dagster.connector.extensions`) also match a JSON path, with or
without a value, and can ``retry`` (dlt's retrying client asks again, with the connector's
backoff) or ``fail`` with the API's own message::

    response_actions:
      - {json_path: error.code, value: RATE_LIMITED, action: retry}
      - {json_path: error, action: fail, message_path: error.message}
      - {content: "no results", action: ignore}

Each entry becomes a :class:`BodyActionHook`, a callable response action, in the place it has in
the file (a public form of dlt's ``response_actions``). A retry raises
:class:`~restsync_dagster.failures.errors.ApiBodyRetriesExhausted` inside the attempt, which the
session's ``retry_condition`` (:func:`retry_on_body`) hands to dlt's retry; a fail raises
:class:`~restsync_dagster.failures.errors.ApiBodyError`. Both name the resource and the page's
redacted URL; what they carry is masked like every other failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from requests import Response

from restsync_dagster.connector.extensions import is_body_action
from restsync_dagster.failures.errors import ApiBodyError, ApiBodyRetriesExhausted
from restsync_dagster.failures.redaction import redact_url

_MISSING = object()


@dataclass(frozen=True)
class BodyAction:
    """One restsync response action, as the file writes it."""

    action: str
    json_path: str | None = None
    value: Any = _MISSING
    content: str | None = None
    message_path: str | None = None
    status_code: int | None = None

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> BodyAction:
        """The action a ``response_actions`` entry describes."""
        return cls(
            action=str(entry.get("action", "fail")),
            json_path=entry.get("json_path"),
            value=entry.get("value", _MISSING),
            content=entry.get("content"),
            message_path=entry.get("message_path"),
            status_code=entry.get("status_code"),
        )

    def matches(self, response: Response) -> bool:
        """Whether this action applies to ``response`` (a 2xx unless ``status_code`` says)."""
        if self.status_code is not None:
            if response.status_code != self.status_code:
                return False
        elif not 200 <= response.status_code < 300:
            return False
        if self.content is not None and self.content not in response.text:
            return False
        if self.json_path is None:
            return True
        found = _values(response, self.json_path)
        if self.value is _MISSING:
            return any(v not in (None, False, "", [], {}) for v in found)
        return any(v == self.value for v in found)

    def message(self, response: Response) -> str:
        """The API's own words: ``message_path``'s value, else the matched value, else the body."""
        for path in (self.message_path, self.json_path):
            if path:
                found = [v for v in _values(response, path) if v not in (None, "")]
                if found:
                    return _short(found[0] if isinstance(found[0], str) else repr(found[0]))
        return _short(response.text)


class BodyActionHook:
    """A callable dlt response action that applies one :class:`BodyAction` for ``resource``."""

    def __init__(self, resource: str, action: BodyAction) -> None:
        self.resource = resource
        self.action = action

    def __call__(self, response: Response, *args: Any, **kwargs: Any) -> None:
        if not self.action.matches(response):
            return
        if self.action.action == "ignore":
            from dlt.sources.helpers.rest_client.exceptions import IgnoreResponseException

            raise IgnoreResponseException
        url = redact_url(response.url or "")
        error = ApiBodyRetriesExhausted if self.action.action == "retry" else ApiBodyError
        raise error(self.resource, url, self.action.message(response))


def retry_on_body(response: Response | None, exception: BaseException | None) -> bool:
    """dlt's ``retry_condition``: ask again when a body said to (an ``action: retry``)."""
    return isinstance(exception, ApiBodyRetriesExhausted)


def install_body_actions(resource: str, endpoint: dict[str, Any]) -> None:
    """Replace restsync's entries of ``endpoint['response_actions']`` by their hooks, in place."""
    actions = endpoint.get("response_actions")
    if not isinstance(actions, list) or not any(is_body_action(a) for a in actions):
        return
    endpoint["response_actions"] = [
        BodyActionHook(resource, BodyAction.of(a)) if is_body_action(a) else a for a in actions
    ]


def _values(response: Response, path: str) -> list[Any]:
    from dlt.common import jsonpath

    try:
        return list(jsonpath.find_values(path, response.json()))
    except ValueError:  # not JSON: a JSON path finds nothing
        return []


def _short(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= 200 else line[:197] + "..."
