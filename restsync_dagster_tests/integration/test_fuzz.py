"""Property-based tests (Hypothesis, derandomized so CI is repeatable):

* any YAML, and any mutation of a valid connector file, gives a valid connector or a
  ConnectorFileError listing problems, never another exception;
* any response body an API could send either extracts or fails with an error restsync
  understands (never "unknown"), and extraction always terminates.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restsync_dagster.connector import ConnectorFileError, parse_connector
from restsync_dagster.extract.http import HttpStats, RetryPolicy, build_session
from restsync_dagster.extract.source import build_source
from restsync_dagster.failures.classify import classify

VALID: dict[str, Any] = {
    "name": "fuzz",
    "schedule": "0 * * * *",
    "retry": {"max_retries": 0, "backoff_factor": 0},
    "timeout_seconds": 2,
    "source": {
        "client": {
            "base_url": "{{ env.FUZZ_BASE_URL }}",
            "auth": {
                "type": "api_key",
                "name": "api_key",
                "location": "query",
                "api_key": "{{ env.FUZZ_KEY }}",
            },
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [
            {
                "name": "items",
                "endpoint": {
                    "path": "/v1/items",
                    "data_selector": "data",
                    "paginator": {"type": "offset", "limit": 100},
                },
            }
        ],
    },
}
SPEC_EXAMPLES = 400
RESPONSE_EXAMPLES = 300

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from paths(value, (*prefix, index))


ALL_PATHS = list(paths(VALID))[1:]


@st.composite
def mutated_connectors(draw: st.DrawFn) -> str:
    document = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        node = document
        try:
            for key in path[:-1]:
                node = node[key]
            if draw(st.booleans()):
                node[path[-1]] = draw(json_values)
            elif isinstance(node, dict):
                node.pop(path[-1], None)
        except (KeyError, IndexError, TypeError):
            continue
    return yaml.safe_dump(document)


def assert_clean_outcome(text: str) -> None:
    try:
        connector = parse_connector(text, "fuzz.yaml")
    except ConnectorFileError as exc:
        assert exc.problems, "an error lists at least one problem"
        assert all(str(p).startswith("fuzz.yaml") for p in exc.problems)
    else:
        assert connector.name


@settings(max_examples=SPEC_EXAMPLES, derandomize=True, deadline=None)
@given(mutated_connectors())
def test_any_mutation_of_a_connector_file_validates_or_lists_problems(text):
    assert_clean_outcome(text)


@settings(max_examples=SPEC_EXAMPLES, derandomize=True, deadline=None)
@given(st.text(max_size=200) | json_values.map(yaml.safe_dump))
def test_any_yaml_validates_or_lists_problems(text):
    assert_clean_outcome(text)


class _Body:
    """What the fuzz server answers, set per example."""

    status = 200
    payload = b"{}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.send_response(_Body.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(_Body.payload)))
        self.end_headers()
        self.wfile.write(_Body.payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


records = st.lists(
    st.dictionaries(st.sampled_from(["id", "name", "amount", "nested"]), json_values, max_size=4),
    max_size=6,
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {"data": records, "total": st.one_of(st.integers(-3, 30), st.none(), st.text(max_size=3))}
    ).map(lambda b: json.dumps(b).encode()),
    json_values.map(lambda v: json.dumps({"data": v, "total": 1}).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
)


@settings(
    max_examples=RESPONSE_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=bodies, status=st.sampled_from([200, 200, 200, 201, 204, 400, 404, 500]))
def test_any_response_extracts_or_fails_with_an_error_restsync_understands(
    fuzz_server, body, status
):
    _Body.status, _Body.payload = status, body
    connector = parse_connector(yaml.safe_dump(VALID), "fuzz.yaml")
    env = {"FUZZ_BASE_URL": fuzz_server, "FUZZ_KEY": "fuzz-key-1234"}
    session = build_session(
        RetryPolicy(max_retries=0, backoff_factor=0, timeout_seconds=2), HttpStats()
    )
    source = build_source(connector, env, session)  # no page cap: termination is the property
    try:
        list(source.resources["items"])
    except Exception as exc:
        failure = classify(exc, connector="fuzz", retry_statuses=(500,))
        assert failure.kind != "unknown", (body[:200], status, repr(exc)[:500])
        assert "fuzz-key-1234" not in failure.message()
