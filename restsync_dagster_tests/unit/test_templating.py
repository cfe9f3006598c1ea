import pytest

from restsync_dagster.connector.templates import (
    EnvRef,
    MissingEnvVarError,
    TemplateError,
    find_refs,
    render,
    render_tree,
)


def test_a_reference_with_a_default_is_optional_and_one_without_is_required():
    refs = find_refs("{{ env.HOST | default('localhost') }}:{{env.PORT}}")
    assert refs == [EnvRef("HOST", "localhost"), EnvRef("PORT", None)]
    assert not refs[0].required and refs[1].required


def test_double_quoted_defaults_are_read_like_single_quoted_ones():
    assert find_refs('{{ env.X | default("a b") }}') == [EnvRef("X", "a b")]


@pytest.mark.parametrize(
    "text", ["{{ env.X }", "{{ env. }}", "{{ env.X | upper }}", "{{ ENV.X }}", "{{ env }}"]
)
def test_malformed_references_are_rejected_with_the_offending_text(text):
    with pytest.raises(TemplateError) as info:
        find_refs(text)
    assert repr(text) in str(info.value), "the message quotes the offending text"


@pytest.mark.parametrize(
    "text",
    ["{{ X }}", "prefix }} suffix", "{{ }}", "{{literal_braces}}", "{{ environment }}", "{{"],
)
def test_doubled_braces_that_do_not_open_env_are_dlts_and_left_as_written(text):
    assert find_refs(text) == []
    assert render(text, {}) == text and render(text, {}, dlt_formatted=True) == text


def test_rendering_substitutes_values_and_falls_back_to_defaults():
    text = "https://{{ env.HOST | default('api.example.com') }}/v1?k={{ env.KEY }}"
    assert render(text, {"KEY": "abc"}) == "https://api.example.com/v1?k=abc"
    assert render(text, {"KEY": "abc", "HOST": "h"}) == "https://h/v1?k=abc"


def test_rendering_a_required_variable_that_is_missing_names_it():
    with pytest.raises(MissingEnvVarError) as info:
        render("{{ env.ANALYTICS_API_KEY }}", {})
    assert "ANALYTICS_API_KEY" in str(info.value)


def test_render_tree_renders_nested_strings_and_keeps_other_values():
    tree = {"a": ["{{ env.X }}", 3, {"b": "x={{ env.X }}"}], "n": None}
    assert render_tree(tree, {"X": "1"}) == {"a": ["1", 3, {"b": "x=1"}], "n": None}


GRAPHQL_BODY = "query {{ allItems(page: {page}) {{ id }} _allItemsMeta {{ count }} }}"


def test_only_env_references_are_restsyncs_and_dlts_braces_and_placeholders_stay():
    text = "{{ env.TOKEN }} " + GRAPHQL_BODY + " {incremental.start_value}"
    assert find_refs(text) == [EnvRef("TOKEN", None)]
    assert render(text, {"TOKEN": "t"}, dlt_formatted=True) == (
        "t " + GRAPHQL_BODY + " {incremental.start_value}"
    ), "dlt's doubled braces and placeholders are left for dlt, untouched"


def test_a_value_rendered_where_dlt_formats_reaches_the_api_as_written():
    rendered = render('{{"key": "{{ env.K }}"}}', {"K": "a{b}c"}, dlt_formatted=True)
    assert rendered.format() == '{"key": "a{b}c"}', "dlt's str.format gives back the value"


def test_render_tree_leaves_a_json_body_with_doubled_braces_for_dlt():
    source = {
        "client": {"base_url": "{{ env.URL }}"},
        "resources": [
            {
                "name": "items",
                "endpoint": {
                    "json": {"query": GRAPHQL_BODY, "key": "{{ env.K }}"},
                    "headers": {"X-K": "{{ env.K }}"},
                },
            }
        ],
    }
    source["client"]["headers"] = {"X-Escaped": "{{literal_braces}}"}  # as in dlt's own tests
    rendered = render_tree(source, {"URL": "http://h{1}", "K": "v}"})
    assert rendered["client"] == {
        "base_url": "http://h{1}",
        "headers": {"X-Escaped": "{{literal_braces}}"},
    }, "dlt does not format the client: values and dlt's text as written"
    endpoint = rendered["resources"][0]["endpoint"]
    assert endpoint["json"] == {"query": GRAPHQL_BODY, "key": "v}}"}
    assert endpoint["headers"] == {"X-K": "v}}"}
