"""An OpenAPI 3 or Swagger 2 document, and the few views of it the generator needs.

(:mod:`restsync_dagster.openapi.loading` reads one from a file or URL.) Local ``$ref``s are
followed on demand (``#/components/...`` in OpenAPI 3; ``#/definitions/...``, ``#/parameters/...``
and ``#/responses/...`` in Swagger 2), ``allOf`` is merged, and the differences between the two
versions (where a parameter's type sits, where a response's schema sits, how the server is
named) stay in this module: the rest of the package sees one shape.

Every ``$ref`` of the document is checked once when it is loaded, so a broken reference is an
error naming it and where it sits, whichever endpoint it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from restsync_dagster.openapi.errors import OpenApiError

Schema = dict[str, Any]

_JSON_TYPES = ("application/json", "+json", "text/json", "*/*")


@dataclass(frozen=True)
class Parameter:
    """One query, path or header parameter, the same for both versions."""

    name: str
    location: str
    schema: Schema
    required: bool = False
    style: str = "form"
    explode: bool = True


@dataclass(frozen=True)
class Response:
    """The successful answer of an operation."""

    content_type: str | None
    schema: Schema | None
    headers: frozenset[str] = field(default_factory=frozenset)


class Document:
    """A parsed OpenAPI 3 or Swagger 2 document with its references followed on demand."""

    def __init__(self, raw: Any, label: str) -> None:
        if not isinstance(raw, dict):
            raise OpenApiError(f"{label}: not an OpenAPI or Swagger document (not a mapping)")
        openapi, swagger = str(raw.get("openapi", "")), str(raw.get("swagger", ""))
        if openapi.startswith("3."):
            self.version = 3
        elif swagger.startswith("2"):
            self.version = 2
        else:
            raise OpenApiError(
                f"{label}: not an OpenAPI or Swagger document: it has no top-level "
                "'openapi: 3.x' or 'swagger: \"2.0\"' key"
            )
        if not isinstance(raw.get("paths"), dict) or not raw["paths"]:
            raise OpenApiError(f"{label}: the document has no 'paths', so no endpoint to sync")
        self.raw: dict[str, Any] = raw
        self.label = label
        self._refs: dict[str, Any] = {}
        self._flat: dict[int, Schema] = {}

    @property
    def title(self) -> str:
        """The API's name from ``info.title``."""
        info = self.raw.get("info")
        return str(info.get("title") or "") if isinstance(info, dict) else ""

    @property
    def description(self) -> str:
        """The first line of ``info.description``."""
        info = self.raw.get("info")
        text = str(info.get("description") or "") if isinstance(info, dict) else ""
        return text.strip().splitlines()[0].strip() if text.strip() else ""

    @property
    def kind(self) -> str:
        """``OpenAPI 3.0.1`` or ``Swagger 2.0``."""
        if self.version == 3:
            return f"OpenAPI {self.raw['openapi']}"
        return f"Swagger {self.raw['swagger']}"

    def server_url(self) -> str:
        """The first server's URL (variables set to their defaults); may be relative or empty."""
        if self.version == 2:
            host, base = self.raw.get("host"), str(self.raw.get("basePath") or "")
            schemes = self.raw.get("schemes") or ["https"]
            scheme = "https" if "https" in schemes else str(schemes[0])
            return f"{scheme}://{host}{base}".rstrip("/") if host else base.rstrip("/")
        servers = self.raw.get("servers") or []
        if not servers or not isinstance(servers[0], dict):
            return ""
        url = str(servers[0].get("url") or "")
        for name, variable in (servers[0].get("variables") or {}).items():
            if isinstance(variable, dict) and "default" in variable:
                url = url.replace("{" + str(name) + "}", str(variable["default"]))
        return url.rstrip("/")

    # ----------------------------------------------------------------------------------------
    # References

    def check_refs(self) -> None:
        """Follow every local ``$ref`` once.

        Raises:
            OpenApiError: naming the first reference that points nowhere, and where it sits.
        """
        for where, ref in _refs_in(self.raw, ""):
            if ref.startswith("#") and ref not in self._refs:
                self._lookup(ref, where)

    def deref(self, node: Any, where: str) -> Any:
        """``node`` with its ``$ref`` chain followed (other keys beside a ``$ref`` are dropped,
        as OpenAPI 3.0 says)."""
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen:
                raise OpenApiError(f"{self.label}: $ref {ref!r} at {where} refers to itself")
            seen.add(ref)
            node = self._refs[ref] if ref in self._refs else self._lookup(ref, where)
        return node

    def _lookup(self, ref: str, where: str) -> Any:
        if not ref.startswith("#"):
            raise OpenApiError(
                f"{self.label}: $ref {ref!r} at {where} points outside the document; only "
                "references inside it ('#/...') are followed: bundle the document first"
            )
        node: Any = self.raw
        for part in ref[1:].split("/")[1:]:
            key = unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise OpenApiError(f"{self.label}: $ref {ref!r} at {where} does not resolve")
        self._refs[ref] = node
        return node

    def schema(self, node: Any, where: str) -> Schema:
        """A schema with its ``$ref`` followed and ``allOf`` merged; nested schemas stay as they
        are (follow them with this method again), so a recursive schema costs nothing."""
        node = self.deref(node, where)
        if not isinstance(node, dict):
            return {}
        cached = self._flat.get(id(node))
        if cached is not None:
            return cached
        flat = _merge_all_of(self, node, where, depth=0)
        self._flat[id(node)] = flat
        return flat

    # ----------------------------------------------------------------------------------------
    # Operations

    def get_operations(self) -> Iterator[tuple[str, dict[str, Any], list[Parameter]]]:
        """``(path, operation, parameters)`` for every ``GET``, in document order; the
        parameters merge the path's and the operation's (the operation's win)."""
        for path, item in self.raw["paths"].items():
            item = self.deref(item, f"paths.{path}")
            if not isinstance(item, dict) or not isinstance(item.get("get"), dict):
                continue
            where = f"paths.{path}.get"
            merged: dict[tuple[str, str], Parameter] = {}
            for source in (item.get("parameters") or [], item["get"].get("parameters") or []):
                for index, raw in enumerate(source):
                    parameter = self._parameter(raw, f"{where}.parameters[{index}]")
                    if parameter is not None:
                        merged[(parameter.name, parameter.location)] = parameter
            yield str(path), item["get"], list(merged.values())

    def _parameter(self, raw: Any, where: str) -> Parameter | None:
        node = self.deref(raw, where)
        if not isinstance(node, dict) or "name" not in node or "in" not in node:
            return None
        if self.version == 2:
            schema = {k: v for k, v in node.items() if k not in ("name", "in", "required")}
        else:
            schema = self.schema(node.get("schema") or {}, where + ".schema")
        location = str(node["in"])
        style = str(node.get("style") or ("form" if location in ("query", "cookie") else "simple"))
        explode = bool(node.get("explode", style == "form"))
        return Parameter(
            str(node["name"]), location, schema, bool(node.get("required")), style, explode
        )

    def success_response(self, operation: Mapping[str, Any], where: str) -> Response | None:
        """The first 2xx response (or ``default``): its JSON schema, or the content type it
        has instead of JSON; ``None`` when the operation declares no success."""
        # YAML reads an unquoted 200 as a number: key the responses by text.
        responses = {str(c): r for c, r in (operation.get("responses") or {}).items()}
        codes = sorted(c for c in responses if c.startswith("2"))
        code = codes[0] if codes else ("default" if "default" in responses else None)
        if code is None:
            return None
        where = f"{where}.responses.{code}"
        raw = self.deref(responses[code], where)
        if not isinstance(raw, dict):
            return None
        headers = frozenset(str(h).lower() for h in (raw.get("headers") or {}))
        if self.version == 2:
            produces = operation.get("produces") or self.raw.get("produces") or ["application/json"]
            json_type = next((t for t in produces if _is_json(t)), None)
            if "schema" not in raw:
                return Response(None, None, headers)
            schema = self.schema(raw["schema"], where + ".schema")
            if json_type is None or schema.get("type") == "file":
                return Response(str(produces[0]) if produces else "file", None, headers)
            return Response(json_type, schema, headers)
        content = raw.get("content") or {}
        if not content:
            return Response(None, None, headers)
        json_type = next((t for t in content if _is_json(str(t))), None)
        if json_type is None:
            return Response(str(next(iter(content))), None, headers)
        media = content[json_type] if isinstance(content[json_type], dict) else {}
        schema = self.schema(media.get("schema") or {}, f"{where}.content.{json_type}.schema")
        return Response(str(json_type), schema, headers)

    def security_schemes(self) -> dict[str, dict[str, Any]]:
        """Scheme name -> scheme, references followed (``securityDefinitions`` in Swagger 2)."""
        if self.version == 2:
            raw = self.raw.get("securityDefinitions") or {}
        else:
            raw = (self.raw.get("components") or {}).get("securitySchemes") or {}
        schemes = {}
        for name, scheme in raw.items():
            resolved = self.deref(scheme, f"securitySchemes.{name}")
            if isinstance(resolved, dict):
                schemes[str(name)] = resolved
        return schemes


def _is_json(content_type: str) -> bool:
    lowered = content_type.lower()
    return any(marker in lowered for marker in _JSON_TYPES)


def _refs_in(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """``(key path, ref)`` of every ``$ref`` string under ``node``, iteratively (deep documents
    would exhaust Python's recursion limit)."""
    stack: list[tuple[Any, str]] = [(node, where)]
    while stack:
        current, path = stack.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str):
                yield path or "(top)", ref
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in current.items())
        elif isinstance(current, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(current))


def _merge_all_of(document: Document, node: Schema, where: str, depth: int) -> Schema:
    """``node`` with its ``allOf`` parts merged in: properties and ``required`` united, the first
    part's type kept. A single non-null ``oneOf``/``anyOf`` option stands for the schema."""
    if depth > 20:
        raise OpenApiError(f"{document.label}: allOf at {where} nests more than 20 levels deep")
    merged: Schema = {k: v for k, v in node.items() if k not in ("allOf",)}
    for index, part in enumerate(node.get("allOf") or []):
        resolved = document.deref(part, f"{where}.allOf[{index}]")
        if not isinstance(resolved, dict):
            continue
        flat = _merge_all_of(document, resolved, f"{where}.allOf[{index}]", depth + 1)
        properties = {**(flat.get("properties") or {}), **(merged.get("properties") or {})}
        required = list(dict.fromkeys([*(flat.get("required") or []), *merged.get("required", [])]))
        merged = {**flat, **merged}
        if properties:
            merged["properties"] = properties
        if required:
            merged["required"] = required
    for key in ("oneOf", "anyOf"):
        options = [document.deref(o, f"{where}.{key}") for o in node.get(key) or []]
        real = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
        if len(real) == 1 and "type" not in merged and "properties" not in merged:
            inner = _merge_all_of(document, real[0], f"{where}.{key}[0]", depth + 1)
            merged = {**inner, **{k: v for k, v in merged.items() if k != key}}
            if len(real) < len(options):
                merged["nullable"] = True
    return merged
