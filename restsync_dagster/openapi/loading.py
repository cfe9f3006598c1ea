"""Reading an OpenAPI document from a file or an ``http(s)`` URL, as JSON or YAML.

A URL is fetched with ``requests`` (one GET, 30 s timeout, HTTP 200 only). Messages call the
document by its file name, or by its URL without the query string (which may hold a key).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from restsync_dagster.openapi.document import Document
from restsync_dagster.openapi.errors import OpenApiError

# libyaml's C parser when PyYAML has it: several times faster on a large document.
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FETCH_TIMEOUT_SECONDS = 30


def load_document(source: str) -> Document:
    """Read ``source`` (a path or an ``http(s)`` URL) as an OpenAPI 3 or Swagger 2 document.

    Raises:
        OpenApiError: the source cannot be read or parsed, is not OpenAPI, or has a ``$ref``
            that points nowhere.
    """
    label = _label(source)
    text = _read(source, label)
    try:
        # JSON first: a large JSON document parses ~10x faster with json than with YAML.
        raw = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, _YamlLoader)
    except (ValueError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise OpenApiError(f"{label}: not JSON or YAML{line}: {_first_line(exc)}") from None
    document = Document(raw, label)
    document.check_refs()
    return document


def _label(source: str) -> str:
    """What messages call the document: a URL without its query, or a file's name."""
    if source.startswith(("http://", "https://")):
        parts = urlsplit(source)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
    return Path(source).name or source


def _read(source: str, label: str) -> str:
    if source.startswith(("http://", "https://")):
        import requests

        try:
            response = requests.get(source, timeout=_FETCH_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise OpenApiError(f"{label}: cannot fetch the document: {_first_line(exc)}") from None
        if response.status_code != 200:
            raise OpenApiError(
                f"{label}: fetching the document answered HTTP {response.status_code}"
            )
        return response.text
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OpenApiError(f"{label}: cannot read the document: {reason}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
