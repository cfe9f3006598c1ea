"""The failure classifier: structured facts from an exception chain, and what is transient."""

import pytest
import requests

from restsync_dagster.connector.templates import MissingEnvVarError
from restsync_dagster.failures.classify import Hints, classify, is_transient
from restsync_dagster.failures.errors import ResponseContractError
from restsync_dagster.failures.redaction import Redactor

RETRY = (429, 500, 502, 503, 504)


def http_error(status: int, url: str, retry_after: str | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.url = url
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return requests.HTTPError(f"{status} Error for url: {url}", response=response)


def wrapped(inner: BaseException) -> BaseException:
    """Wrap like dlt does: PipelineStepFailed(.exception=ResourceExtractionError(...)) from inner."""
    from dlt.extract.exceptions import ResourceExtractionError

    try:
        try:
            raise inner
        except BaseException as exc:
            raise ResourceExtractionError("events", None, str(exc), "generator") from exc
    except ResourceExtractionError as outer:
        return outer


@pytest.mark.parametrize(("status", "transient"), [(429, True), (500, True), (502, True), (503, True),
                                                   (504, True), (400, False), (401, False),
                                                   (403, False), (404, False), (422, False),
                                                   (418, False), (501, False)])  # fmt: skip
def test_statuses_in_the_connectors_retry_list_are_transient_and_others_are_not(status, transient):
    assert is_transient("http_status", status, RETRY) is transient


def test_timeouts_and_connection_errors_are_transient_and_config_problems_are_not():
    assert is_transient("timeout", None, RETRY) and is_transient("connection_error", None, RETRY)
    assert not is_transient("missing_env_var", None, RETRY)
    assert not is_transient("invalid_config", None, RETRY)
    assert not is_transient("bad_response", None, RETRY)


def test_a_wrapped_429_yields_resource_status_redacted_url_and_retry_after():
    exc = wrapped(
        http_error(429, "http://h/v1/events?api_key=SECRETKEY&offset=0", retry_after="17")
    )
    failure = classify(exc, connector="analytics", retry_statuses=RETRY)
    assert (failure.resource, failure.status, failure.retry_after, failure.transient) == (
        "events", 429, 17.0, True,
    )  # fmt: skip
    assert failure.url == "http://h/v1/events?api_key=***&offset=0"
    assert failure.as_metadata()["restsync/status"] == 429
    assert "SECRETKEY" not in failure.message()


def test_a_401_is_permanent_and_says_to_check_the_key():
    failure = classify(
        wrapped(http_error(401, "http://h/v1/events")), connector="a", retry_statuses=RETRY
    )
    assert not failure.transient and "API key" in failure.message()


def test_an_oauth_error_answer_is_told_in_the_servers_words_with_secrets_masked():
    error = http_error(400, "http://h/oauth/token")
    error.response._content = (
        b'{"error": "invalid_grant", "error_description": "Token  rt-SECRET-1   expired"}'
    )
    failure = classify(
        wrapped(error),
        connector="a",
        retry_statuses=RETRY,
        redactor=Redactor(["rt-SECRET-1"]),
        hints=Hints(secret_variables=("A_REFRESH_TOKEN",)),
    )
    assert failure.detail == (
        "The OAuth server refused the request: invalid_grant (Token *** expired). "
        "Check A_REFRESH_TOKEN."
    )
    assert not failure.transient and failure.status == 400


def test_an_error_body_that_is_not_oauths_is_shown_as_the_apis_answer_not_as_oauths():
    error = http_error(400, "http://h/v1/items")
    error.response._content = b'{"error": "bad_filter"}'
    failure = classify(wrapped(error), connector="a", retry_statuses=RETRY)
    assert failure.detail == 'The API refused the request. It answered: {"error": "bad_filter"}'
    assert failure.response_body == '{"error": "bad_filter"}'


def test_a_connection_error_is_transient_and_its_url_is_redacted():
    request = requests.Request("GET", "http://h/v1/x?token=SECRETKEY").prepare()
    exc = wrapped(
        requests.ConnectionError(
            "Max retries exceeded with url: /v1/x?token=SECRETKEY", request=request
        )
    )
    failure = classify(exc, connector="a", retry_statuses=RETRY)
    assert failure.kind == "connection_error" and failure.transient
    assert "SECRETKEY" not in failure.message() and "SECRETKEY" not in str(failure.as_metadata())


def test_unknown_errors_are_permanent_and_their_text_is_redacted_by_value():
    exc = wrapped(RuntimeError("boom with key s3cr3tvalue inside"))
    failure = classify(exc, connector="a", retry_statuses=RETRY, redactor=Redactor(["s3cr3tvalue"]))
    assert failure.kind == "unknown" and not failure.transient
    assert "s3cr3tvalue" not in failure.message() and "boom" in failure.message()


def test_contract_errors_and_missing_variables_are_permanent():
    bad = classify(wrapped(ResponseContractError("events", "http://h/x", "no 'data'", 200)),
                   connector="a", retry_statuses=RETRY)  # fmt: skip
    assert (bad.kind, bad.resource, bad.transient) == ("bad_response", "events", False)
    assert "offset 200" in bad.message()
    missing = classify(MissingEnvVarError("X_KEY"), connector="a", retry_statuses=RETRY)
    assert missing.kind == "missing_env_var" and "X_KEY" in missing.message()


def test_a_full_disk_names_the_step_and_the_file_and_is_not_transient():
    import errno
    from types import SimpleNamespace

    from dlt.pipeline.exceptions import PipelineStepFailed

    from restsync_dagster.failures.classify import Hints

    full = OSError(errno.ENOSPC, "No space left on device", "/data/dlt/restsync_shop/x.jsonl")
    pipeline = SimpleNamespace(pipeline_name="restsync_shop", has_pending_data=False)
    step_failed = PipelineStepFailed(pipeline, "extract", "1.5", full)  # type: ignore[arg-type]
    failure = classify(
        step_failed,
        connector="shop",
        retry_statuses=RETRY,
        hints=Hints(working_dir="dlt's working directory /data/dlt/restsync_shop"),
    )
    assert (failure.kind, failure.transient) == ("disk_full", False)
    assert failure.detail.startswith(
        "Out of space while extracting (writing dlt's working files): writing "
        "/data/dlt/restsync_shop/x.jsonl, in dlt's working directory /data/dlt/restsync_shop; "
        "the destination was not written."
    )


def test_an_error_that_only_mentions_space_in_passing_is_not_a_full_disk():
    failure = classify(RuntimeError("quota of requests exceeded"), connector="x", retry_statuses=())
    assert failure.kind == "unknown"
