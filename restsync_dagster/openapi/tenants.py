"""Multi-tenant servers: a server URL whose variable names the account, e.g.
``https://{subdomain}.zendesk.com/api/v2`` or ``https://api.example.com/{tenant}/v1``.

An OpenAPI 3 server's variables are substituted into its URL; one named like an account
(:data:`TENANT_WORDS`) is the tenant. Its ``enum`` (made of valid tenant keys) becomes the
connector's static ``tenants.keys``; without one, tenants are ``dynamic: true`` (added with
``restsync tenants add``). The base URL carries the tenant as ``{{ tenant.key }}``, every other
variable its default, and the credentials become each tenant's own variables
(``{{ tenant.API_KEY }}``: ``<NAME>_<TENANT>_API_KEY``). Swagger 2 has no server variables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from restsync_dagster.openapi.document import Document

#: Words that mark a server variable as the account (compared with the variable's name
#: lower-cased, without ``-`` and ``_``; ``yourDomain`` and ``your-domain`` match ``domain``).
TENANT_WORDS = (
    "tenant",
    "account",
    "subdomain",
    "domain",
    "company",
    "organization",
    "organisation",
    "org",
    "workspace",
    "instance",
    "shop",
    "store",
    "site",
    "customer",
    "team",
)
#: A tenant key, as the connector file takes it.
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass
class TenantServer:
    """The tenant variable of the document's first server, and what the connector says of it."""

    variable: str
    base_url: str
    tenants: dict[str, Any]
    comments: list[str] = field(default_factory=list)


def tenant_server(document: Document) -> TenantServer | None:
    """The first server's tenant variable, or None when its URL carries no account."""
    if document.version != 3:
        return None
    servers = document.raw.get("servers") or []
    if not servers or not isinstance(servers[0], dict):
        return None
    url = str(servers[0].get("url") or "")
    variables = servers[0].get("variables") or {}
    if not isinstance(variables, dict):
        return None
    chosen = next((str(n) for n in variables if f"{{{n}}}" in url and is_tenant_word(str(n))), None)
    if chosen is None:
        return None
    for name, variable in variables.items():
        if str(name) != chosen and isinstance(variable, dict) and "default" in variable:
            url = url.replace("{" + str(name) + "}", str(variable["default"]))
    base_url = url.replace("{" + chosen + "}", "{{ tenant.key }}").rstrip("/")
    spec = variables[chosen] if isinstance(variables[chosen], dict) else {}
    enum = [str(v) for v in spec.get("enum") or []]
    comments = [
        f"the server URL's variable {{{chosen}}} names the account: each tenant is one, "
        "{{ tenant.key }} in the base URL"
    ]
    if enum and all(_KEY.match(v) for v in enum):
        tenants: dict[str, Any] = {"keys": enum}
        comments.append(f"guessed: the tenants are {{{chosen}}}'s allowed values")
    else:
        tenants = {"dynamic": True}
        if enum:
            comments.append(
                f"guessed: {{{chosen}}}'s allowed values are not tenant keys (lowercase "
                "a-z 0-9 _ -), so tenants are added at run time: restsync tenants add"
            )
        else:
            comments.append("tenants are added at run time: restsync tenants add <name> <key>")
    return TenantServer(chosen, base_url, tenants, comments)


def is_tenant_word(name: str) -> bool:
    """Whether a server variable's name says it is the account."""
    folded = re.sub(r"[-_]", "", name.lower())
    return any(folded.startswith(word) or folded.endswith(word) for word in TENANT_WORDS)
