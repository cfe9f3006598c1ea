"""The demo API's own OpenAPI 3 documents, one per vertical, served at ``/<vertical>/openapi.json``.

One document per vertical, as a real provider publishes one per API: its ``servers`` URL is the
vertical's base URL as the client reached it, so ``restsync init NAME --from-openapi
http://127.0.0.1:8765/ecommerce/openapi.json`` gives a connector that syncs from the same place.

Each list endpoint follows the demo contract (``api_key`` in the query, ``offset``/``limit`` with
``limit`` at most ``max_page_size``, ``{"data": [...], "total": N}``). Record schemas are read
from the records the vertical serves: a field's type from its values, ``nullable`` where some
record has ``null``, ``required`` where every record has a value. The database vertical's
records are described by the same field list its schema endpoint serves, so a column no record
fills (``archived_at``) is declared too.
"""

from __future__ import annotations

import re
from typing import Any

from restsync_dagster.demo_api.data import VERTICALS, database_records_schema

_SAMPLE = 200
_ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_FIELD_TYPES = {
    "bigint": {"type": "integer", "format": "int64"},
    "text": {"type": "string"},
    "decimal(12,2)": {"type": "number", "format": "decimal"},
    "boolean": {"type": "boolean"},
    "timestamp": {"type": "string", "format": "date-time"},
}


def openapi_response(
    path: str, host: str, seed: int, max_page_size: int, tenant: str | None = None
) -> tuple[int, Any, dict[str, str]]:
    """``(status, body, headers)`` for ``GET /<vertical>/openapi.json`` (no key needed).

    Asked under a tenant's prefix (``/t/<tenant>/<vertical>/openapi.json``, ``path`` without
    it), the document describes the multi-tenant server: its ``servers`` URL is
    ``http://<host>/t/{tenant}/<vertical>`` with the OpenAPI server variable ``tenant``
    (default: the tenant asked for), as providers whose base URL carries the account publish.
    """
    vertical = path.strip("/").split("/")[0]
    if vertical not in VERTICALS or path.rstrip("/") != f"/{vertical}/openapi.json":
        return 404, {"error": "not_found", "message": f"no OpenAPI document at {path}"}, {}
    if tenant is None:
        server: dict[str, Any] = {"url": f"http://{host}/{vertical}"}
    else:
        server = {
            "url": f"http://{host}/t/{{tenant}}/{vertical}",
            "variables": {
                "tenant": {"default": tenant, "description": "the account's name (tenant)"}
            },
        }
    return 200, openapi_document(vertical, server, seed, max_page_size), {}


def openapi_document(
    vertical: str, server: str | dict[str, Any], seed: int, max_page_size: int
) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one vertical (``server``: its base URL, or a whole OpenAPI
    server object)."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": _ERROR}
    for name, shape in VERTICALS[vertical].items():
        records = [shape.make(seed, i) for i in range(min(_SAMPLE, shape.default_count))]
        schema_name = _title(name)
        schemas[schema_name] = _object_schema(records)
        paths[shape.path] = {"get": _list_operation(name, schema_name, max_page_size, since=True)}
    if vertical == "database":
        schemas["Record"] = _database_record_schema()
        schemas["RecordsSchema"] = _RECORDS_SCHEMA
        item = "/v1/databases/{database_id}"
        paths[f"{item}/records"] = {
            "parameters": [_DATABASE_ID],
            "get": _list_operation("records", "Record", max_page_size, since=False),
        }
        paths[f"{item}/schema"] = {"parameters": [_DATABASE_ID], "get": _schema_operation()}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"restsync demo API: {vertical}",
            "version": "1.0.0",
            "description": f"The {vertical} vertical of restsync's bundled demo API.",
        },
        "servers": [server if isinstance(server, dict) else {"url": server}],
        "security": [{"api_key": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"api_key": {"type": "apiKey", "in": "query", "name": "api_key"}},
            "parameters": _parameters(max_page_size),
            "responses": {"Unauthorized": _error_response("invalid or missing api_key")},
            "schemas": schemas,
        },
    }


def _list_operation(name: str, schema_name: str, max_page_size: int, since: bool) -> dict[str, Any]:
    refs = ["offset", "limit", *(("updated_since", "updated_until") if since else ())]
    return {
        "summary": f"List {name.replace('_', ' ')}",
        "operationId": f"list_{name}",
        "parameters": [{"$ref": f"#/components/parameters/{ref}"} for ref in refs],
        "responses": {
            "200": {
                "description": f"One page of {name}",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["data", "total"],
                            "properties": {
                                "data": {
                                    "type": "array",
                                    "items": {"$ref": f"#/components/schemas/{schema_name}"},
                                },
                                "total": {"type": "integer", "description": "Records in all pages"},
                            },
                        }
                    }
                },
            },
            "400": _error_response(
                f"offset and limit out of range (limit at most {max_page_size})"
            ),
            "401": {"$ref": "#/components/responses/Unauthorized"},
        },
    }


def _schema_operation() -> dict[str, Any]:
    return {
        "summary": "The fields of a database's records",
        "operationId": "get_records_schema",
        "responses": {
            "200": {
                "description": "The database's record layout",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/RecordsSchema"}}
                },
            },
            "401": {"$ref": "#/components/responses/Unauthorized"},
        },
    }


def _parameters(max_page_size: int) -> dict[str, Any]:
    def window(name: str, what: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "description": f"Only records whose updated_at is {what}",
            "schema": {"type": "string", "format": "date-time"},
        }

    return {
        "offset": {
            "name": "offset",
            "in": "query",
            "schema": {"type": "integer", "minimum": 0, "default": 0},
        },
        "limit": {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": max_page_size, "default": 100},
        },
        "updated_since": window("updated_since", "at or after this instant"),
        "updated_until": window("updated_until", "before this instant"),
    }


def _object_schema(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A schema read from sample records: types from values, nullability from ``None``s."""
    properties: dict[str, Any] = {}
    required = []
    keys = dict.fromkeys(key for record in records for key in record)  # in first-seen order
    for key in keys:
        values = [r.get(key) for r in records]
        present = [v for v in values if v is not None]
        schema = _value_schema(present)
        if len(present) < len(values):
            schema["nullable"] = True
        else:
            required.append(key)
        properties[key] = schema
    return {"type": "object", "required": required, "properties": properties}


def _value_schema(values: list[Any]) -> dict[str, Any]:
    if not values:
        return {"type": "string"}
    if all(isinstance(v, bool) for v in values):
        return {"type": "boolean"}
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return {"type": "integer", "format": "int64"}
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return {"type": "number", "format": "double"}
    if all(isinstance(v, list) for v in values):  # of objects or of scalars
        items = [item for v in values for item in v if item is not None]
        return {"type": "array", "items": _value_schema(items)}
    if all(isinstance(v, dict) for v in values):  # a nested object
        return _object_schema(values)
    if all(isinstance(v, str) and _ISO_TIMESTAMP.match(v) for v in values):
        return {"type": "string", "format": "date-time"}
    return {"type": "string"}


def _database_record_schema() -> dict[str, Any]:
    properties = {}
    required = []
    for field in database_records_schema(1):
        schema: dict[str, Any] = dict(_FIELD_TYPES[field["type"]])
        if field["nullable"]:
            schema["nullable"] = True
        else:
            required.append(field["name"])
        properties[field["name"]] = schema
    return {"type": "object", "required": required, "properties": properties}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _title(name: str) -> str:
    singular = name[:-1] if name.endswith("s") else name
    return "".join(part.capitalize() for part in singular.split("_"))


_DATABASE_ID = {
    "name": "database_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
_RECORDS_SCHEMA = {
    "type": "object",
    "properties": {
        "database_id": {"type": "integer"},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "type": {"type": "string"},
                    "nullable": {"type": "boolean"},
                },
            },
        },
    },
}
