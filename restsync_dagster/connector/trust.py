"""What a connector file may reach beyond its own API, under the deployment's
:class:`~restsync_dagster.settings.TrustPolicy`: which environment variables its ``{{ env.NAME }}``
may read, and which modules its processing-step callables may come from.

A file's author chooses its ``name``, its references and its callables; the deployment chooses
the policy. Each refusal is one :class:`Problem` naming the file, the key path, the connector and
the variable or callable. Callables are refused before anything is imported (importing a module
runs its code). Pure: no Dagster, no network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from restsync_dagster.connector.connector import Connector, EnvVarUse
from restsync_dagster.connector.problems import Problem, shown_path
from restsync_dagster.settings import TrustPolicy

__all__ = [
    "DEPLOYMENT_PREFIXES",
    "callable_refusal",
    "env_owner_problems",
    "env_policy_problems",
    "env_prefix",
    "not_owned_because",
]

#: Prefixes of the variables that configure the stack and the cloud it runs on: no connector owns
#: them, whatever its name (a connector called ``dagster_pg`` does not own DAGSTER_PG_PASSWORD).
DEPLOYMENT_PREFIXES = (
    "DAGSTER_",
    "RESTSYNC_",
    "DLT_",
    "AWS_",
    "AZURE_",
    "GOOGLE_",
    "GCP_",
    "KUBERNETES_",
)


def env_prefix(connector: str) -> str:
    """The prefix of the variables a connector owns: its name upper-cased, then ``_``
    (``shop_eu`` owns ``SHOP_EU_*``)."""
    return connector.upper() + "_"


def not_owned_because(name: str, connector: str) -> str | None:
    """Why ``connector`` does not own ``name`` by its prefix, or None when it does."""
    prefix = env_prefix(connector)
    if not name.startswith(prefix):
        return f"it reads only {prefix}* and the names its 'env:' lists"
    if "__" in name:
        return "a name with '__' is dlt's configuration (DESTINATION__..., SOURCES__...)"
    reserved = next((p for p in DEPLOYMENT_PREFIXES if name.startswith(p)), None)
    if reserved is not None:
        return f"{reserved}* belongs to the deployment, whatever a connector is called"
    return None


def env_policy_problems(
    label: str,
    connector: str,
    env_vars: Sequence[EnvVarUse],
    listed: Sequence[str],
    policy: TrustPolicy,
) -> list[Problem]:
    """One problem per variable ``connector`` reads or lists that ``policy`` does not give it.

    With ``policy.confine_env`` a connector reads its own variables (:func:`env_prefix`, minus
    :data:`DEPLOYMENT_PREFIXES` and dlt's ``__`` names), and the names its ``env:`` lists that
    ``RESTSYNC_SHARED_ENV_VARS`` allows.
    """
    if not policy.confine_env:
        return []
    problems = []
    shared = set(policy.shared_env_vars)
    for index, name in enumerate(listed):
        if name not in shared and not_owned_because(name, connector) is not None:
            allowed = ", ".join(policy.shared_env_vars) or "none"
            problems.append(
                Problem(
                    label,
                    f"env[{index}]",
                    f"connector {connector!r} may not read {name}: RESTSYNC_CONFINE_ENV is on and "
                    f"RESTSYNC_SHARED_ENV_VARS does not allow it (allowed: {allowed})",
                )
            )
    for use in env_vars:
        if use.name in listed:
            continue  # allowed if shared; refused above, once, where it is listed
        why = not_owned_because(use.name, connector)
        if why is not None:
            problems.append(
                Problem(
                    label,
                    use.key_paths[0],
                    f"connector {connector!r} may not read {use.name}: RESTSYNC_CONFINE_ENV is "
                    f"on and {why}",
                )
            )
    return problems


def env_owner_problems(
    connectors: Iterable[Connector], policy: TrustPolicy, others: Iterable[str] = ()
) -> list[Problem]:
    """Variables one of ``connectors`` reads by its prefix that belong to another loaded together
    (one of ``connectors``, or of ``others``: names declared elsewhere in the code location).

    ``shop`` owns ``SHOP_*``, but ``SHOP_EU_TOKEN`` is ``shop_eu``'s when both are loaded: a name
    belongs to the longest connector name that prefixes it. (Across two code locations restsync
    cannot see the other connector; see docs/security.md.)
    """
    if not policy.confine_env:
        return []
    connectors = list(connectors)
    names = {c.name for c in connectors} | set(others)
    problems = []
    for connector in connectors:
        for use in connector.env_vars:
            if use.name in connector.config.env:
                continue
            owner = _longest_owner(use.name, names)
            if owner is not None and owner != connector.name:
                problems.append(
                    Problem(
                        shown_path(connector.file),
                        use.key_paths[0],
                        f"connector {connector.name!r} may not read {use.name}: it belongs to "
                        f"connector {owner!r} ({env_prefix(owner)}*)",
                    )
                )
    return problems


def _longest_owner(name: str, connectors: Iterable[str]) -> str | None:
    owners = [c for c in connectors if name.startswith(env_prefix(c))]
    return max(owners, key=len) if owners else None


def callable_refusal(
    reference: str, connector: str | None, policy: TrustPolicy | None
) -> str | None:
    """Why ``policy`` refuses the callable ``package.module:function``, or None when it allows it.

    A module is allowed when it is one of ``RESTSYNC_ALLOWED_CALLABLE_MODULES`` or inside one
    (``mycompany.steps`` allows ``mycompany.steps.orders``, not ``mycompany.stepsx``).
    """
    allowed = policy.allowed_callable_modules if policy is not None else None
    if allowed is None:
        return None
    module = reference.partition(":")[0]
    if any(module == m or module.startswith(m + ".") for m in allowed):
        return None
    who = f"connector {connector!r}" if connector else "this connector"
    return (
        f"{who} may not call {reference!r}: module {module!r} is not in "
        f"RESTSYNC_ALLOWED_CALLABLE_MODULES ({', '.join(allowed) or 'none'})"
    )
