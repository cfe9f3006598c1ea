"""Keep credentials out of everything that leaves the process.

Two layers: :func:`redact_url` masks credential-looking query parameters and ``user:password@``
in URLs by *name*, and :class:`Redactor` masks the values the project itself injected, by *value*,
wherever they appear (error messages, metadata, log lines), whatever the parameter was called.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "***"
#: Shorter values are not registered: masking every "ab" in a message would destroy it.
MIN_SECRET_LENGTH = 4

#: Names of parameters, headers and config keys whose value is a credential, lower-cased with
#: '-' read as '_'. The one list: validation refuses literals under these names, and redaction
#: masks their values in URLs.
CREDENTIAL_NAMES = frozenset(
    {
        "api_key", "apikey", "key", "token", "api_token", "access_token", "refresh_token",
        "auth_token", "session_token", "id_token", "password", "passwd", "pwd", "secret",
        "client_secret", "private_key", "x_api_key", "authorization", "proxy_authorization",
        "auth", "appid", "app_key", "signature", "sig",
    }
)  # fmt: skip


_CREDENTIAL_SUFFIXES = ("_token", "_secret", "_password", "_api_key", "_apikey")


def is_credential_name(name: str) -> bool:
    """Whether a parameter, header or key called ``name`` holds a credential."""
    name = name.lower().replace("-", "_")
    return name in CREDENTIAL_NAMES or name.endswith(_CREDENTIAL_SUFFIXES)


def redact_url(url: str) -> str:
    """``url`` with credential-looking query values and any ``user:password@`` masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        masked = [(k, MASK if is_credential_name(k) else v) for k, v in pairs]
        query = urlencode(masked, safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


#: How much of an error response's body a message shows.
BODY_EXCERPT_CHARS = 500

_URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>]+")
_NAMED_VALUE_IN_TEXT = re.compile(
    r"""(?P<name>[A-Za-z0-9_-]+)(?P<sep>["']?\s*[:=]\s*["']?)(?P<value>[^\s"'&,;}]+)"""
)


def redact_body(text: str, limit: int = BODY_EXCERPT_CHARS) -> str:
    """An API's error body made safe to show, by *name*: the values of credential-named keys of
    a JSON body, credential query parameters of the URLs in it, and ``name=value`` or
    ``name: value`` pairs under a credential name in plain text are masked; whitespace is folded
    and the result cut to ``limit`` characters. Secret values the run injected are masked by
    value afterwards (:class:`Redactor`), wherever the API put them."""
    try:
        shown = json.dumps(_masked_json(json.loads(text)), ensure_ascii=False)
    except ValueError:
        shown = " ".join(text.split())
        shown = _NAMED_VALUE_IN_TEXT.sub(
            lambda m: (
                m.group(0)
                if not is_credential_name(m.group("name"))
                else f"{m.group('name')}{m.group('sep')}{MASK}"
            ),
            shown,
        )
    shown = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), shown)
    return shown if len(shown) <= limit else shown[: limit - 1].rstrip() + "…"


def _masked_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: MASK if is_credential_name(str(k)) and value[k] else _masked_json(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked_json(v) for v in value]
    return value


class Redactor:
    """Masks known secret values (and their URL- and JSON-encoded forms) in text and metadata."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Register one secret value."""
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            return
        forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
        with self._lock:
            self._forms |= {f for f in forms if len(f) >= MIN_SECRET_LENGTH}
            # Longest first, so a secret that contains another is masked whole.
            alternatives = sorted(self._forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(f) for f in alternatives))

    def __bool__(self) -> bool:
        return bool(self._forms)

    def redact(self, text: str) -> str:
        """``text`` with every registered secret replaced by ``***``."""
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def redact_value(self, value: Any) -> Any:
        """Redact strings inside nested dicts, lists and tuples; other values are kept."""
        if isinstance(value, str):
            return self.redact(value)
        # Exact types only: records and named tuples (Dagster metadata values) are left whole.
        if type(value) is dict:
            return {self.redact_value(k): self.redact_value(v) for k, v in value.items()}
        if type(value) in (list, tuple):
            return type(value)(self.redact_value(v) for v in value)
        return value

    def contains_secret(self, text: str) -> bool:
        """True when ``text`` holds a registered secret in any form."""
        pattern = self._pattern
        return bool(pattern is not None and text and pattern.search(text))


class _RedactingStream:
    """A text stream that masks secrets before writing to the stream it wraps."""

    def __init__(self, stream: Any, redactor: Redactor) -> None:
        self._stream = stream
        self._redactor = redactor

    def write(self, text: str) -> int:
        self._stream.write(self._redactor.redact(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def redacted_output(redactor: Redactor) -> Iterator[None]:
    """While active, mask ``redactor``'s secrets in every log record this process creates
    (message, arguments and traceback text, whatever logger and handler) and in everything
    written to ``sys.stdout``/``sys.stderr``.

    Redaction by construction: libraries log URLs with keys under names nobody listed (urllib3
    at DEBUG, dlt at INFO, ``api_token`` parameters...); masking the known values where text is
    produced catches them all.
    """
    if not redactor:
        yield
        return
    previous_factory = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous_factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the logging module
            return record
        if redactor.contains_secret(message):
            record.msg, record.args = redactor.redact(message), None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redactor.redact(text), None
        return record

    logging.setLogRecordFactory(factory)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = _RedactingStream(stdout, redactor)  # type: ignore[assignment]
    sys.stderr = _RedactingStream(stderr, redactor)  # type: ignore[assignment]
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous_factory)
        sys.stdout, sys.stderr = stdout, stderr
