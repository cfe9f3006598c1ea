"""``{{ env.NAME }}`` and ``{{ tenant.NAME }}`` references in connector files: parsing, binding
to one tenant, and rendering.

Grammar, inside any YAML string::

    {{ env.NAME }}                          # required variable
    {{ env.NAME | default('fallback') }}    # optional, with a fallback (never for secrets)
    {{ tenant.NAME }}                       # the running tenant's variable <prefix>NAME
    {{ tenant.NAME | default('fallback') }} # (a file with ``tenants:``; prefix SHOP_ACME_)
    {{ tenant.key }}                        # the running tenant's key itself (acme)

A tenant reference is bound before anything else (:func:`bind_tenant`): ``{{ tenant.API_KEY }}``
of tenant ``acme`` becomes ``{{ env.SHOP_ACME_API_KEY }}`` and ``{{ tenant.key }}`` becomes
``acme``; from then on a tenant's connector is an ordinary one. Rendering a tenant reference
that was never bound is an error, never a literal sent to the API.

References are parsed when connector files are loaded (so a malformed one is a load error naming
its key path) and rendered when a run starts (so definitions load with no variable set).

Doubled braces are dlt's syntax too: in the strings dlt formats before each request (an
endpoint's path, params, json, data and headers: :func:`~restsync_dagster.connector.extensions.
is_dlt_formatted`) ``{{`` and ``}}`` are literal braces (a GraphQL query in a JSON body is
written ``{{ allItems {{ id }} }}``) beside dlt's ``{placeholders}``; elsewhere dlt sends them
as written. So restsync claims only a ``{{`` followed by the word ``env`` or ``tenant`` (any case, so that
``{{ ENV.X }}`` is reported rather than sent), and leaves every other brace to dlt, untouched.
A value rendered where dlt formats has its braces doubled, so dlt sends it as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from restsync_dagster.connector.extensions import is_dlt_formatted, is_verbatim
from restsync_dagster.connector.tree import map_leaves
from restsync_dagster.failures.errors import MissingEnvVarError, TemplateError

__all__ = [
    "TENANT_KEY",
    "EnvRef",
    "MissingEnvVarError",
    "TemplateError",
    "bind_tenant",
    "bind_tenant_tree",
    "find_refs",
    "has_refs",
    "render",
    "render_tree",
]

#: ``{{ tenant.key }}``: the tenant's key, not a variable.
TENANT_KEY = "key"

#: A ``{{`` opening restsync's ``env`` or ``tenant``, up to its first ``}}``; any other ``{{``
#: is dlt's.
_TEMPLATE = re.compile(r"\{\{(?=\s*(?:env|tenant)\b)(.*?)\}\}", re.DOTALL | re.IGNORECASE)
_OPENING = re.compile(r"\{\{\s*(?:env|tenant)\b", re.IGNORECASE)
_REFERENCE = re.compile(
    r"""^\s*(?P<scope>env|tenant)\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*
        (?:\|\s*default\(\s*(?:'(?P<single>[^']*)'|"(?P<double>[^"]*)")\s*\)\s*)?$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class EnvRef:
    """One ``{{ env.NAME }}`` occurrence, or (``tenant``) one ``{{ tenant.NAME }}``, whose
    variable is the running tenant's ``<prefix>NAME``, or ``{{ tenant.key }}``."""

    name: str
    default: str | None = None
    tenant: bool = False

    @property
    def required(self) -> bool:
        """True when the variable has no fallback."""
        return self.default is None

    @property
    def is_tenant_key(self) -> bool:
        """True for ``{{ tenant.key }}``: the tenant's key itself, no variable."""
        return self.tenant and self.name == TENANT_KEY


def find_refs(text: str) -> list[EnvRef]:
    """Parse every reference of ``text`` (a ``{{`` opening ``env`` or ``tenant``; other braces
    are dlt's).

    Raises:
        TemplateError: a reference is not ``env.NAME`` or ``tenant.NAME`` (with an optional
            default) or ``tenant.key`` (without one), or has no closing ``}}``.
    """
    refs: list[EnvRef] = []
    for match in _TEMPLATE.finditer(text):
        ref = _REFERENCE.match(match.group(1))
        if ref is None:
            raise TemplateError(
                f"malformed reference {match.group(0)!r}: write {{{{ env.NAME }}}}, "
                f"{{{{ env.NAME | default('value') }}}}, {{{{ tenant.NAME }}}} or "
                f"{{{{ tenant.key }}}}"
            )
        default = ref.group("single") if ref.group("single") is not None else ref.group("double")
        found = EnvRef(ref.group("name"), default, tenant=ref.group("scope") == "tenant")
        if found.is_tenant_key and default is not None:
            raise TemplateError(
                f"{match.group(0)!r}: {{{{ tenant.key }}}} is the tenant's key, always set; "
                "drop '| default(...)'"
            )
        refs.append(found)
    opened = _OPENING.search(_TEMPLATE.sub("", text))
    if opened is not None:
        raise TemplateError(f"{opened.group(0)!r} has no closing '}}}}' in {text!r}")
    return refs


def has_refs(text: str) -> bool:
    """True when ``text`` contains at least one ``{{ env...}}`` or ``{{ tenant...}}``."""
    return _TEMPLATE.search(text) is not None


def render(text: str, env: Mapping[str, str], dlt_formatted: bool = False) -> str:
    """Replace every reference of ``text`` with its value from ``env`` (or its default).

    Args:
        text: One string of a connector file.
        env: The variables' values.
        dlt_formatted: Whether dlt formats the string: the value's braces are then doubled, and
            dlt's formatting turns them back into the value as written.

    Raises:
        MissingEnvVarError: a required variable is absent from ``env``.
    """

    def substitute(match: re.Match[str]) -> str:
        ref = _REFERENCE.match(match.group(1))
        if ref is None:  # load-time validation rejects this; keep render total anyway
            raise TemplateError(f"malformed reference {match.group(0)!r}")
        name = ref.group("name")
        if ref.group("scope") == "tenant":
            raise TemplateError(
                f"{match.group(0)!r} is not bound to a tenant: a connector with tenants runs "
                "one tenant at a time"
            )
        if name in env:
            value = env[name]
        else:
            value = ref.group("single") if ref.group("single") is not None else ref.group("double")
            if value is None:
                raise MissingEnvVarError(name)
        return value.replace("{", "{{").replace("}", "}}") if dlt_formatted else value

    return _TEMPLATE.sub(substitute, text)


def render_tree(value: Any, env: Mapping[str, str]) -> Any:
    """:func:`render` every string inside ``source:``'s nested dicts and lists; other values,
    and strings sent as written (a GraphQL query), are kept."""
    return map_leaves(
        value,
        lambda keys, leaf: (
            render(leaf, env, is_dlt_formatted(keys))
            if isinstance(leaf, str) and "{{" in leaf and not is_verbatim(keys)
            else leaf
        ),
    )


def bind_tenant(text: str, prefix: str, key: str) -> str:
    """Bind the tenant references of ``text`` to tenant ``key``: ``{{ tenant.NAME ... }}`` becomes
    ``{{ env.<prefix>NAME ... }}`` (its default kept) and ``{{ tenant.key }}`` becomes ``key``
    (letters, digits, ``_`` and ``-``: nothing dlt would format). ``{{ env... }}`` and dlt's
    braces are kept as written."""

    def substitute(match: re.Match[str]) -> str:
        ref = _REFERENCE.match(match.group(1))
        if ref is None or ref.group("scope") != "tenant":
            return match.group(0)
        if ref.group("name") == TENANT_KEY:
            return key
        rest = match.group(1)[ref.end("name") :]
        return "{{ env." + prefix + ref.group("name") + rest + "}}"

    return _TEMPLATE.sub(substitute, text)


def bind_tenant_tree(value: Any, prefix: str, key: str) -> Any:
    """:func:`bind_tenant` every string inside ``source:``'s nested dicts and lists (strings sent
    as written are kept)."""
    return map_leaves(
        value,
        lambda keys, leaf: (
            bind_tenant(leaf, prefix, key)
            if isinstance(leaf, str) and "{{" in leaf and not is_verbatim(keys)
            else leaf
        ),
    )
