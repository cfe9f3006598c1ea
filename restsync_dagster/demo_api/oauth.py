"""OAuth 2.0 for the demo API: ``POST /oauth/token`` issues access tokens for a refresh token.

The refresh-token grant (RFC 6749 §6), form-encoded: ``grant_type=refresh_token``,
``refresh_token``, ``client_id``, ``client_secret``. The answer is ``{"access_token", "token_type":
"Bearer", "expires_in"}``, and a new ``refresh_token`` when rotation is on (the old one then stops
working). Every API endpoint accepts ``Authorization: Bearer <access token>`` beside the
``api_key`` parameter; an expired or unknown token answers 401.
"""

from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import parse_qsl


class TokenIssuer:
    """Access tokens for one client and its refresh token."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        expires_in: float,
        rotate: bool,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_token, self.expires_in, self.rotate = refresh_token, expires_in, rotate
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        #: Access tokens issued so far.
        self.issued = 0

    def issue(self, body: bytes) -> tuple[int, dict[str, object]]:
        """``(status, answer)`` for a token request's form body."""
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            if (form.get("client_id"), form.get("client_secret")) != (
                self.client_id,
                self.client_secret,
            ):
                return 401, {"error": "invalid_client"}
            if form.get("refresh_token") != self.refresh_token:
                # Echoing the token, as some servers do: the client must mask it.
                said = f"refresh token {form.get('refresh_token')!r} is not valid or has expired"
                return 400, {"error": "invalid_grant", "error_description": said}
            token = secrets.token_urlsafe(16)
            self._tokens[token] = time.monotonic() + self.expires_in
            self.issued += 1
            answer: dict[str, object] = {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
            }
            if self.rotate:
                self.refresh_token = secrets.token_urlsafe(16)
                answer["refresh_token"] = self.refresh_token
            return 200, answer

    def set_lifetime(self, expires_in: float) -> None:
        """Tokens issued from now on live ``expires_in`` seconds."""
        with self._lock:
            self.expires_in = expires_in

    def revoke(self) -> None:
        """Every access token issued so far stops working (answers 401) before it expires."""
        with self._lock:
            self._tokens.clear()

    def valid(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header holds a live access token."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        with self._lock:
            until = self._tokens.get(authorization[len("Bearer ") :])
        return until is not None and time.monotonic() < until
