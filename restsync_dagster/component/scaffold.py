"""``dg scaffold defs restsync_dagster.RestApiComponent NAME``: a complete, commented connector.

The ``defs.yaml`` written passes ``dg check defs`` as it is: one resource behind an offset
paginator, the base URL and the credential as ``{{ env.NAME }}`` references (read when a run
starts), an https placeholder URL unless ``--base-url`` says otherwise. ``--auth`` picks dlt's
auth block (``api_key``, ``bearer``, ``basic`` or ``none``). ``--openapi PATH_OR_URL`` writes the
connector generated from an OpenAPI document instead (:mod:`restsync_dagster.openapi`).
``--tenants acme,globex`` (or ``--tenants dynamic``) writes a multi-tenant connector: a
``tenants:`` block, and the base URL and credentials as ``{{ tenant.NAME }}`` references, each
tenant's own ``<NAME>_<TENANT>_...`` variables.
"""

from __future__ import annotations

import re
from typing import Literal

import dagster as dg
from pydantic import BaseModel, Field

from restsync_dagster.connector.model import NAME_PATTERN, tenant_key_problem

AuthKind = Literal["api_key", "bearer", "basic", "none"]


#: The package that will turn an OpenAPI document into a connector (being written elsewhere).
class RestApiScaffoldParams(BaseModel):
    """Options of ``dg scaffold defs restsync_dagster.RestApiComponent NAME``."""

    base_url: str | None = Field(
        None, description="The API's base URL (default: https://api.example.com, to edit)."
    )
    auth: AuthKind = Field("api_key", description="api_key, bearer, basic or none.")
    openapi: str | None = Field(
        None, description="An OpenAPI document (path or URL) to generate the connector from."
    )
    tenants: str | None = Field(
        None,
        description="Many accounts, one connector: comma-separated tenant keys (acme,globex), "
        "or 'dynamic' (added later with restsync tenants add).",
    )


class RestApiScaffolder(dg.Scaffolder[RestApiScaffoldParams]):
    """Writes ``defs/NAME/defs.yaml`` for a ``RestApiComponent``."""

    @classmethod
    def get_scaffold_params(cls) -> type[RestApiScaffoldParams]:
        return RestApiScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[RestApiScaffoldParams]) -> None:
        params = request.params or RestApiScaffoldParams()
        folder = request.target_path
        folder.mkdir(parents=True, exist_ok=True)
        if params.openapi:
            try:
                text = openapi_defs_yaml(request.type_name, folder.name, params)
            except BaseException:
                if not any(folder.iterdir()):
                    folder.rmdir()  # dg made it; leave nothing that blocks a second try
                raise
        else:
            text = defs_yaml(request.type_name, folder.name, params)
        (folder / "defs.yaml").write_text(text, encoding="utf-8")


def openapi_defs_yaml(type_name: str, folder: str, params: RestApiScaffoldParams) -> str:
    """``--openapi PATH_OR_URL``: the connector ``restsync init --from-openapi`` would write, as a
    ``defs.yaml`` whose attributes are that file, its ``# guessed:`` comments kept.

    Raises:
        SystemExit: one line, when the document cannot be read or has nothing to sync.
    """
    from restsync_dagster.openapi import OpenApiError, generate

    assert params.openapi is not None
    if params.tenants:
        raise SystemExit(
            "--tenants with --openapi: the document's server URL says whether the API serves "
            "many accounts ({tenant}, {subdomain}...); scaffold without --tenants, then edit "
            "the tenants: block"
        )
    try:
        generated = generate(params.openapi, connector_name(folder), base_url=params.base_url)
    except OpenApiError as exc:
        raise SystemExit(f"--openapi: {exc}") from None
    body = "".join(
        f"  {line}" if line.strip() else line for line in generated.text.splitlines(True)
    )
    variables = ", ".join(generated.env_vars) or "none"
    return (
        f"type: {type_name}\n"
        f"# Generated from {params.openapi} (as 'restsync init --from-openapi' would): check the\n"
        f"# 'guessed:' comments. Variables to set: {variables}.\n"
        f"attributes:\n{body}"
    )


def connector_name(folder: str) -> str:
    """The connector name a folder stands for: its name, made a valid one if it is not."""
    name = re.sub(r"[^a-z0-9_]", "_", folder.lower()).strip("_") or "api"
    return name if NAME_PATTERN.match(name) else f"api_{name}"[:63]


def variable(prefix: str, suffix: str, tenants: bool, default: str | None = None) -> str:
    """The reference to variable ``<prefix>_<suffix>``: ``{{ env.NAME }}``, or with tenants
    ``{{ tenant.SUFFIX }}`` (each tenant's ``<prefix>_<TENANT>_<SUFFIX>``)."""
    name = f"tenant.{suffix}" if tenants else f"env.{prefix}_{suffix}"
    fallback = f" | default('{default}')" if default is not None else ""
    return f"{{{{ {name}{fallback} }}}}"


def auth_block(kind: AuthKind, prefix: str, tenants: bool = False) -> str:
    """dlt's ``auth:`` for ``kind``, its credentials as environment (or tenant) references."""
    if kind == "api_key":
        return f"""\
      auth:                        # dlt's api_key auth; the key is read when a run starts
        type: api_key
        name: X-API-Key            # the header (or query parameter) that carries the key
        location: header           # or query
        api_key: "{variable(prefix, "API_KEY", tenants)}"
"""
    if kind == "bearer":
        return f"""\
      auth: {{type: bearer, token: "{variable(prefix, "TOKEN", tenants)}"}}
"""
    if kind == "basic":
        return f"""\
      auth:
        type: http_basic
        username: "{variable(prefix, "USERNAME", tenants)}"
        password: "{variable(prefix, "PASSWORD", tenants)}"
"""
    return f'      # auth: {{type: bearer, token: "{variable(prefix, "TOKEN", tenants)}"}}\n'


def tenants_block(tenants: str, prefix: str, name: str) -> str:
    """The ``tenants:`` attribute for ``--tenants acme,globex`` or ``--tenants dynamic``.

    Raises:
        SystemExit: one line, for a key that is not a tenant key.
    """
    comment = (
        f"  # Each tenant reads its own variables {prefix}_<TENANT>_*, <TENANT> its key upper-cased\n"
        "  # (acme: {prefix}_ACME_API_KEY); rows of every tenant share one table, with a 'tenant'\n"
        "  # column in their key (tables: datasets gives each tenant its own dataset instead).\n"
    ).replace("{prefix}", prefix)
    if tenants.strip() == "dynamic":
        return (
            comment
            + f"  tenants:\n    dynamic: true                # add some: restsync tenants add {name} KEY\n"
        )
    keys = [k.strip() for k in tenants.split(",") if k.strip()]
    problems = [p for k in keys if (p := tenant_key_problem(k))]
    if not keys or problems:
        raise SystemExit(
            f"--tenants {tenants!r}: give comma-separated tenant keys (acme,globex) or 'dynamic'"
            + (f": {problems[0]}" if problems else "")
        )
    return comment + f"  tenants:\n    keys: [{', '.join(keys)}]\n"


def defs_yaml(type_name: str, folder: str, params: RestApiScaffoldParams) -> str:
    """The commented ``defs.yaml`` of a new connector in ``folder``."""
    name = connector_name(folder)
    prefix = name.upper()
    base_url = (params.base_url or "https://api.example.com").rstrip("/")
    tenants = tenants_block(params.tenants, prefix, name) if params.tenants else ""
    base_ref = variable(prefix, "BASE_URL", bool(tenants), default=base_url)
    if name == folder:
        name_line = f"  # name: {name}                 # default: this folder's name"
    else:
        name_line = f"  name: {name}                   # the folder's name is not a valid one"
    return f"""\
# A restsync connector: one REST API synced into the warehouse as Dagster assets
# {name}/<resource> in group "{name}", with a job {name}_sync and a resource {name}_env.
# The attributes are the keys of a restsync connector file (restsync's README, "Adding a
# connector"). "{{{{ env.NAME }}}}" is read when a run starts, never when the definitions load:
# write every secret that way, never as a literal. Check with `dg check defs`.
type: {type_name}
attributes:
{name_line}
  description: Records from the {name} API
  # owners: [data-eng@example.com]
  # tags: {{domain: finance}}
  # schedule: "0 * * * *"          # or {{cron: "0 * * * *", timezone: Europe/Berlin}}
  # freshness: {{max_lag: 26h}}
  # retry: {{max_retries: 3, backoff_factor: 2, run_retries: 3}}
  # rate_limit: {{requests_per_second: 10, max_concurrency: 4}}
{tenants}  source:                          # a dlt RESTAPIConfig, verbatim
    client:
      base_url: "{base_ref}"
{auth_block(params.auth, prefix, bool(tenants))}    resource_defaults:
      primary_key: id
      write_disposition: merge     # re-syncs update rows in place
    resources:
      - name: records
        endpoint:
          path: /v1/records
          data_selector: data      # where the list of records is in each answer
          paginator: {{type: offset, limit: 100}}   # ?offset=&limit=, until "total"
"""
