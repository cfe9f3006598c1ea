"""A real ``dagster dev`` in the repo root, with no arguments but a port: it loads the code
location, lists the assets over GraphQL, shows resources with env var names but no values."""

from __future__ import annotations

import time

import pytest
import requests

SECRET = "smoke-secret-5e1d9a"


@pytest.fixture
def dagster_dev(start_dagster_dev) -> str:
    return start_dagster_dev({"ANALYTICS_API_KEY": SECRET})


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    deadline = time.monotonic() + 120
    while True:
        response = requests.post(
            f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        data = body["data"]
        # The code location may still be loading right after the server answers.
        if (data and "LOADING" not in str(data)) or time.monotonic() > deadline:
            return data
        time.sleep(1)


@pytest.mark.slow
def test_dagster_dev_serves_five_groups_and_hides_resource_values(dagster_dev):
    locations = graphql(
        dagster_dev,
        "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
        "locationOrLoadError { __typename ... on PythonError { message } } } } } }",
    )
    (entry,) = locations["workspaceOrError"]["locationEntries"]
    assert entry["name"] == "restsync"
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry

    nodes = graphql(dagster_dev, "{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
    keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
    assert len(keys) == 11 and "ecommerce/orders" in keys
    assert {n["groupName"] for n in nodes} == {
        "analytics", "communications", "database", "ecommerce", "generic",
    }  # fmt: skip

    details = graphql(
        dagster_dev,
        "query($selector: ResourceSelector!) { topLevelResourceDetailsOrError(resourceSelector: $selector) {"
        " __typename ... on ResourceDetails { name configuredValues { key value type } } } }",
        {
            "selector": {
                "repositoryLocationName": "restsync",
                "repositoryName": "__repository__",
                "resourceName": "analytics_env",
            }
        },
    )
    resource = details["topLevelResourceDetailsOrError"]
    assert resource["__typename"] == "ResourceDetails", resource
    assert {
        "key": "ANALYTICS_API_KEY",
        "value": "ANALYTICS_API_KEY",
        "type": "ENV_VAR",
    } in resource["configuredValues"]
    assert SECRET not in str(details)
