"""``auth: {type: oauth2_refresh_token, ...}``: an access token obtained from a refresh token.

The OAuth 2.0 refresh-token grant (RFC 6749 §6): ``POST access_token_url`` with
``grant_type=refresh_token``, the refresh token and the client's id and secret; the answer's
``access_token`` is sent as ``Authorization: Bearer`` until ``expires_in`` runs out, then a new
one is asked for. A refresh token the server rotates (a new ``refresh_token`` in the answer) is
used for the rest of the run. :class:`OAuth2RefreshToken` is dlt's ``OAuth2ClientCredentials``
with that grant; it asks for tokens through the run's session, so the token request has the
connector's retries, limits and masking.

The auth is handed to dlt as an instance (dlt's config takes ``AuthConfigBase`` instances as
they are) rather than registered by name with ``register_auth``: registering changes dlt's
process-wide map, and the connector floor validates files before any of this is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dlt.common.configuration.specs import configspec
from dlt.common.typing import TSecretStrValue
from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials

from restsync_dagster.connector.extensions import is_restsync_auth
from restsync_dagster.extract.pages import resource_entries


@configspec
class OAuth2RefreshToken(OAuth2ClientCredentials):
    """dlt's OAuth 2.0 client, with the refresh-token grant."""

    refresh_token: TSecretStrValue = None  # type: ignore[assignment]  # dlt's configspec style

    def build_access_token_request(self) -> dict[str, Any]:
        request = super().build_access_token_request()
        request["data"]["grant_type"] = "refresh_token"
        request["data"]["refresh_token"] = self.refresh_token
        return request

    def parse_access_token(self, response_json: Any) -> str:
        rotated = response_json.get("refresh_token") if isinstance(response_json, dict) else None
        if rotated:
            self.refresh_token = rotated
        return super().parse_access_token(response_json)


def refresh_token_auth(config: Mapping[str, Any], session: Any) -> OAuth2RefreshToken:
    """The auth a rendered ``{type: oauth2_refresh_token, ...}`` block describes."""
    arguments = {k: v for k, v in config.items() if k != "type"}
    auth = OAuth2RefreshToken(session=session, **arguments)
    return auth.resolve()  # every field is given: nothing to look up in dlt's config providers


def install_auths(config: dict[str, Any], session: Any) -> None:
    """Replace restsync's auth blocks of a rendered ``source:`` by their instances, in place."""
    blocks = [config.get("client")]
    defaults = config.get("resource_defaults")
    blocks.append(defaults.get("endpoint") if isinstance(defaults, dict) else None)
    blocks += [entry.get("endpoint") for entry in resource_entries(config)]
    for block in blocks:
        if isinstance(block, dict) and is_restsync_auth(block.get("auth")):
            block["auth"] = refresh_token_auth(block["auth"], session)
