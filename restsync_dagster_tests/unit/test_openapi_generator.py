"""The OpenAPI generator on small documents written for one rule each, and on bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from restsync_dagster.connector import parse_connector
from restsync_dagster.openapi import OpenApiError, generate

RECORD = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "price": {"type": "string", "format": "decimal"},
        "born_on": {"type": "string", "format": "date"},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "score": {"type": "number", "format": "float"},
        "active": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def document(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An OpenAPI 3.0 document with ``paths`` and a ``Thing`` schema."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Things", "version": "1"},
        "servers": [{"url": "https://api.example.com/v1"}],
        "paths": paths,
        "components": {"schemas": {"Thing": RECORD}, **extra.pop("components", {})},
        **extra,
    }


def listing(body: dict[str, Any] | None = None, params: list[Any] | None = None, **response: Any):
    """A GET operation answering ``body`` (default: a bare list of things)."""
    schema = body or {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}
    return {
        "get": {
            "parameters": params or [],
            "responses": {
                "200": {
                    "description": "ok",
                    "content": {"application/json": {"schema": schema}},
                    **response,
                }
            },
        }
    }


def wrapped(**extra: Any) -> dict[str, Any]:
    """``{"data": [things], **extra}``."""
    return {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}},
            **extra,
        },
    }


def query(name: str, kind: str = "integer", **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": kind, **schema}}


def run(tmp_path: Path, doc: dict[str, Any], name: str = "things", **options: Any):
    """Generate from ``doc`` written as JSON; return the result and the first resource."""
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(doc))
    result = generate(str(path), name, **options)
    parse_connector(result.text, f"{name}.yaml")
    data = yaml.safe_load(result.text)
    return result, data, data["source"]["resources"][0]


# --------------------------------------------------------------------------------------------
# Pagination


def test_a_shared_pagination_object_exploded_into_offset_and_limit_pages_by_offset_with_meta_total(
    tmp_path,
):
    pagination = {
        "name": "pagination",
        "in": "query",
        "style": "form",
        "explode": True,
        "schema": {
            "type": "object",
            "properties": {
                "offset": {"type": "integer"},
                "limit": {"type": "integer", "maximum": 500},
            },
        },
    }
    doc = document(
        {"/things": listing(wrapped(meta={"$ref": "#/components/schemas/Meta"}),
                            [{"$ref": "#/components/parameters/pagination"}])},
        components={
            "parameters": {"pagination": pagination},
            "schemas": {
                "Thing": RECORD,
                "Meta": {"type": "object", "properties": {"total": {"type": "integer"}}},
            },
        },
    )  # fmt: skip
    _, _, resource = run(tmp_path, doc)
    assert resource["endpoint"]["paginator"] == {
        "type": "offset",
        "limit": 500,
        "offset_param": "offset",
        "limit_param": "limit",
        "total_path": "meta.total",
    }


def test_offset_without_a_total_stops_at_the_first_empty_page_and_never_caps_pages(tmp_path):
    doc = document({"/things": listing(wrapped(), [query("offset"), query("limit", maximum=50)])})
    _, _, resource = run(tmp_path, doc)
    paginator = resource["endpoint"]["paginator"]
    assert paginator["total_path"] is None
    assert paginator["stop_after_empty_page"] is True
    assert "maximum_offset" not in paginator and "maximum_page" not in paginator


def test_page_numbers_from_one_with_the_page_count_and_the_size_as_a_parameter(tmp_path):
    doc = document(
        {
            "/things": listing(
                wrapped(total_pages={"type": "integer"}),
                [query("page", minimum=1), query("per_page", maximum=200)],
            )
        }
    )
    _, _, resource = run(tmp_path, doc)
    assert resource["endpoint"]["paginator"] == {
        "type": "page_number",
        "base_page": 1,
        "page_param": "page",
        "total_path": "total_pages",
    }
    assert resource["endpoint"]["params"] == {"per_page": 200}


def test_a_deep_object_page_parameter_is_sent_by_its_bracketed_name(tmp_path):
    page = {
        "name": "page",
        "in": "query",
        "style": "deepObject",
        "schema": {
            "type": "object",
            "properties": {"number": {"type": "integer"}, "size": {"type": "integer"}},
        },
    }
    doc = document({"/things": listing(wrapped(), [page])})
    _, _, resource = run(tmp_path, doc)
    assert resource["endpoint"]["paginator"]["page_param"] == "page[number]"
    assert resource["endpoint"]["params"] == {"page[size]": 100}


def test_a_next_cursor_in_the_body_is_sent_back_as_the_cursor_parameter(tmp_path):
    doc = document(
        {"/things": listing(wrapped(next_cursor={"type": "string", "nullable": True}),
                            [query("cursor", "string"), query("limit", maximum=100)])}
    )  # fmt: skip
    _, _, resource = run(tmp_path, doc)
    assert resource["endpoint"]["paginator"] == {
        "type": "cursor",
        "cursor_path": "next_cursor",
        "cursor_param": "cursor",
    }


def test_a_declared_link_header_pages_by_header_link(tmp_path):
    doc = document(
        {"/things": listing(None, [query("per_page", maximum=100)],
                            headers={"Link": {"schema": {"type": "string"}}})}
    )  # fmt: skip
    _, _, resource = run(tmp_path, doc)
    assert resource["endpoint"]["paginator"] == {"type": "header_link"}
    assert resource["endpoint"]["data_selector"] == "$"


def test_a_next_link_in_links_pages_by_json_link(tmp_path):
    links = {"type": "object", "properties": {"next": {"type": "string", "format": "uri"}}}
    doc = document({"/things": listing(wrapped(links=links))})
    _, _, resource = run(tmp_path, doc)
    assert resource["endpoint"]["paginator"] == {"type": "json_link", "next_url_path": "links.next"}


# --------------------------------------------------------------------------------------------
# Records, auth, parents


def test_column_hints_follow_types_formats_and_nullability(tmp_path):
    _, _, resource = run(tmp_path, document({"/things": listing()}))
    assert resource["primary_key"] == "id"
    assert resource["columns"] == {
        "id": {"data_type": "bigint", "nullable": False},
        "price": {"data_type": "decimal"},
        "born_on": {"data_type": "date"},
        "updated_at": {"data_type": "timestamp", "nullable": True},
        "score": {"data_type": "double"},
        "active": {"data_type": "bool"},
    }


def test_all_of_records_merge_their_parts(tmp_path):
    merged = {"allOf": [{"$ref": "#/components/schemas/Thing"},
                        {"type": "object", "properties": {"extra_at": {"type": "string", "format": "date-time"}}}]}  # fmt: skip
    doc = document({"/things": listing({"type": "array", "items": merged})})
    _, _, resource = run(tmp_path, doc)
    assert resource["primary_key"] == "id"
    assert resource["columns"]["extra_at"] == {"data_type": "timestamp"}


@pytest.mark.parametrize(
    ("scheme", "auth", "variables"),
    [
        ({"type": "http", "scheme": "bearer"}, {"type": "bearer", "token": "{{ env.THINGS_TOKEN }}"},
         ["THINGS_TOKEN"]),
        ({"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "https://auth.example.com/token", "scopes": {}}}},
         {"type": "oauth2_client_credentials", "access_token_url": "https://auth.example.com/token",
          "client_id": "{{ env.THINGS_CLIENT_ID }}", "client_secret": "{{ env.THINGS_CLIENT_SECRET }}"},
         ["THINGS_CLIENT_ID", "THINGS_CLIENT_SECRET"]),
        ({"type": "apiKey", "in": "header", "name": "X-Api-Key"},
         {"type": "api_key", "name": "X-Api-Key", "location": "header", "api_key": "{{ env.THINGS_API_KEY }}"},
         ["THINGS_API_KEY"]),
        ({"type": "oauth2", "flows": {"authorizationCode": {"authorizationUrl": "https://a", "tokenUrl": "https://t", "scopes": {}}}},
         {"type": "bearer", "token": "{{ env.THINGS_ACCESS_TOKEN }}"}, ["THINGS_ACCESS_TOKEN"]),
    ],
)  # fmt: skip
def test_security_schemes_become_dlt_auth_with_environment_references(
    tmp_path, scheme, auth, variables
):
    doc = document(
        {"/things": listing()},
        components={"securitySchemes": {"main": scheme}},
        security=[{"main": []}],
    )
    result, data, _ = run(tmp_path, doc)
    assert data["source"]["client"]["auth"] == auth
    assert result.env_vars == ["THINGS_BASE_URL", *variables]
    # The validator's rule: a client id names the client, it is no credential.
    secrets = {v.name for v in result.variables if v.secret}
    assert secrets == set(variables) - {"THINGS_CLIENT_ID"}


def test_a_scoped_list_is_read_per_parent_record_and_an_unscoped_twin_is_preferred(tmp_path):
    project = {"type": "object", "properties": {"id": {"type": "integer"}}}
    doc = document(
        {
            "/projects": listing({"type": "array", "items": project}),
            "/projects/{project_id}/issues": listing(
                params=[{"name": "project_id", "in": "path", "required": True}]
            ),
            "/projects/{project_id}/things": listing(),
            "/things": listing(),
        }
    )
    # /projects/{project_id}/issues has no unscoped twin: a child of projects.
    doc["paths"]["/projects/{project_id}/issues"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"] = {
        "type": "array",
        "items": {"type": "object", "properties": {"id": {"type": "string"}}},
    }
    result, data, _ = run(tmp_path, doc)
    resources = {r["name"]: r for r in data["source"]["resources"]}
    assert set(resources) == {"projects", "issues", "things"}
    assert resources["issues"]["endpoint"]["path"] == "/projects/{resources.projects.id}/issues"
    assert dict(result.skipped)["/projects/{project_id}/things"] == (
        "the same records are listed unscoped by GET /things"
    )
    assert "also listed per parent under /projects/{project_id}/things" in result.text


def test_include_and_exclude_select_by_path_glob_or_tag(tmp_path):
    tagged = listing()
    tagged["get"]["tags"] = ["admin"]
    doc = document({"/things": listing(), "/other": listing(), "/admin/things": tagged})
    result, data, _ = run(tmp_path, doc, include=["/th*", "admin"], exclude=["/admin/*"])
    assert [r["name"] for r in data["source"]["resources"]] == ["things"]
    assert dict(result.skipped) == {
        "/other": "not selected by --include",
        "/admin/things": "left out by --exclude '/admin/*'",
    }


def test_swagger2_references_to_definitions_parameters_and_responses_resolve(tmp_path):
    doc = {
        "swagger": "2.0",
        "host": "api.example.com",
        "basePath": "/v2",
        "schemes": ["https"],
        "info": {"title": "Old", "version": "1"},
        "securityDefinitions": {"basic": {"type": "basic"}},
        "security": [{"basic": []}],
        "parameters": {"limit": {"name": "limit", "in": "query", "type": "integer", "maximum": 75},
                       "skip": {"name": "skip", "in": "query", "type": "integer"}},
        "responses": {"Things": {"description": "ok", "schema": {
            "type": "object", "properties": {
                "items": {"type": "array", "items": {"$ref": "#/definitions/Thing"}},
                "total_count": {"type": "integer"}}}}},
        "definitions": {"Thing": {"type": "object", "properties": {"id": {"type": "string"},
                                                                    "when": {"type": "string", "format": "date-time", "x-nullable": True}}}},
        "paths": {"/things": {"get": {
            "parameters": [{"$ref": "#/parameters/limit"}, {"$ref": "#/parameters/skip"}],
            "responses": {"200": {"$ref": "#/responses/Things"}}}}},
    }  # fmt: skip
    _, data, resource = run(tmp_path, doc)
    assert data["source"]["client"]["base_url"] == (
        "{{ env.THINGS_BASE_URL | default('https://api.example.com/v2') }}"
    )
    assert data["source"]["client"]["auth"]["type"] == "http_basic"
    assert resource["endpoint"]["data_selector"] == "items"
    assert resource["endpoint"]["paginator"] == {
        "type": "offset",
        "limit": 75,
        "offset_param": "skip",
        "limit_param": "limit",
        "total_path": "total_count",
    }
    assert resource["columns"] == {"when": {"data_type": "timestamp", "nullable": True}}


def test_the_base_url_option_replaces_the_documents_server(tmp_path):
    _, data, _ = run(tmp_path, document({"/things": listing()}), base_url="http://127.0.0.1:9/x/")
    assert data["source"]["client"]["base_url"] == (
        "{{ env.THINGS_BASE_URL | default('http://127.0.0.1:9/x') }}"
    )


# --------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("just: a mapping\n", "doc.yaml: not an OpenAPI or Swagger document: it has no top-level"),
        ("[1, 2]\n", "doc.yaml: not an OpenAPI or Swagger document (not a mapping)"),
        ("openapi: 3.0.0\npaths: {a: [\n", "doc.yaml: not JSON or YAML"),
        (
            "openapi: 3.0.0\ninfo: {title: x, version: '1'}\n",
            "doc.yaml: the document has no 'paths'",
        ),
        (
            "openapi: 3.0.0\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n"
            "          $ref: '#/components/responses/Nope'\n",
            "doc.yaml: $ref '#/components/responses/Nope' at paths./a.get.responses.200 does not "
            "resolve",
        ),
        (
            "openapi: 3.0.0\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n"
            "          $ref: 'other.yaml#/x'\n",
            "doc.yaml: $ref 'other.yaml#/x' at paths./a.get.responses.200 points outside the "
            "document",
        ),
        (
            "openapi: 3.0.0\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n"
            "          description: ok\n          content: {application/json: {schema: {type: object,"
            " properties: {id: {type: integer}}}}}\n",
            "doc.yaml: no GET endpoint returns a list of records (1 looked at: GET /a: returns a "
            "single object, not a list)",
        ),
    ],
)
def test_bad_documents_fail_with_one_line_naming_the_file_and_the_problem(
    tmp_path, content, message
):
    path = tmp_path / "doc.yaml"
    path.write_text(content)
    with pytest.raises(OpenApiError) as caught:
        generate(str(path), "things")
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_missing_file_names_it(tmp_path):
    with pytest.raises(OpenApiError, match=r"^nope.json: cannot read the document: No such file"):
        generate(str(tmp_path / "nope.json"), "things")


def test_an_invalid_connector_name_is_refused_with_the_validators_words(tmp_path):
    with pytest.raises(OpenApiError, match="is not a valid connector name"):
        run(tmp_path, document({"/things": listing()}), name="Bad-Name")


# --------------------------------------------------------------------------------------------
# Size


def large_document(target_bytes: int = 600_000) -> dict[str, Any]:
    """A synthetic document of about ``target_bytes`` of JSON: many list endpoints, child
    endpoints and single-object endpoints over shared, referenced schemas."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    index = 0
    while len(json.dumps({"paths": paths, "schemas": schemas})) < target_bytes:
        name = f"Thing{index}"
        schemas[name] = {
            "allOf": [
                {"$ref": "#/components/schemas/Base"},
                {"type": "object", "properties": {
                    f"field_{k}": {"type": ["string", "integer", "number", "boolean"][k % 4],
                                   **({"format": "date-time"} if k % 5 == 0 else {}),
                                   "description": "x" * 40}
                    for k in range(25)}},
            ]
        }  # fmt: skip
        items = {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}}
        body = {"type": "object", "properties": {"data": items, "total": {"type": "integer"}}}
        params = [
            query("offset"),
            query("limit", maximum=1000),
            query("updated_since", "string", format="date-time"),
        ]
        paths[f"/things{index}"] = listing(body, params)
        paths[f"/things{index}/{{thing_id}}"] = listing({"$ref": f"#/components/schemas/{name}"})
        paths[f"/things{index}/{{thing_id}}/parts"] = listing(
            body, [query("offset"), query("limit")]
        )
        index += 1
    schemas["Base"] = {"type": "object", "properties": {"id": {"type": "integer"},
                                                         "updated_at": {"type": "string", "format": "date-time"}}}  # fmt: skip
    return document(paths, components={"schemas": schemas})


def test_a_600_kb_document_generates_a_valid_file_quickly(tmp_path, capsys):
    path = tmp_path / "large.json"
    path.write_text(json.dumps(large_document()))
    started = time.perf_counter()
    result = generate(str(path), "large")
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n{path.stat().st_size / 1000:.0f} kB document -> {len(result.resources)} "
              f"resources in {elapsed:.2f} s")  # fmt: skip
    assert len(result.resources) > 100
    assert "/things0/{resources.things0.id}/parts" in result.text
