"""``{{ env.NAME }}`` references in connector files: parsing and rendering.

Grammar, inside any YAML string::

    {{ env.NAME }}                       # required variable
    {{ env.NAME | default('fallback') }} # optional, with a fallback (never for secrets)

References are parsed when connector files are loaded (so a malformed one is a load error naming
its key path) and rendered when a run starts (so definitions load with no variable set).

Doubled braces are dlt's syntax too: in the strings dlt formats before each request (an
endpoint's path, params, json, data and headers: :func:`~restsync_dagster.connector.extensions.
is_dlt_formatted`) ``{{`` and ``}}`` are literal braces (a GraphQL query in a JSON body is
written ``{{ allItems {{ id }} }}``) beside dlt's ``{placeholders}``; elsewhere dlt sends them
as written. So restsync claims only a ``{{`` followed by the word ``env`` (any case, so that
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
    "EnvRef",
    "MissingEnvVarError",
    "TemplateError",
    "find_refs",
    "has_refs",
    "render",
    "render_tree",
]

#: A ``{{`` opening restsync's ``env``, up to its first ``}}``; any other ``{{`` is dlt's.
_TEMPLATE = re.compile(r"\{\{(?=\s*env\b)(.*?)\}\}", re.DOTALL | re.IGNORECASE)
_OPENING = re.compile(r"\{\{\s*env\b", re.IGNORECASE)
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
    """Parse every reference of ``text`` (a ``{{`` opening ``env``; other braces are dlt's).

    Raises:
        TemplateError: a reference is not ``env.NAME`` (with an optional default), or has no
            closing ``}}``.
    """
    refs: list[EnvRef] = []
    for match in _TEMPLATE.finditer(text):
        ref = _REFERENCE.match(match.group(1))
        if ref is None:
            raise TemplateError(
                f"malformed reference {match.group(0)!r}: write {{{{ env.NAME }}}} or "
                f"{{{{ env.NAME | default('value') }}}}"
            )
        default = ref.group("single") if ref.group("single") is not None else ref.group("double")
        refs.append(EnvRef(ref.group("name"), default))
    opened = _OPENING.search(_TEMPLATE.sub("", text))
    if opened is not None:
        raise TemplateError(f"{opened.group(0)!r} has no closing '}}}}' in {text!r}")
    return refs


def has_refs(text: str) -> bool:
    """True when ``text`` contains at least one ``{{ env...}}``."""
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
