"""Build the real dlt resources of a ``source:`` offline, to catch what dlt only catches then.

Every required ``{{ env.NAME }}`` is replaced by a placeholder (a default is used as written),
then dlt's own ``rest_api_resources`` builds the resources: no request is sent (dlt's resources
are lazy) and no secret is needed. Whatever dlt raises becomes one :class:`Problem` line naming
the resource when dlt's message does. restsync's own rules
(:mod:`restsync_dagster.connector.source_rules`) word the common cases first; this is the net
under them, so ``restsync validate`` refuses every file dlt would refuse at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from restsync_dagster.connector.extensions import is_verbatim
from restsync_dagster.connector.problems import Problem
from restsync_dagster.connector.templates import bind_tenant_tree, find_refs, render_tree
from restsync_dagster.connector.tree import leaves

PLACEHOLDER = "restsync-placeholder"
PLACEHOLDER_TENANT = "tenant"
PLACEHOLDER_TENANT_PREFIX = "RESTSYNC_PLACEHOLDER_TENANT_"
_RESOURCE_IN_MESSAGE = re.compile(r"resource [`']([A-Za-z_]\w*)[`']")


def placeholder_env(source: Mapping[str, Any]) -> dict[str, str]:
    """A placeholder for every required variable ``source`` references."""
    names: set[str] = set()
    for keys, leaf in leaves(source):
        if isinstance(leaf, str) and "{{" in leaf and not is_verbatim(keys):
            names.update(
                ref.name for ref in find_refs(leaf) if ref.default is None and not ref.tenant
            )
    return dict.fromkeys(sorted(names), PLACEHOLDER)


def dry_build_problems(label: str, source: Mapping[str, Any]) -> list[Problem]:
    """What dlt refuses when it builds ``source`` (callables imported, restsync keys removed).

    Returns:
        One problem, or none.
    """
    import graphlib

    from dlt.common.configuration.exceptions import ConfigFieldMissingException
    from dlt.common.exceptions import DltException
    from dlt.sources.rest_api import rest_api_resources

    # A tenant's references are bound as a run binds them (connector/tenants.py), to a
    # placeholder tenant: dlt then builds what any one tenant's run would build.
    source = bind_tenant_tree(source, PLACEHOLDER_TENANT_PREFIX, PLACEHOLDER_TENANT)
    config = render_tree(source, placeholder_env(source))
    try:
        rest_api_resources(config)  # type: ignore[arg-type]
    except ConfigFieldMissingException as exc:
        fields = ", ".join(str(f) for f in getattr(exc, "missing_fields", []) or ["?"])
        return [
            Problem(
                label,
                "source.client.auth",
                f"the auth needs {fields}: write '{{{{ env.NAME }}}}' for each",
            )
        ]
    except (ValueError, TypeError, KeyError, AttributeError, graphlib.CycleError,
            DltException) as exc:  # fmt: skip
        return [Problem(label, _where(exc, source), f"{_one_line(exc)} (dlt, building the source)")]
    return []


def _where(exc: BaseException, source: Mapping[str, Any]) -> str:
    match = _RESOURCE_IN_MESSAGE.search(str(exc))
    if match is not None:
        for index, entry in enumerate(source.get("resources") or []):
            name = entry if isinstance(entry, str) else entry.get("name")
            if name == match.group(1):
                return f"source.resources[{index}]"
    return "source"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.replace("`", "'")
    return text if len(text) <= 300 else text[:297] + "..."
