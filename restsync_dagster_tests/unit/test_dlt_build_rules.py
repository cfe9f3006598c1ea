"""``restsync validate`` refuses what dlt refuses when it builds the source, offline and with no
variable set, one clean line per problem with file, line and key path; and accepts what dlt
accepts."""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from restsync_dagster.connector import ConnectorFileError, parse_connector
from restsync_dagster.connector.source_rules import AUTH_CREDENTIALS

DATA = Path(__file__).resolve().parents[1] / "data"
CASES = yaml.safe_load((DATA / "dlt_build_cases.yaml").read_text())


def connector_text(source: dict[str, Any]) -> str:
    return yaml.safe_dump({"name": "x", "source": source}, sort_keys=False)


def problems_of(source: dict[str, Any]) -> list[str]:
    with pytest.raises(ConnectorFileError) as info:
        parse_connector(connector_text(source), "x.yaml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("name", sorted(CASES["valid"]))
def test_a_config_dlt_accepts_is_a_valid_connector(name: str, monkeypatch):
    for variable in [v for v in os.environ if v.startswith(("CRM_", "CREDENTIALS__"))]:
        monkeypatch.delenv(variable)
    parse_connector(connector_text(CASES["valid"][name]), "x.yaml")


def test_every_config_dlt_accepts_passes_restsync_validate_as_one_directory(
    tmp_path, monkeypatch, capsys
):
    from restsync_dagster.cli import main

    for variable in [v for v in os.environ if v.startswith(("CRM_", "CREDENTIALS__"))]:
        monkeypatch.delenv(variable)
    for name, source in CASES["valid"].items():
        (tmp_path / f"{name}.yaml").write_text(
            yaml.safe_dump({"name": name, "source": source}, sort_keys=False)
        )
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(tmp_path))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
    assert main(["validate"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert all(name in out for name in CASES["valid"]), out


@pytest.mark.parametrize("name", sorted(CASES["invalid"]))
def test_a_config_dlt_refuses_is_refused_with_one_clean_line(name: str):
    case = CASES["invalid"][name]
    key_path, words = case["expect"]
    problems = problems_of(case["source"])
    assert problems, name
    for problem in problems:
        assert "\n" not in problem and "Traceback" not in problem
        assert problem.startswith("x.yaml:")
    assert any(f": {key_path}: " in p and words in p for p in problems), problems


def test_a_problem_carries_the_line_of_its_key():
    text = (
        "name: x\n"
        "source:\n"
        "  client: {base_url: 'https://x.example.com'}\n"
        "  resources:\n"
        "    - name: items\n"
        "      endpoint:\n"
        "        path: items\n"
        "        paginator: {type: link_header}\n"
    )
    with pytest.raises(ConnectorFileError) as info:
        parse_connector(text, "x.yaml")
    assert [str(p) for p in info.value.problems] == [
        "x.yaml:8: source.resources[0].endpoint.paginator.type: unknown paginator type "
        "'link_header' (did you mean 'header_link'?); one of: json_link, json_response, "
        "header_link, header_cursor, auto, single_page, cursor, offset, page_number"
    ]


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("0 25 * * *", "the hour 25 is out of range 0-23"),
        ("61 * * * *", "the minute 61 is out of range 0-59"),
        ("0 0 32 * *", "the day of month 32 is out of range 1-31"),
        ("0 0 * 13 *", "the month 13 is out of range 1-12"),
        ("0 0 * * 9", "the day of week 9 is out of range 0-7"),
        ("*/0 * * * *", "the minute field '*/0' has a step of 0"),
        ("0 0 * * * *", "is not a 5-field cron expression"),
    ],
)
def test_a_cron_problem_names_the_field_that_is_wrong(cron: str, words: str):
    text = f"name: x\nschedule: '{cron}'\nsource: {{client: {{base_url: 'https://x'}}, resources: [a]}}\n"
    with pytest.raises(ConnectorFileError) as info:
        parse_connector(text, "x.yaml")
    (problem,) = [str(p) for p in info.value.problems]
    assert problem.startswith("x.yaml:2: schedule.cron: ") and words in problem, problem


@pytest.mark.parametrize(
    ("auth", "suggestion"),
    [("{type: bearr, token: '{{ env.T }}'}", "bearer"), ("{type: basic_http}", "http_basic")],
)
def test_an_auth_type_misspelt_suggests_the_nearest(auth: str, suggestion: str):
    source = yaml.safe_load(f"{{client: {{base_url: 'https://x', auth: {auth}}}, resources: [a]}}")
    (problem,) = problems_of(source)
    assert f"(did you mean {suggestion!r}?)" in problem


def dlt_suite_file() -> Path | None:
    named = os.environ.get("RESTSYNC_DLT_SOURCE_CONFIGS")
    path = Path(named) if named else DATA / "source_configs.py"
    return path if path.is_file() else None


def pure_data_configs(path: Path, list_name: str) -> tuple[list[dict[str, Any]], int]:
    """The configs of ``list_name`` that are plain data, read with ``ast`` (nothing runs), and
    how many hold Python objects."""
    tree = ast.parse(path.read_text())
    node = next(
        n.value
        for n in tree.body
        if isinstance(n, ast.Assign | ast.AnnAssign)
        and any(
            getattr(t, "id", None) == list_name
            for t in ([n.target] if isinstance(n, ast.AnnAssign) else n.targets)
        )
    )
    assert isinstance(node, ast.List)
    configs, skipped = [], 0
    for element in node.elts:
        if isinstance(element, ast.Call):  # ConfigTest(expected_message=..., config=...)
            element = next(k.value for k in element.keywords if k.arg == "config")
        try:
            configs.append(ast.literal_eval(element))
        except ValueError:
            skipped += 1
    return configs, skipped


def credentials_from_env(value: Any, under_auth: bool = False) -> Any:
    """dlt's tests write literal tokens; restsync refuses them by design, so they become
    ``{{ env.NAME }}`` as a connector file would write them."""
    secrets = {name for names in AUTH_CREDENTIALS.values() for name in names}
    if isinstance(value, dict):
        return {
            k: "{{ env.DLT_TEST_SECRET }}"
            if under_auth and k in secrets and isinstance(v, str)
            else credentials_from_env(v, under_auth or k == "auth")
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [credentials_from_env(v, under_auth) for v in value]
    return value


@pytest.mark.skipif(dlt_suite_file() is None, reason="no copy of dlt's source_configs.py here")
def test_dlt_own_suite_configs(capsys):
    path = dlt_suite_file()
    assert path is not None
    valid, valid_skipped = pure_data_configs(path, "VALID_CONFIGS")
    invalid, invalid_skipped = pure_data_configs(path, "INVALID_CONFIGS")
    for config in valid:
        parse_connector(connector_text(credentials_from_env(config)), "x.yaml")
    for config in invalid:
        problems = problems_of(config)
        assert problems and all("\n" not in p and p.startswith("x.yaml:") for p in problems)
    with capsys.disabled():
        print(
            f"\ndlt suite: {len(valid)} valid accepted, {len(invalid)} invalid refused; skipped "
            f"{valid_skipped} valid and {invalid_skipped} invalid holding Python objects"
        )
