"""``{{ env.NAME }}`` references in connector files: parsing and rendering.

Grammar, inside any YAML string::

    {{ env.NAME }}                       # required variable
    {{ env.NAME | default('fallback') }} # optional, with a fallback (never for secrets)

References are parsed when connector files are loaded (so a malformed one is a load error naming
its key path) and rendered when a run starts (so definitions load with no variable set).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from restsync_dagster.connector.extensions import is_verbatim
from restsync_dagster.connector.tree import map_leaves
from restsync_dagster.failures.errors import MissingEnvVarError, TemplateError

__all__ = [
    "EnvRef",
    "MissingEnvVarError",
    "TemplateError",
    "find_refs",
    "has_refs",
    "render",
    "render_tree",
]

_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_REFERENCE = re.compile(
    r"""^\s*env\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*
        (?:\|\s*default\(\s*(?:'(?P<single>[^']*)'|"(?P<double>[^"]*)")\s*\)\s*)?$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class EnvRef:
    """One ``{{ env.NAME }}`` occurrence."""

    name: str
    default: str | None = None

    @property
    def required(self) -> bool:
        """True when the variable has no fallback."""
        return self.default is None


def find_refs(text: str) -> list[EnvRef]:
    """Parse every ``{{ ... }}`` of ``text``.

    Raises:
        TemplateError: a ``{{ ... }}`` is not ``env.NAME`` (with an optional default), or a ``{{``
            or ``}}`` is left unbalanced.
    """
    refs: list[EnvRef] = []
    for match in _TEMPLATE.finditer(text):
        inner = match.group(1)
        ref = _REFERENCE.match(inner)
        if ref is None:
            raise TemplateError(
                f"malformed reference {match.group(0)!r}: write {{{{ env.NAME }}}} or "
                f"{{{{ env.NAME | default('value') }}}}"
            )
        default = ref.group("single") if ref.group("single") is not None else ref.group("double")
        refs.append(EnvRef(ref.group("name"), default))
    rest = _TEMPLATE.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise TemplateError(f"unbalanced '{{{{' or '}}}}' in {text!r}")
    return refs


def has_refs(text: str) -> bool:
    """True when ``text`` contains at least one ``{{ ... }}``."""
    return _TEMPLATE.search(text) is not None


def render(text: str, env: Mapping[str, str]) -> str:
    """Replace every reference of ``text`` with its value from ``env`` (or its default).

    Raises:
        MissingEnvVarError: a required variable is absent from ``env``.
    """

    def substitute(match: re.Match[str]) -> str:
        ref = _REFERENCE.match(match.group(1))
        if ref is None:  # load-time validation rejects this; keep render total anyway
            raise TemplateError(f"malformed reference {match.group(0)!r}")
        name = ref.group("name")
        if name in env:
            return env[name]
        default = ref.group("single") if ref.group("single") is not None else ref.group("double")
        if default is None:
            raise MissingEnvVarError(name)
        return default

    return _TEMPLATE.sub(substitute, text)


def render_tree(value: Any, env: Mapping[str, str]) -> Any:
    """:func:`render` every string inside nested dicts and lists; other values, and strings
    sent as written (a GraphQL query), are kept."""
    return map_leaves(
        value,
        lambda keys, leaf: (
            render(leaf, env)
            if isinstance(leaf, str) and "{{" in leaf and not is_verbatim(keys)
            else leaf
        ),
    )
