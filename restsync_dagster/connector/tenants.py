"""One connector file, many accounts: a connector with ``tenants:`` bound to one tenant.

A tenant's run works on :func:`for_tenant`'s connector: its ``{{ tenant.NAME }}`` references
bound to the tenant's variables (``SHOP_ACME_NAME``) and ``{{ tenant.key }}`` to its key, its
rate key the tenant's own, its dataset its own with ``tables: datasets``; its dlt pipeline and
locks follow :attr:`Connector.pipeline_scope`. From then on every later floor sees an ordinary
connector, whose variables are exactly the ones the tenant may read (:func:`tenant_variables`):
the tenant's own and the ``{{ env.NAME }}`` every tenant shares, never another tenant's.

Also here, the rules only tenants have: variables two tenants (or a tenant and the file's shared
``{{ env }}``) would both read, and a ``{{ tenant... }}`` in a file without ``tenants:``. Pure: no
Dagster, no network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from restsync_dagster import names
from restsync_dagster.connector.connector import Connector, EnvVarUse
from restsync_dagster.connector.extensions import is_verbatim
from restsync_dagster.connector.model import (
    TENANT_PLACEHOLDER,
    TenantsConfig,
    tenant_key_problem,
)
from restsync_dagster.connector.problems import Problem, shown_path
from restsync_dagster.connector.resources import resolve_resources
from restsync_dagster.connector.templates import TemplateError, bind_tenant_tree, find_refs
from restsync_dagster.connector.tree import key_path, leaves
from restsync_dagster.connector.trust import env_prefix, not_owned_because
from restsync_dagster.failures.errors import ConfigurationError
from restsync_dagster.settings import TrustPolicy

__all__ = [
    "RATE_KEY_VARIABLE",
    "for_tenant",
    "scope_clash_problems",
    "tenant_owner_problems",
    "tenant_prefix",
    "tenant_variable_problems",
    "tenant_variables",
    "tenants_of",
    "tenants_problems",
]

#: A tenant variable that, when set, names the rate key the tenant's requests spend (tenants
#: sharing one API key share its budget): ``SHOP_ACME_RATE_KEY=shop_agency``.
RATE_KEY_VARIABLE = "RATE_KEY"


def _tenants(connector: Connector) -> TenantsConfig:
    tenants = connector.config.tenants
    if tenants is None:
        raise ConfigurationError(
            f"{connector.file.name}: connector {connector.name!r} has no 'tenants:' key: it "
            "serves one account, run it without a tenant"
        )
    return tenants


def tenants_of(connector: Connector) -> tuple[str, ...]:
    """The tenants the file lists (``tenants.keys``); empty for dynamic tenants and for a
    connector without tenants."""
    tenants = connector.config.tenants
    return tenants.keys if tenants is not None else ()


def tenant_prefix(connector: Connector, tenant: str) -> str:
    """The prefix of tenant ``tenant``'s variables (``SHOP_ACME_``)."""
    return _tenants(connector).prefix(connector.name, tenant)


def tenant_variables(connector: Connector, tenant: str) -> tuple[EnvVarUse, ...]:
    """The variables a run of ``tenant`` reads, and nothing else: every ``{{ tenant.NAME }}`` as
    the tenant's ``<prefix>NAME``, then the file's ``{{ env.NAME }}`` (shared by all tenants)."""
    prefix = tenant_prefix(connector, tenant)
    own = tuple(
        EnvVarUse(prefix + use.name, use.default, use.secret, use.key_paths)
        for use in connector.tenant_vars
    )
    return own + connector.env_vars


def for_tenant(
    connector: Connector, tenant: str, known: Iterable[str] = (), *, rate_key: str | None = None
) -> Connector:
    """``connector`` bound to ``tenant``: what a run of that tenant syncs.

    Args:
        connector: A connector whose file declares ``tenants:`` (not yet bound).
        tenant: The tenant's key (a static key of the file, or a dynamic partition's).
        known: The other tenants known now (dynamic ones: the partitions added so far), whose
            variables this tenant must not read.
        rate_key: The rate key the tenant spends (its ``RATE_KEY`` variable), when not its own
            :func:`names.tenant_rate_key`.

    Raises:
        ConfigurationError: the connector has no tenants, is bound already, the key is not a
            valid tenant key or not one of the file's, or the tenant would read a variable that
            another tenant or every tenant reads (naming the file, the key path and the fix).
    """
    tenants = _tenants(connector)
    where = f"{connector.file.name}: connector {connector.name!r}"
    if connector.tenant is not None:
        raise ConfigurationError(f"{where} is bound to tenant {connector.tenant!r} already")
    problem = tenant_key_problem(tenant)
    if problem is not None:
        raise ConfigurationError(f"{where}: {problem}")
    if tenants.keys and tenant not in tenants.keys:
        raise ConfigurationError(
            f"{where}: tenants.keys: no tenant {tenant!r}; tenants: {', '.join(tenants.keys)}"
        )
    clashes = tenant_variable_problems(
        connector, [tenant, *(k for k in known if k != tenant)], only=tenant
    )
    if clashes:
        raise ConfigurationError(f"{where}: {clashes[0].key_path}: {clashes[0].message}")
    prefix = tenants.prefix(connector.name, tenant)
    config = connector.config
    rate_limit = config.rate_limit.model_copy(
        update={"key": rate_key or names.tenant_rate_key(config.rate_key, tenant)}
    )
    update: dict[str, object] = {
        "source": bind_tenant_tree(config.source, prefix, tenant),
        "rate_limit": rate_limit,
    }
    if tenants.tables == "datasets":
        update["dataset"] = names.tenant_dataset_name(config.dataset_name, tenant)
    return Connector(
        config=config.model_copy(update=update),
        file=connector.file,
        env_vars=tenant_variables(connector, tenant),
        tenant_vars=(),
        tenant=tenant,
    )


def tenant_variable_problems(
    connector: Connector, tenants: Sequence[str], *, only: str | None = None
) -> list[Problem]:
    """Variables two of ``tenants`` would both read, or that a tenant and the file's shared
    ``{{ env.NAME }}`` both read (``SHOP_{TENANT}_`` with tenants ``acme`` and ``acme_eu`` and
    references ``tenant.EU_KEY`` and ``tenant.KEY``: ``SHOP_ACME_EU_KEY`` is both's). With
    ``only``, just the problems of that tenant."""
    label = shown_path(connector.file)
    shared = {use.name: use for use in connector.env_vars}
    readers: dict[str, list[tuple[str, EnvVarUse]]] = {}
    for tenant in dict.fromkeys(tenants):
        for use in tenant_variables(connector, tenant)[: len(connector.tenant_vars)]:
            readers.setdefault(use.name, []).append((tenant, use))
    problems = []
    for name, uses in readers.items():
        who = [tenant for tenant, _ in uses]
        if only is not None and only not in who:
            continue
        if name in shared:
            problems.append(
                Problem(
                    label,
                    shared[name].key_paths[0],
                    f"{name} is a variable of tenant {who[0]!r}, and the file also reads it "
                    "as one every tenant shares ({{ env." + name + " }}): rename one of them",
                )
            )
        if len(who) > 1:
            problems.append(
                Problem(
                    label,
                    uses[-1][1].key_paths[0],
                    f"tenants {who[0]!r} and {who[1]!r} would both read {name}: change a "
                    "tenant's key or the 'tenants.variables' prefix",
                )
            )
    return problems


def tenants_problems(
    label: str, connector: Connector, found: Sequence[EnvVarUse], trust: TrustPolicy
) -> list[Problem]:
    """What is wrong with a file's tenants, one :class:`Problem` each: a ``{{ tenant... }}`` in
    a file without ``tenants:``; with ``tables: shared``, a resource whose write would reach the
    other tenants' rows (``replace``, an ``scd2`` merge); listed tenants reading one variable;
    and, with ``RESTSYNC_CONFINE_ENV``, a variable prefix the connector does not own or a shared
    ``{{ env.NAME }}`` that looks like a tenant's variable.
    """
    tenants = connector.config.tenants
    if tenants is None:
        return [
            Problem(
                label,
                where,
                "{{ tenant... }} needs a 'tenants:' key: this file serves one account; write "
                "{{ env.NAME }}, or declare the tenants",
            )
            for where in _tenant_reference_paths(connector.config.source)
        ]
    problems: list[Problem] = []
    if tenants.tables == "shared":
        problems.extend(_shared_table_problems(label, connector))
    problems.extend(tenant_variable_problems(connector, tenants.keys))
    if trust.confine_env:
        pattern = tenants.variables or connector.name.upper() + "_" + TENANT_PLACEHOLDER + "_"
        why = not_owned_because(pattern.replace(TENANT_PLACEHOLDER, "TENANT"), connector.name)
        if why is not None:
            problems.append(
                Problem(
                    label,
                    "tenants.variables",
                    f"connector {connector.name!r} may not read {pattern}*: RESTSYNC_CONFINE_ENV "
                    f"is on and {why}",
                )
            )
        looks = _tenant_variable_pattern(pattern)
        problems.extend(
            Problem(
                label,
                use.key_paths[0],
                f"{use.name} looks like a tenant's variable ({pattern}*) but every tenant reads "
                "it: with RESTSYNC_CONFINE_ENV on, a tenant's run reads no other tenant's "
                "variable; read it as {{ tenant.NAME }}, or rename it so that it does not match",
            )
            for use in found
            if not use.tenant and looks.match(use.name)
        )
    return problems


def _tenant_variable_pattern(pattern: str) -> re.Pattern[str]:
    """The names any tenant's variables could have under ``pattern`` (a tenant's token is
    letters, digits and ``_``, and a variable's name is not empty)."""
    before, _, after = pattern.partition(TENANT_PLACEHOLDER)
    return re.compile(re.escape(before) + r"[A-Z0-9_]+" + re.escape(after) + r".")


def _tenant_reference_paths(source: dict[str, object]) -> list[str]:
    paths = []
    for keys, leaf in leaves(source):
        if isinstance(leaf, str) and "{{" in leaf and not is_verbatim(keys):
            try:
                refs = find_refs(leaf)
            except TemplateError:
                continue  # reported by the source's rules
            if any(ref.tenant for ref in refs):
                paths.append(key_path("source", keys))
    return paths


def _shared_table_problems(label: str, connector: Connector) -> list[Problem]:
    """With ``tables: shared`` a tenant's load may touch only rows of its own tenant column."""
    problems = []
    column = connector.config.tenants.column if connector.config.tenants else "tenant"
    source = connector.config.source
    entries = source.get("resources") or []
    for index, resource in enumerate(resolve_resources(source)):
        own = entries[index] if isinstance(entries[index], dict) else {}
        where = f"source.resources[{index}]"
        defaults = "source.resource_defaults"
        disposition = resource.merged.get("write_disposition")
        strategy = disposition.get("strategy") if isinstance(disposition, dict) else None
        if resource.write_disposition == "replace":
            problems.append(
                Problem(
                    label,
                    f"{where if 'write_disposition' in own else defaults}.write_disposition",
                    f"resource {resource.name!r} replaces its table, which with 'tenants.tables: "
                    "shared' holds every tenant's rows: a tenant's run would wipe the others'. "
                    "Use merge or append, or 'tenants.tables: datasets' (a dataset per tenant)",
                )
            )
        elif strategy == "scd2":
            problems.append(
                Problem(
                    label,
                    f"{where if 'write_disposition' in own else defaults}"
                    ".write_disposition.strategy",
                    f"resource {resource.name!r}: an scd2 merge retires every row a load does "
                    "not bring, so with 'tenants.tables: shared' one tenant's run would retire "
                    "the others' rows. Use delete-insert or upsert, or 'tenants.tables: datasets'",
                )
            )
        if column in resource.primary_key:
            problems.append(
                Problem(
                    label,
                    f"{where if 'primary_key' in own else defaults}.primary_key",
                    f"resource {resource.name!r}: {column!r} is the tenant column "
                    "('tenants.column'), added to every key by restsync; choose another column "
                    "name for the tenant",
                )
            )
    return problems


def scope_clash_problems(connectors: Sequence[Connector]) -> list[Problem]:
    """A connector whose name is a tenant's pipeline scope of another (``shop__tenant_acme``
    beside ``shop`` with tenants): the two would share a dlt pipeline, its state and its lock."""
    with_tenants = [c for c in connectors if c.has_tenants]
    return [
        Problem(
            shown_path(connector.file),
            "name",
            f"connector name {connector.name!r} is the pipeline of a tenant of connector "
            f"{owner.name!r} ({shown_path(owner.file)}): choose a name without "
            f"'{owner.name}__tenant_'",
        )
        for connector in connectors
        for owner in with_tenants
        if connector.name.startswith(names.tenant_scope(owner.name, ""))
    ]


def tenant_owner_problems(connectors: Sequence[Connector], policy: TrustPolicy) -> list[Problem]:
    """With ``RESTSYNC_CONFINE_ENV``: a listed tenant's variable that belongs to another connector
    loaded together (``SHOP_ACME_API_KEY`` of tenant ``acme`` of ``shop`` is connector
    ``shop_acme``'s, the longer name): the two would read one secret."""
    if not policy.confine_env:
        return []
    problems = []
    for connector in connectors:
        for tenant in tenants_of(connector):
            for use in tenant_variables(connector, tenant)[: len(connector.tenant_vars)]:
                owners = [
                    other
                    for other in connectors
                    if other is not connector
                    and len(other.name) > len(connector.name)
                    and use.name.startswith(env_prefix(other.name))
                ]
                if owners:
                    problems.append(
                        Problem(
                            shown_path(connector.file),
                            use.key_paths[0],
                            f"tenant {tenant!r} of connector {connector.name!r} may not read "
                            f"{use.name}: it belongs to connector {owners[0].name!r} "
                            f"({env_prefix(owners[0].name)}*); change the tenant's key or "
                            "'tenants.variables'",
                        )
                    )
    return problems
