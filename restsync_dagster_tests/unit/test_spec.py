"""Connector files: every bundled one is valid; every mistake a user can make gets one clear line."""

import dataclasses
from pathlib import Path

import pytest

from restsync_dagster.connector import (
    ConnectorFileError,
    load_connector_file,
    load_connectors,
    parse_connector,
)
from restsync_dagster.settings import BUNDLED_CONNECTORS_DIR

VALID = """
name: analytics
description: Events from an analytics API
owners: [data-eng@example.com]
tags: {domain: marketing}
schedule: "0 * * * *"
retry: {statuses: [429, 500, 502, 503, 504], max_retries: 3, backoff_factor: 2}
source:
  client:
    base_url: "{{ env.ANALYTICS_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.ANALYTICS_API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: events
      endpoint: {path: /v1/events, data_selector: data, paginator: {type: offset, limit: 100}}
"""


def problems_of(text: str, file: str = "analytics.yaml") -> list[str]:
    """The problems as ``file: key path: message`` (their lines are tested on their own)."""
    with pytest.raises(ConnectorFileError) as info:
        parse_connector(text, file)
    return [str(dataclasses.replace(p, line=None)) for p in info.value.problems]


def test_the_five_bundled_connectors_are_valid_and_need_an_api_key_each():
    connectors = load_connectors([BUNDLED_CONNECTORS_DIR])
    assert sorted(c.name for c in connectors) == [
        "analytics", "communications", "database", "ecommerce", "generic",
    ]  # fmt: skip
    for connector in connectors:
        assert connector.required_env == [f"{connector.name.upper()}_API_KEY"]
        assert connector.secret_env == [f"{connector.name.upper()}_API_KEY"]
        assert len(connector.resources) >= 2
        retry = connector.config.retry
        assert (retry.statuses, retry.max_retries, retry.backoff_factor) == (
            (429, 500, 502, 503, 504), 3, 2.0,
        )  # fmt: skip


def test_each_bundled_resource_uses_the_seed_contract():
    for connector in load_connectors([BUNDLED_CONNECTORS_DIR]):
        for entry in connector.config.source["resources"]:
            endpoint = entry["endpoint"]
            assert endpoint["data_selector"] == "data"
            assert endpoint["paginator"] == {"type": "offset", "limit": 100}
        auth = connector.config.source["client"]["auth"]
        assert (auth["type"], auth["name"], auth["location"]) == ("api_key", "api_key", "query")
        for info in connector.resources:
            assert info.primary_key == ("id",) and info.write_disposition == "merge"


def test_a_valid_file_lists_its_variables_with_secrecy_and_key_paths():
    connector = parse_connector(VALID, "analytics.yaml")
    by_name = {v.name: v for v in connector.env_vars}
    assert by_name["ANALYTICS_API_KEY"].secret
    assert by_name["ANALYTICS_API_KEY"].key_paths == ("source.client.auth.api_key",)
    assert not by_name["ANALYTICS_BASE_URL"].secret
    assert connector.config.schedule is not None and connector.config.schedule.cron == "0 * * * *"


def test_a_yaml_syntax_error_names_the_file_and_line():
    assert problems_of("name: x\nsource: [unclosed\n") == [
        "analytics.yaml: YAML error at line 3, column 1: did not find expected ',' or ']'"
    ]


def test_a_duplicate_yaml_key_is_an_error_not_a_silent_override():
    (problem,) = problems_of(VALID.replace("name: analytics", "name: analytics\nname: other"))
    assert "duplicate key 'name'" in problem and "line 3" in problem


def test_a_typo_in_a_project_key_suggests_the_right_one():
    (problem,) = problems_of(VALID.replace("schedule:", "shedule:"))
    assert problem.startswith("analytics.yaml: shedule: unknown key (did you mean 'schedule'?)")


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            "rate_limit: {max_concurency: 2}",
            "rate_limit.max_concurency: unknown key (did you mean 'max_concurrency'?); "
            "allowed: from_headers, max_concurrency, requests_per_second, reserve",
        ),
        (
            "freshness: {max_lag: 1h, warn_lg: 30m}",
            "freshness.warn_lg: unknown key (did you mean 'warn_lag'?); allowed: max_lag, warn_lag",
        ),
        (
            "partitions: {daily: {start: 2026-01-01, timezon: UTC}}",
            "partitions.daily.timezon: unknown key (did you mean 'timezone'?); "
            "allowed: end, start, timezone",
        ),
    ],
)
def test_a_typo_in_a_nested_block_suggests_that_blocks_own_keys(block, expected):
    assert problems_of(VALID.replace("schedule:", f"{block}\nschedule:")) == [
        f"analytics.yaml: {expected}"
    ]


def test_a_typo_inside_source_is_caught_by_dlt_validation_with_its_key_path():
    (problem,) = problems_of(VALID.replace("paginator:", "pagintor:"))
    assert problem.startswith(
        "analytics.yaml: source.resources[0].endpoint.pagintor: unknown key (did you mean 'paginator'?)"
    )


def test_a_non_positive_page_limit_is_reported_at_its_key_path():
    (problem,) = problems_of(VALID.replace("limit: 100", "limit: 0"))
    assert problem == (
        "analytics.yaml: source.resources[0].endpoint.paginator.limit: must be a positive integer"
    )


def test_wrong_types_are_reported_with_their_key_paths():
    problems = problems_of(VALID.replace("max_retries: 3", "max_retries: many"))
    assert problems == [
        "analytics.yaml: retry.max_retries: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_statuses_that_retrying_cannot_fix_are_not_retry_statuses():
    text = VALID.replace("statuses: [429, 500, 502, 503, 504]", "statuses: [401, 429, 404]")
    assert problems_of(text) == [
        "analytics.yaml: retry.statuses: [401, 404] cannot be retry statuses: retrying does not "
        "fix them"
    ]


def test_a_literal_api_key_is_refused():
    (problem,) = problems_of(VALID.replace('"{{ env.ANALYTICS_API_KEY }}"', "sk_live_abc123"))
    assert problem.startswith("analytics.yaml: source.client.auth.api_key: a credential must come")
    assert "sk_live_abc123" not in problem


@pytest.mark.parametrize(
    ("fragment", "key_path"),
    [
        ("headers: {Authorization: 'Bearer abc'}", "source.client.headers.Authorization"),
        ("headers: {X-Api-Key: abc}", "source.client.headers.X-Api-Key"),
        ("auth: {type: bearer, token: abc}", "source.client.auth.token"),
        ("auth: {type: http_basic, username: me, password: pw}", "source.client.auth.password"),
    ],
)
def test_literal_credentials_under_other_names_are_refused(fragment, key_path):
    text = VALID.replace(
        'auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.ANALYTICS_API_KEY }}"}',
        fragment,
    )
    problems = problems_of(text)
    assert any(p.startswith(f"analytics.yaml: {key_path}: a credential") for p in problems), (
        problems
    )


@pytest.mark.parametrize("name", ["app_key", "appid", "signature", "sig", "client_token"])
def test_a_name_redaction_masks_is_one_validation_refuses_as_a_literal(name):
    from restsync_dagster.failures.redaction import redact_url

    assert redact_url(f"https://api.example.com/v1?{name}=abc") == (
        f"https://api.example.com/v1?{name}=***"
    )
    text = VALID.replace(
        'auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.ANALYTICS_API_KEY }}"}',
        f"headers: {{{name}: abc}}",
    )
    problems = problems_of(text)
    assert any(
        p.startswith(f"analytics.yaml: source.client.headers.{name}: a credential")
        for p in problems
    ), problems


def test_a_credential_with_a_default_is_refused():
    text = VALID.replace(
        "{{ env.ANALYTICS_API_KEY }}", "{{ env.ANALYTICS_API_KEY | default('k') }}"
    )
    (problem,) = problems_of(text)
    assert "cannot have a default" in problem


def test_a_literal_password_in_a_url_is_refused():
    text = VALID.replace('"{{ env.ANALYTICS_BASE_URL }}"', '"https://me:hunter22@api.example.com"')
    problems = problems_of(text)
    assert any("embeds a literal password" in p for p in problems)
    assert not any("hunter22" in p for p in problems)


def test_a_malformed_reference_is_reported_at_its_key_path():
    (problem,) = problems_of(
        VALID.replace("{{ env.ANALYTICS_BASE_URL }}", "{{ env.ANALYTICS_BASE_URL | upper }}")
    )
    assert problem.startswith("analytics.yaml: source.client.base_url: malformed reference")


def test_a_base_url_missing_its_env_word_is_not_a_url_and_says_how_to_write_a_variable():
    (problem,) = problems_of(
        VALID.replace("{{ env.ANALYTICS_BASE_URL }}", "{{ ANALYTICS_BASE_URL }}")
    )
    assert problem == (
        "analytics.yaml: source.client.base_url: '{{ ANALYTICS_BASE_URL }}' is not an http(s) "
        "URL; a variable is written {{ env.NAME }}"
    )


def test_duplicate_resource_names_are_reported():
    text = VALID + ("    - name: events\n      endpoint: {path: /v1/other, data_selector: data}\n")
    (problem,) = problems_of(text)
    assert problem == (
        "analytics.yaml: source.resources[1].name: resource name 'events' is already used by "
        "source.resources[0]"
    )


def test_every_problem_of_a_file_is_reported_at_once():
    text = VALID.replace("name: analytics", "name: Analytics").replace("limit: 100", "limit: -1")
    text = text.replace("max_retries: 3", "max_retries: -1")
    problems = problems_of(text)
    assert len(problems) == 3
    assert any(p.startswith("analytics.yaml: name:") for p in problems)


def test_an_invalid_cron_and_time_zone_are_reported():
    text = VALID.replace(
        'schedule: "0 * * * *"', "schedule: {cron: 'every hour', timezone: Mars/Base}"
    )
    problems = problems_of(text)
    assert any(p.startswith("analytics.yaml: schedule.cron: 'every hour' is not") for p in problems)
    assert any(
        p.startswith("analytics.yaml: schedule.timezone: unknown time zone") for p in problems
    )


def test_processing_steps_may_name_an_importable_callable():
    text = VALID.replace(
        "    - name: events\n",
        "    - name: events\n      processing_steps: [{map: 'json:loads'}]\n",
    )
    assert parse_connector(text, "analytics.yaml").name == "analytics"
    broken = text.replace("json:loads", "no_such_module_xyz:f")
    (problem,) = problems_of(broken)
    assert problem.startswith(
        "analytics.yaml: source.resources[0].processing_steps[0].map: cannot import 'no_such_module_xyz:f'"
    )


def test_the_same_connector_name_in_two_files_is_an_error(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yaml").write_text(VALID)
    with pytest.raises(ConnectorFileError) as info:
        load_connectors([tmp_path])
    assert [str(dataclasses.replace(p, line=None)) for p in info.value.problems] == [
        f"{tmp_path / 'b.yaml'}: name: connector name 'analytics' is already used by "
        f"{tmp_path / 'a.yaml'}"
    ]


def test_problems_of_several_files_are_collected_together(tmp_path: Path):
    (tmp_path / "one.yaml").write_text("name: one\n")
    (tmp_path / "two.yml").write_text("- not a mapping\n")
    with pytest.raises(ConnectorFileError) as info:
        load_connectors([tmp_path])
    lines = str(info.value).splitlines()
    assert lines[0] == "2 problems in connector files:"
    assert "one.yaml: source: is required" in lines[1]
    assert "two.yml: a connector file is a YAML mapping, this one is a list" in lines[2]


def test_a_missing_connector_directory_is_reported(tmp_path: Path):
    with pytest.raises(ConnectorFileError) as info:
        load_connectors([tmp_path / "nope"])
    assert "connector directory does not exist" in str(info.value)


def test_an_unreadable_file_is_reported_by_its_path(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConnectorFileError) as info:
        load_connector_file(path)
    assert str(info.value.problems[0]).startswith(f"{path}: cannot read:")


def test_partitions_need_an_incremental_resource_to_map_onto():
    (problem,) = problems_of(
        VALID.replace("schedule:", "partitions: {daily: {start: 2026-01-01}}\nschedule:")
    )
    assert problem.startswith(
        "analytics.yaml: partitions.daily: partitions map onto an incremental window"
    )


def test_partitions_take_exactly_one_granularity_and_an_iso_start():
    text = VALID.replace(
        "schedule:",
        "partitions: {daily: {start: 2026-01-01}, hourly: {start: 2026-01-01}}\nschedule:",
    )
    assert problems_of(text) == [
        "analytics.yaml: partitions: give exactly one of hourly, daily, weekly, monthly"
    ]
    text = VALID.replace("schedule:", "partitions: {daily: {start: soon}}\nschedule:")
    assert problems_of(text) == [
        "analytics.yaml: partitions.daily.start: 'soon' is not an ISO date such as 2026-01-01"
    ]


def test_schema_discovery_must_name_a_resource_and_freshness_a_duration():
    text = VALID.replace("schedule:", "schema_discovery: {evnts: {path: /v1/schema}}\nschedule:")
    assert problems_of(text) == [
        "analytics.yaml: schema_discovery.evnts: no resource named 'evnts'; resources: events"
    ]
    text = VALID.replace("schedule:", "freshness: {max_lag: a day}\nschedule:")
    assert problems_of(text) == [
        "analytics.yaml: freshness.max_lag: 'a day' is not a duration such as '30m', '26h' or '2d'"
    ]


def test_a_password_reference_in_a_url_makes_that_variable_a_secret():
    text = VALID.replace(
        '"{{ env.ANALYTICS_BASE_URL }}"',
        '"https://me:{{ env.ANALYTICS_PASSWORD }}@api.example.com"',
    )
    connector = parse_connector(text, "analytics.yaml")
    assert set(connector.secret_env) == {"ANALYTICS_API_KEY", "ANALYTICS_PASSWORD"}
