from restsync_dagster.failures.redaction import Redactor, redact_url


def test_credential_parameters_and_url_passwords_are_masked_by_name():
    url = "https://me:pw123@api.example.com/v1/x?api_token=abc&x-api-key=def&offset=100"
    assert (
        redact_url(url)
        == "https://me:***@api.example.com/v1/x?api_token=***&x-api-key=***&offset=100"
    )


def test_known_secret_values_are_masked_in_any_encoding():
    redactor = Redactor(["s3cr3t/+key"])
    text = "url?k=s3cr3t%2F%2Bkey and raw s3cr3t/+key and plus s3cr3t%2F%2Bkey"
    assert "s3cr3t" not in redactor.redact(text)
    assert redactor.redact_value({"a": ["s3cr3t/+key"], "n": 1}) == {"a": ["***"], "n": 1}


def test_very_short_values_are_not_registered_so_messages_stay_readable():
    assert Redactor(["ab"]).redact("a tab") == "a tab"
