"""The connector's ``auth`` block, from the document's security schemes.

Supported, in dlt's vocabulary, every secret an ``{{ env.<NAME>_... }}`` reference (for a
multi-tenant server, ``{{ tenant.API_KEY }}`` and so on: each tenant's own variables):

==========================================  ==========================================================
scheme                                      dlt auth
==========================================  ==========================================================
``apiKey`` in query or header               ``api_key`` with ``<NAME>_API_KEY``
``http`` ``bearer``                         ``bearer`` with ``<NAME>_TOKEN``
``http`` ``basic`` (Swagger 2 ``basic``)    ``http_basic`` with ``<NAME>_USERNAME``, ``<NAME>_PASSWORD``
``oauth2`` client credentials               ``oauth2_client_credentials`` with ``<NAME>_CLIENT_ID``,
(Swagger 2 ``application``)                 ``<NAME>_CLIENT_SECRET``
==========================================  ==========================================================

The scheme is the first supported one the list endpoints ask for; failing that, another
supported scheme of the document; failing that, an OAuth2 flow a sync cannot run itself
(authorization code, implicit, password) or OpenID Connect becomes a bearer token the user
obtains (``<NAME>_ACCESS_TOKEN``). Each fallback is said in a ``# guessed:`` comment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from restsync_dagster.openapi.document import Document
from restsync_dagster.openapi.endpoints import ListEndpoint
from restsync_dagster.openapi.render import env_ref


@dataclass
class AuthChoice:
    """The ``auth`` block (``None``: no authentication) and why it was chosen."""

    config: dict[str, Any] | None
    guesses: list[str] = field(default_factory=list)
    #: What the document states (not guessed), for a plain comment.
    facts: list[str] = field(default_factory=list)


def choose_auth(
    document: Document, endpoints: Sequence[ListEndpoint], prefix: str, *, tenants: bool = False
) -> AuthChoice:
    """The auth config for ``endpoints``; secrets are read from ``<prefix>_...`` variables, or
    with ``tenants`` from each tenant's own (``{{ tenant.API_KEY }}``)."""
    ref = _tenant_ref if tenants else _env_ref(prefix)
    schemes = document.security_schemes()
    wanted = list(_requirements(document, endpoints))
    if not wanted:
        if not schemes:
            return AuthChoice(None, facts=["the document declares no authentication"])
        wanted = [[name] for name in schemes]
    if all(not names for names in wanted):
        return AuthChoice(None, facts=["the list endpoints need no authentication"])
    for names in wanted:
        for name in names:
            config = _supported(schemes.get(name), ref)
            if config is not None:
                others = [n for n in names if n != name]
                guesses = (
                    [f"the document also asks for {', '.join(others)}, which is not set"]
                    if others
                    else []
                )
                return AuthChoice(config, guesses, [f"the document's security scheme {name!r}"])
    asked = ", ".join(dict.fromkeys(n for names in wanted for n in names))
    for name, scheme in schemes.items():
        config = _supported(scheme, ref)
        if config is not None:
            return AuthChoice(
                config,
                [f"the list endpoints ask for {asked}, which a sync cannot use; {name!r} can"],
            )
    for names in wanted:
        for name in names:
            scheme = schemes.get(name) or {}
            if scheme.get("type") in ("oauth2", "openIdConnect"):
                token = ref("ACCESS_TOKEN")
                where = f"{prefix}_<TENANT>_ACCESS_TOKEN" if tenants else f"{prefix}_ACCESS_TOKEN"
                return AuthChoice(
                    {"type": "bearer", "token": token},
                    [
                        f"{name!r} is an OAuth2 flow a sync cannot run itself: obtain an access "
                        f"token and set {where}"
                    ],
                )
    return AuthChoice(None, [f"unsupported authentication ({asked}): set 'auth' by hand"])


def _requirements(document: Document, endpoints: Iterable[ListEndpoint]) -> Iterable[list[str]]:
    """Each alternative security requirement of the endpoints (operation's, else the
    document's), as the scheme names it needs together; an empty list allows anonymous use."""
    seen: set[tuple[str, ...]] = set()
    for endpoint in endpoints:
        requirements = endpoint.operation.get("security")
        if requirements is None:
            requirements = document.raw.get("security") or []
        for requirement in requirements:
            names = tuple(str(n) for n in requirement) if isinstance(requirement, Mapping) else ()
            if names not in seen:
                seen.add(names)
                yield list(names)


def _env_ref(prefix: str) -> Callable[[str], str]:
    return lambda suffix: env_ref(f"{prefix}_{suffix}")


def _tenant_ref(suffix: str) -> str:
    return "{{ tenant.NAME }}".replace("NAME", suffix)


def _supported(
    scheme: Mapping[str, Any] | None, ref: Callable[[str], str]
) -> dict[str, Any] | None:
    if not scheme:
        return None
    kind = str(scheme.get("type") or "")
    if kind == "apiKey" and scheme.get("in") in ("query", "header") and scheme.get("name"):
        return {
            "type": "api_key",
            "name": str(scheme["name"]),
            "location": str(scheme["in"]),
            "api_key": ref("API_KEY"),
        }
    http_scheme = str(scheme.get("scheme") or "").lower()
    if (kind == "http" and http_scheme == "bearer") or kind == "bearer":
        return {"type": "bearer", "token": ref("TOKEN")}
    if (kind == "http" and http_scheme == "basic") or kind == "basic":
        return {
            "type": "http_basic",
            "username": ref("USERNAME"),
            "password": ref("PASSWORD"),
        }
    if kind == "oauth2":
        flows = scheme.get("flows") or {}
        flow = flows.get("clientCredentials") if isinstance(flows, dict) else None
        if flow is None and scheme.get("flow") == "application":  # Swagger 2
            flow = scheme
        if isinstance(flow, dict) and flow.get("tokenUrl"):
            return {
                "type": "oauth2_client_credentials",
                "access_token_url": str(flow["tokenUrl"]),
                "client_id": ref("CLIENT_ID"),
                "client_secret": ref("CLIENT_SECRET"),
            }
    return None
