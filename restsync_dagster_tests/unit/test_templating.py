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
    "text",
    ["{{ env.X }", "{{ env. }}", "{{ X }}", "{{ env.X | upper }}", "prefix }} suffix", "{{ }}"],
)
def test_malformed_references_are_rejected_with_the_offending_text(text):
    with pytest.raises(TemplateError) as info:
        find_refs(text)
    assert repr(text) in str(info.value), "the message quotes the offending text"


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
