"""The deployment files agree with each other and with the code: the production dagster.yaml
(itself loaded against PostgreSQL in test_postgres.py), the Helm values, the example Secrets,
the Dockerfile, and the deployment guide's marking of what is tested."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from restsync_dagster_tests.helpers import PRODUCTION_DAGSTER_YAML, REPO

VALUES = REPO / "deploy" / "k8s" / "values.yaml"
SECRETS = REPO / "deploy" / "k8s" / "secrets.example.yaml"
GUIDE = REPO / "deploy" / "DEPLOYMENT.md"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def code_location() -> dict[str, Any]:
    (deployment,) = load(VALUES)["dagster-user-deployments"]["deployments"]
    return deployment


def example_secrets() -> dict[str, dict[str, str]]:
    documents = yaml.safe_load_all(SECRETS.read_text(encoding="utf-8"))
    return {d["metadata"]["name"]: d["stringData"] for d in documents if d}


def test_the_helm_values_set_the_same_queue_pools_and_storage_scheme_as_the_dagster_yaml():
    instance, values = load(PRODUCTION_DAGSTER_YAML), load(VALUES)
    runs, pools = instance["concurrency"]["runs"], instance["concurrency"]["pools"]
    assert values["concurrency"] == {
        "enabled": True,
        "runs": {
            "maxConcurrentRuns": runs["max_concurrent_runs"],
            "tagConcurrencyLimits": runs["tag_concurrency_limits"],
        },
        "pools": {"defaultLimit": pools["default_limit"], "granularity": pools["granularity"]},
    }
    assert pools["default_limit"] == 1, "one writer per dlt pipeline"
    assert instance["run_coordinator"]["class"] == values["dagsterDaemon"]["runCoordinator"]["type"]
    scheme = instance["storage"]["postgres"]["postgres_db"]["scheme"]
    assert values["postgresql"]["postgresqlScheme"] == scheme == "postgresql+psycopg2"


def test_the_production_dagster_yaml_takes_its_connection_from_variables_only():
    connection = load(PRODUCTION_DAGSTER_YAML)["storage"]["postgres"]["postgres_db"]
    assert {k: v for k, v in connection.items() if k != "scheme"} == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USERNAME"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }


def test_the_helm_values_serve_the_module_and_port_of_the_dockerfiles_command():
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    (cmd,) = re.findall(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    command = json.loads(cmd)
    module = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "dagster"
    ]["module_name"]
    deployment = code_location()
    assert command[:3] == ["dagster", "code-server", "start"]
    assert command[command.index("-m") + 1] == module
    assert deployment["codeServerArgs"] == ["-m", module]
    assert int(command[command.index("-p") + 1]) == deployment["port"]
    assert f"EXPOSE {deployment['port']}" in dockerfile
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    assert user, "a numeric non-root user"
    assert deployment["podSecurityContext"]["runAsUser"] == int(user.group(1)) != 0
    mounts = {m["mountPath"] for m in deployment["volumeMounts"]}
    assert "/opt/restsync/connectors" in mounts
    assert "RESTSYNC_CONNECTORS_DIR=/opt/restsync/connectors" in dockerfile
    assert "RESTSYNC_HOME=/tmp/restsync" in dockerfile and "/tmp" in mounts


def test_each_connector_secret_holds_exactly_the_variables_its_connector_requires(restsync_home):
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "restsync"), "validate", "--json"],
        env={**os.environ, "RESTSYNC_INCLUDE_EXAMPLES": "true"},
        capture_output=True,
        text=True,
        check=True,
    )
    required = {
        c["name"]: {v["name"] for v in c["env"] if v["required"]}
        for c in json.loads(listed.stdout)["connectors"]
    }
    secrets = example_secrets()
    connector_secrets = {n: k for n, k in secrets.items() if n.startswith("restsync-connector-")}
    assert connector_secrets, "the example has connector Secrets"
    for name, keys in connector_secrets.items():
        connector = name.removeprefix("restsync-connector-")
        assert set(keys) == required[connector], name
    assert all(k.startswith("DESTINATION__") for k in secrets["restsync-destination"])

    referenced = {s["name"] for s in code_location()["envSecrets"]}
    assert referenced == {n for n in secrets if n.startswith("restsync-")}
    assert load(VALUES)["global"]["postgresqlSecretName"] in secrets
    assert code_location()["includeConfigInLaunchedRuns"] == {"enabled": True}, (
        "run pods get the same Secrets"
    )


def test_every_shell_block_of_the_deployment_guide_says_whether_ci_runs_it():
    text = GUIDE.read_text(encoding="utf-8")
    ci_script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    blocks = list(re.finditer(r"```bash\n(.*?)```", text, re.DOTALL))
    assert len(blocks) >= 5
    for block in blocks:
        before = text[: block.start()].rstrip().rsplit("\n\n", 1)[-1]
        marks = [m for m in ("**Run in CI**", "**Untested here**") if m in before]
        assert len(marks) == 1, f"unmarked or doubly marked block:\n{block.group(0)}"
        if marks == ["**Run in CI**"]:
            scripts = re.findall(r"python3 (scripts/\S+\.py)", block.group(1))
            for script in scripts:
                assert script in ci_script, f"{script} is marked as run in CI but .ci/run lacks it"
