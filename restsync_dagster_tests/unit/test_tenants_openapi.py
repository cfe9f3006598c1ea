"""OpenAPI import of a multi-tenant server: a server URL whose variable names the account."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from restsync_dagster.openapi import generate
from restsync_dagster.openapi.tenants import is_tenant_word

THING = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}


def document(server: dict[str, Any], security: str = "apiKey") -> dict[str, Any]:
    """An OpenAPI 3 document listing things behind ``server``, with one security scheme."""
    schemes = {
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        "bearer": {"type": "http", "scheme": "bearer"},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Helpdesk", "version": "1"},
        "servers": [server],
        "security": [{"key": []}],
        "paths": {
            "/tickets": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {"schema": {"type": "array", "items": THING}}
                            },
                        }
                    }
                }
            }
        },
        "components": {"securitySchemes": {"key": schemes[security]}},
    }


def generated(tmp_path: Path, doc: dict[str, Any], **options: Any) -> tuple[Any, dict[str, Any]]:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(doc))
    result = generate(str(path), "helpdesk", **options)
    return result, yaml.safe_load(result.text)


def test_a_subdomain_variable_without_enum_gives_dynamic_tenants_in_the_base_url(tmp_path):
    server = {
        "url": "https://{subdomain}.helpdesk.example/api/{version}",
        "variables": {"subdomain": {"default": "demo"}, "version": {"default": "v2"}},
    }
    result, config = generated(tmp_path, document(server))
    assert config["tenants"] == {"dynamic": True}
    client = config["source"]["client"]
    assert client["base_url"] == "https://{{ tenant.key }}.helpdesk.example/api/v2"
    assert client["auth"]["api_key"] == "{{ tenant.API_KEY }}"
    assert "restsync tenants add" in result.text


def test_an_enum_of_accounts_gives_static_tenant_keys(tmp_path):
    server = {
        "url": "https://api.example.com/{tenant}/v1",
        "variables": {"tenant": {"default": "acme", "enum": ["acme", "globex"]}},
    }
    _, config = generated(tmp_path, document(server, security="bearer"))
    assert config["tenants"] == {"keys": ["acme", "globex"]}
    assert config["source"]["client"]["base_url"] == "https://api.example.com/{{ tenant.key }}/v1"
    assert config["source"]["client"]["auth"]["token"] == "{{ tenant.TOKEN }}"


def test_an_enum_that_is_not_made_of_tenant_keys_falls_back_to_dynamic_tenants(tmp_path):
    server = {
        "url": "https://{account}.example.com",
        "variables": {"account": {"default": "Main", "enum": ["Main", "Other Co"]}},
    }
    result, config = generated(tmp_path, document(server))
    assert config["tenants"] == {"dynamic": True}
    assert "guessed:" in result.text and "not tenant keys" in result.text


def test_a_server_variable_that_is_not_an_account_keeps_one_connector_for_one_account(tmp_path):
    server = {
        "url": "https://{region}.example.com/{version}",
        "variables": {
            "region": {"default": "eu", "enum": ["eu", "us"]},
            "version": {"default": "v1"},
        },
    }
    _, config = generated(tmp_path, document(server))
    assert "tenants" not in config
    assert config["source"]["client"]["base_url"].endswith("'https://eu.example.com/v1') }}")
    assert config["source"]["client"]["auth"]["api_key"] == "{{ env.HELPDESK_API_KEY }}"


def test_a_base_url_given_on_the_command_line_is_one_account(tmp_path):
    server = {
        "url": "https://{subdomain}.helpdesk.example",
        "variables": {"subdomain": {"default": "x"}},
    }
    _, config = generated(tmp_path, document(server), base_url="https://acme.helpdesk.example")
    assert "tenants" not in config


def test_account_words_are_recognised_in_the_usual_spellings():
    for name in ("tenant", "subdomain", "yourDomain", "your-domain", "account_id", "org", "shop"):
        assert is_tenant_word(name), name
    for name in ("region", "version", "basePath", "port", "environment", "protocol", "stage"):
        assert not is_tenant_word(name), name
