"""The LLM client for judges that read their own answers: pairwise templates, and raw answers
from grade_prompts, against the real loopback stub server."""

import pytest

from concord_testing.llm_stub import LLMStubServer
from validators.llm import (
    InMemoryAnswerCache,
    PromptTemplateError,
    ProviderConfig,
    check_pair_template,
    grade_prompts,
    render_pair_prompt,
)


def test_pair_template_fills_both_outputs_in_the_order_given():
    prompt = render_pair_prompt("{input}|{output_a}|{output_b}|{reference}|{meta[system_a]}", output_a="one",
                                output_b="two", input="q", reference=None, meta={"system_a": "s1"})

    assert prompt == "q|one|two||s1"


@pytest.mark.parametrize(("template", "problems"), [
    ("{output_a} vs {output_b}", []),
    ("{output} vs {output_b}", ["unknown field 'output' in prompt template"]),
    ("{output_a}", ["the template never uses {output_b}, so the judge would not see that output"]),
    ("{output_a.__class__} {output_b}", ["unknown field 'output_a.__class__' in prompt template"]),
])
def test_pair_template_problems(template, problems):
    assert check_pair_template(template) == problems


def test_rendering_refuses_what_the_check_refuses():
    with pytest.raises(PromptTemplateError, match="unknown field 'output'"):
        render_pair_prompt("{output}", output_a="a", output_b="b", input="q", reference=None, meta={})


def test_raw_answers_are_returned_unread_and_cached():
    with LLMStubServer(responder=lambda prompt: "Therefore, Output (b) is better.") as stub:
        provider = ProviderConfig(base_url=stub.base_url, model="judge", api_key=None, max_retries=0)
        cache = InMemoryAnswerCache()

        fresh = grade_prompts(provider, ["first", "second"], cache=cache, read_verdict=False)
        again = grade_prompts(provider, ["first"], cache=cache, read_verdict=False)
        graded = grade_prompts(provider, ["first"], cache=cache)

    assert [(r.outcome, r.raw, r.cached) for r in fresh] == [
        ("answered", "Therefore, Output (b) is better.", False)] * 2
    assert [(r.outcome, r.cached) for r in again] == [("answered", True)]
    # The same cached answer read as a YES/NO verdict is unreadable: the reading is the caller's.
    assert [(r.outcome, r.cached) for r in graded] == [("error", True)]
    assert stub.count("/chat/completions") == 2
