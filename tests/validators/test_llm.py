"""The LLM grader client against a real OpenAI-compatible stub server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from concord_testing.llm_stub import NONSENSE_ANSWER, LLMStubServer, pseudo_embedding
from validators.llm import (
    UNPARSEABLE_DETAIL,
    CachedAnswer,
    InMemoryAnswerCache,
    LLMProviderError,
    LLMResult,
    MissingAPIKeyError,
    PromptTemplateError,
    ProviderConfig,
    answer_cache_key,
    chat,
    check_template,
    embed,
    grade_prompts,
    grading_cache_params,
    parse_answer,
    render_prompt,
    resolve_api_key,
)

YES = "[[yes]]"  # the stub's default keyword: prompts containing it are answered YES


@pytest.fixture
def stub() -> Iterator[LLMStubServer]:
    with LLMStubServer() as server:
        yield server


def provider_for(stub: LLMStubServer, **overrides: object) -> ProviderConfig:
    settings: dict[str, object] = {
        "base_url": stub.base_url,
        "model": "grader-model",
        "api_key": None,
        "concurrency": 4,
        "timeout_seconds": 2.0,
        "max_retries": 4,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "retry_after_max_seconds": 1.0,
    }
    settings.update(overrides)
    return ProviderConfig(**settings)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- parse_answer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("YES", "pass"),
        ("yes", "pass"),
        ("No", "fail"),
        ("PASS", "pass"),
        ("fail", "fail"),
        ("Passed.", "pass"),
        ("FAILED", "fail"),
        ("  yes  \n", "pass"),
        ("**NO**", "fail"),
        ("`YES`", "pass"),
        ("> **Yes**", "pass"),
        ("- No.", "fail"),
        ('"YES"', "pass"),
        ("Yes. The answer is grounded.", "pass"),
        ("No, the second claim has no source.", "fail"),
        ("YES!!!", "pass"),
        ("Yes, yes.", "pass"),
        ("yes\nEvery claim is backed by the passage.", "pass"),
        ("The passage never mentions the date.\n\n**NO**", "fail"),
        ("Answer: YES", "pass"),
        ("**Answer:** no", "fail"),
        ("Final answer - PASS", "pass"),
        ("The answer is NO.", "fail"),
        ("Reasoning: the tone is polite and nothing is missing.\nVerdict: pass", "pass"),
        ('{"verdict": "fail"}', "fail"),
        ("Yes.\nFinal answer: YES", "pass"),
    ],
)
def test_parse_answer_reads_the_verdict(answer: str, verdict: str) -> None:
    assert parse_answer(answer) == verdict


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "   \n\t",
        "Maybe",
        "I am not sure.",
        "Not grounded",
        "Yesterday the model was right.",
        "Nope",
        "YES or NO",
        "Yes/No",
        "PASS / FAIL",
        "Yes and no.",
        "Pass: no",
        "Yes. No, wait.",
        "Yes.\nOn reflection the date is wrong.\nAnswer: NO",
        "Answer: YES\nAnswer: NO",
        "Looking closely, there is no support for the claim.",
        NONSENSE_ANSWER,
    ],
)
def test_parse_answer_refuses_unclear_answers(answer: str) -> None:
    assert parse_answer(answer) is None


# -- prompt templates --------------------------------------------------------------------------


def test_render_prompt_fills_the_four_fields_and_keeps_literal_braces() -> None:
    template = (
        "Q: {input}\nA: {output}\nRef: {reference}\nLang: {meta[lang]} {meta[tags]}\n"
        'Reply as {{"verdict": "YES"}}'
    )

    prompt = render_prompt(
        template,
        output="Paris",
        input="Capital of France?",
        reference=None,
        meta={"lang": "en", "tags": ["geo", 1]},
    )

    assert prompt == (
        'Q: Capital of France?\nA: Paris\nRef: \nLang: en ["geo", 1]\nReply as {"verdict": "YES"}'
    )


def test_render_prompt_does_not_reinterpret_braces_inside_values() -> None:
    prompt = render_prompt(
        "{output}", output="{input.__class__} {{x}}", input="i", reference="r", meta={}
    )

    assert prompt == "{input.__class__} {{x}}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{foo}", "unknown field 'foo' in prompt template"),
        ("{output.__class__}", "unknown field 'output.__class__' in prompt template"),
        ("{meta[x].__globals__}", "unknown field 'meta[x].__globals__' in prompt template"),
        ("{meta[x][y]}", "unknown field 'meta[x][y]' in prompt template"),
        ("{output[0]}", "unknown field 'output[0]' in prompt template"),
        ("{meta}", "unknown field 'meta' in prompt template"),
        ("{}", "unknown field '' in prompt template"),
        ("{0}", "unknown field '0' in prompt template"),
        ("{output!r}", "conversion '!r' on 'output' is not allowed"),
        ("{output:>99999999}", "format spec ':>99999999' on 'output' is not allowed"),
        ("{output:{meta[w]}}", "format spec ':{meta[w]}' on 'output' is not allowed"),
    ],
)
def test_render_prompt_refuses_everything_but_the_four_fields(template: str, message: str) -> None:
    with pytest.raises(PromptTemplateError) as raised:
        render_prompt(template, output="o", input="i", reference=None, meta={"x": "v", "w": 5})

    assert str(raised.value) == message


def test_render_prompt_names_a_missing_meta_key() -> None:
    with pytest.raises(PromptTemplateError) as raised:
        render_prompt("{output} {meta[lang]}", output="o", input="i", reference=None, meta={})

    assert str(raised.value) == "meta has no key 'lang' (used as {meta[lang]})"


def test_check_template_lists_every_problem() -> None:
    assert check_template("Is {output} an answer to {input}? {{YES}} or NO") == []
    assert check_template("{output} {foo} {input.__doc__}") == [
        "unknown field 'foo' in prompt template",
        "unknown field 'input.__doc__' in prompt template",
    ]
    assert check_template("Is {input} hard?") == [
        "the template never uses {output}, so the grader would not see the output"
    ]
    assert check_template("{output} }") == [
        "malformed braces in prompt template (Single '}' encountered in format string); "
        "write {{ and }} for literal braces"
    ]


# -- grading -----------------------------------------------------------------------------------


def test_grade_prompts_returns_verdicts_in_prompt_order(stub: LLMStubServer) -> None:
    prompts = [f"Is this good? {YES}", "Is this good?", f"Really {YES} good"]
    seen: list[tuple[int, str]] = []

    results = grade_prompts(
        provider_for(stub),
        prompts,
        system_prompt="You grade answers.",
        on_result=lambda index, result: seen.append((index, result.outcome)),
    )

    assert [result.outcome for result in results] == ["pass", "fail", "pass"]
    assert [result.raw for result in results] == ["YES", "NO", "YES"]
    assert [result.detail for result in results] == ["", "", ""]
    assert [result.cached for result in results] == [False, False, False]
    # The stub counts words: system prompt (3) + user prompt, plus the one-word answer.
    assert [result.tokens for result in results] == [3 + 4 + 1, 3 + 3 + 1, 3 + 3 + 1]
    assert all(result.latency_ms > 0 for result in results)
    assert sorted(seen) == [(0, "pass"), (1, "fail"), (2, "pass")]
    assert stub.count("/chat/completions") == 3
    first = stub.requests[0].body
    assert first is not None
    assert first["model"] == "grader-model"
    assert first["temperature"] == 0.0
    assert first["messages"][0] == {"role": "system", "content": "You grade answers."}
    assert sorted(stub.chat_prompts) == sorted(prompts)


def test_grade_prompts_with_no_prompts_sends_nothing(stub: LLMStubServer) -> None:
    assert grade_prompts(provider_for(stub), []) == []
    assert stub.request_count == 0


def test_grade_prompts_retries_after_429_then_succeeds(stub: LLMStubServer) -> None:
    stub.fail_next(2, status=429)

    [result] = grade_prompts(provider_for(stub), [f"ok {YES}"])

    assert result.outcome == "pass"
    assert result.raw == "YES"
    assert result.detail.startswith("answered after 2 retries (HTTP 429: Stub fault: HTTP 429.;")
    assert stub.request_count == 3
    assert [request.status for request in stub.requests] == [429, 429, 200]


def test_grade_prompts_honours_retry_after(stub: LLMStubServer) -> None:
    stub.fail_next(1, status=429, retry_after=0.3)
    started = time.perf_counter()

    [result] = grade_prompts(provider_for(stub), ["question"])

    assert time.perf_counter() - started >= 0.3
    assert result.outcome == "fail"
    assert stub.request_count == 2


def test_grade_prompts_caps_a_long_retry_after(stub: LLMStubServer) -> None:
    stub.fail_next(1, status=503, retry_after=30)
    started = time.perf_counter()

    [result] = grade_prompts(provider_for(stub, retry_after_max_seconds=0.1), ["question"])

    assert time.perf_counter() - started < 1.0
    assert result.outcome == "fail"
    assert stub.request_count == 2


def test_grade_prompts_retries_after_500_then_succeeds(stub: LLMStubServer) -> None:
    stub.fail_next(1, status=500)

    [result] = grade_prompts(provider_for(stub), ["question"])

    assert result.outcome == "fail"
    assert result.detail == "answered after 1 retry (HTTP 500: Stub fault: HTTP 500.)"
    assert stub.request_count == 2


def test_grade_prompts_gives_up_after_max_retries(stub: LLMStubServer) -> None:
    stub.fail_next(10, status=503)

    [result] = grade_prompts(provider_for(stub, max_retries=2), ["question"])

    assert result == LLMResult(
        outcome="error",
        raw="",
        detail="gave up after 3 attempts; last error: HTTP 503: Stub fault: HTTP 503.",
        latency_ms=result.latency_ms,
        tokens=None,
        cached=False,
    )
    assert stub.request_count == 3


def test_grade_prompts_times_out_a_hanging_provider_quickly(stub: LLMStubServer) -> None:
    stub.hang_next(5, seconds=10)
    started = time.perf_counter()

    [result] = grade_prompts(provider_for(stub, timeout_seconds=0.2, max_retries=1), ["question"])

    assert time.perf_counter() - started < 1.5
    assert result.outcome == "error"
    assert result.detail == "gave up after 2 attempts; last error: no answer within 0.2 s"
    assert stub.request_count == 2


def test_grade_prompts_recovers_from_one_hang(stub: LLMStubServer) -> None:
    stub.hang_next(1, seconds=10)

    [result] = grade_prompts(provider_for(stub, timeout_seconds=0.2), [f"{YES}"])

    assert result.outcome == "pass"
    assert result.detail == "answered after 1 retry (no answer within 0.2 s)"
    assert stub.request_count == 2


def test_grade_prompts_turns_nonsense_into_an_error_and_keeps_the_text(
    stub: LLMStubServer,
) -> None:
    stub.set_nonsense()

    [result] = grade_prompts(provider_for(stub), [f"{YES}"])

    assert result.outcome == "error"
    assert result.raw == NONSENSE_ANSWER
    assert result.detail == UNPARSEABLE_DETAIL
    assert stub.request_count == 1


def test_grade_prompts_reports_a_broken_responder_as_a_server_error(stub: LLMStubServer) -> None:
    def broken(prompt: str) -> str:
        raise KeyError(prompt)

    stub.set_responder(broken)

    [result] = grade_prompts(provider_for(stub, max_retries=0), ["q"])

    assert result.outcome == "error"
    assert result.detail == (
        "gave up after 1 attempt; last error: HTTP 500: stub responder failed: KeyError('q')"
    )


def test_grade_prompts_survives_a_garbled_response(stub: LLMStubServer) -> None:
    stub.garble_next(1)

    results = grade_prompts(provider_for(stub, concurrency=1), ["first", "second"])

    assert [result.outcome for result in results] == ["error", "fail"]
    assert results[0].detail == (
        "could not read the provider's response: expected a chat.completion object, got str"
    )
    assert [request.status for request in stub.requests] == [200, 200]


def test_grade_prompts_does_not_retry_a_rejected_request(stub: LLMStubServer) -> None:
    stub.fail_next(1, status=400)

    results = grade_prompts(provider_for(stub, concurrency=1), ["first", "second"])

    assert [result.outcome for result in results] == ["error", "fail"]
    assert results[0].detail == "the provider refused the request (HTTP 400): Stub fault: HTTP 400."
    assert stub.request_count == 2


def test_grade_prompts_stops_at_a_rejected_api_key() -> None:
    with LLMStubServer(api_key="sk-right") as stub:
        results = grade_prompts(
            provider_for(stub, api_key="sk-wrong", concurrency=1), [f"q{i}" for i in range(10)]
        )

        expected = (
            f"the provider at {stub.base_url} rejected the API key (HTTP 401): "
            "Incorrect API key provided."
        )
        assert results[0].detail == expected
        assert {result.detail for result in results[1:]} == {f"not sent: {expected}"}
        assert {result.outcome for result in results} == {"error"}
        assert stub.request_count == 1
        assert stub.requests[0].authorization == "Bearer sk-wrong"


def test_grade_prompts_sends_the_api_key() -> None:
    with LLMStubServer(api_key="sk-right") as stub:
        [result] = grade_prompts(provider_for(stub, api_key="sk-right"), [YES])

        assert result.outcome == "pass"


def test_grade_prompts_fails_fast_when_the_provider_is_unreachable() -> None:
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    provider = ProviderConfig(
        base_url=base_url,
        model="m",
        api_key=None,
        concurrency=2,
        max_retries=2,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.02,
    )
    started = time.perf_counter()

    results = grade_prompts(provider, [f"q{i}" for i in range(200)])

    assert time.perf_counter() - started < 2.0
    assert {result.outcome for result in results} == {"error"}
    # The two prompts in flight when the provider was found dead were tried; the rest were not.
    connect_error = f"could not connect to the provider at {base_url}: "
    for result in results[:2]:
        assert re.fullmatch(
            rf"gave up after [123] attempts?; last error: {re.escape(connect_error)}.+",
            result.detail,
        )
    assert {result.detail.split(": ", 1)[0] for result in results[2:]} == {"not sent"}
    assert {result.detail for result in results[2:]} == {results[2].detail}
    assert results[2].detail.startswith(f"not sent: {connect_error}")


def test_cache_hit_sends_no_request(stub: LLMStubServer) -> None:
    cache = InMemoryAnswerCache()
    provider = provider_for(stub)
    prompts = [f"a {YES}", "b", "c"]
    first = grade_prompts(provider, prompts, cache=cache)

    second = grade_prompts(provider, prompts, cache=cache)

    assert stub.request_count == 3
    assert len(cache) == 3
    assert [result.outcome for result in second] == ["pass", "fail", "fail"]
    assert [result.raw for result in second] == [result.raw for result in first]
    assert [result.tokens for result in second] == [result.tokens for result in first]
    assert [result.cached for result in second] == [True, True, True]
    assert [result.latency_ms for result in second] == [0.0, 0.0, 0.0]


class CountingCache(InMemoryAnswerCache):
    def __init__(self) -> None:
        super().__init__()
        self.lookups: list[int] = []
        self.writes: list[int] = []

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        self.lookups.append(len(keys))
        return super().get_many(keys)

    def set_many(self, answers: Mapping[str, tuple[str, int | None]]) -> None:
        self.writes.append(len(answers))
        super().set_many(answers)


def test_cache_is_read_and_written_in_batches(stub: LLMStubServer) -> None:
    cache = CountingCache()
    provider = provider_for(stub, concurrency=8)
    prompts = [f"q{i}" for i in range(600)]
    params = grading_cache_params(provider, None)
    cache.set_many(
        {answer_cache_key(provider.model, prompt, params): ("NO", 2) for prompt in prompts[:530]}
    )
    cache.writes.clear()

    results = grade_prompts(provider, prompts, cache=cache)

    assert cache.lookups == [500, 100]
    assert cache.writes == [64, 6]
    assert stub.request_count == 70
    assert sum(result.cached for result in results) == 530
    assert len(cache) == 600


def test_cache_key_covers_model_temperature_and_system_prompt(stub: LLMStubServer) -> None:
    cache = InMemoryAnswerCache()
    provider = provider_for(stub)
    grade_prompts(provider, ["q"], cache=cache)

    grade_prompts(dataclasses.replace(provider, temperature=0.7), ["q"], cache=cache)
    grade_prompts(dataclasses.replace(provider, model="other"), ["q"], cache=cache)
    grade_prompts(provider, ["q"], cache=cache, system_prompt="Be strict.")
    grade_prompts(provider, ["q"], cache=cache)

    assert stub.request_count == 4
    assert len(cache) == 4


def test_cache_keeps_unparseable_answers_but_not_failed_calls(stub: LLMStubServer) -> None:
    cache = InMemoryAnswerCache()
    provider = provider_for(stub, max_retries=0)
    stub.set_nonsense()
    grade_prompts(provider, ["nonsense please"], cache=cache)
    stub.set_nonsense(False)
    stub.fail_next(1, status=500)
    grade_prompts(provider, ["broken"], cache=cache)

    key = answer_cache_key("grader-model", "nonsense please", grading_cache_params(provider, None))
    # Tokens: two prompt words plus the eleven words of the nonsense answer.
    assert cache.get_many([key]) == {key: CachedAnswer(NONSENSE_ANSWER, 2 + 11)}
    assert len(cache) == 1
    [again] = grade_prompts(provider, ["nonsense please"], cache=cache)
    assert (again.outcome, again.detail, again.cached) == ("error", UNPARSEABLE_DETAIL, True)
    assert stub.request_count == 2


def test_answer_cache_key_is_sha256_of_canonical_json() -> None:
    key = answer_cache_key("m", "pé", {"temperature": 0.0, "system_prompt": ""})

    canonical = '{"model":"m","params":{"system_prompt":"","temperature":0.0},"prompt":"pé"}'
    assert key == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert key == answer_cache_key("m", "pé", {"system_prompt": "", "temperature": 0.0})


def test_identical_prompts_are_sent_once(stub: LLMStubServer) -> None:
    seen: list[int] = []

    results = grade_prompts(
        provider_for(stub), ["same", "same", YES], on_result=lambda i, _: seen.append(i)
    )

    assert [result.outcome for result in results] == ["fail", "fail", "pass"]
    assert sorted(seen) == [0, 1, 2]
    assert stub.request_count == 2


def test_concurrency_limit_is_reached_and_never_exceeded(stub: LLMStubServer) -> None:
    stub.set_latency(0.1)

    results = grade_prompts(provider_for(stub, concurrency=4), [f"q{i}" for i in range(24)])

    assert len(results) == 24
    assert stub.max_in_flight == 4
    assert stub.request_count == 24


def test_stub_serves_32_slow_requests_at_once(stub: LLMStubServer) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "q"}]})
    connections = [http.client.HTTPConnection("127.0.0.1", stub.port, timeout=5) for _ in range(32)]
    # One quick request per connection first: the server then has a handler thread waiting on
    # each, so the timed round measures serving, not how fast a busy machine starts threads.
    for connection in connections:
        connection.request("POST", "/v1/chat/completions", body=body)
        connection.getresponse().read()
    stub.reset()
    stub.set_latency(0.1)
    start_line = threading.Barrier(33)
    statuses: list[int] = []

    def post(connection: http.client.HTTPConnection) -> None:
        start_line.wait()
        connection.request("POST", "/v1/chat/completions", body=body)
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)

    clients = [threading.Thread(target=post, args=(connection,)) for connection in connections]
    for client in clients:
        client.start()
    start_line.wait()
    started = time.perf_counter()
    for client in clients:
        client.join()
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()

    assert statuses == [200] * 32
    assert stub.request_count == 32
    assert stub.max_in_flight == 32
    # One at a time would take 3.2 s; ~0.11 s on an idle machine, the bound leaves room for a
    # loaded one.
    assert elapsed < 0.8, elapsed


def test_grader_keeps_32_requests_in_flight(stub: LLMStubServer) -> None:
    # Long enough that the client (a few ms of CPU per request) has sent all 32 before the
    # first answer comes back, even on a busy machine.
    stub.set_latency(0.3)
    provider = provider_for(stub, concurrency=32)

    results = grade_prompts(provider, [f"q{i}" for i in range(64)])

    assert {result.outcome for result in results} == {"fail"}
    assert stub.max_in_flight == 32
    assert stub.request_count == 64


def test_on_result_runs_in_the_calling_thread(stub: LLMStubServer) -> None:
    threads: set[int] = set()
    cache = InMemoryAnswerCache()
    grade_prompts(provider_for(stub), ["cached"], cache=cache)

    grade_prompts(
        provider_for(stub),
        ["cached", "fresh-1", "fresh-2"],
        cache=cache,
        on_result=lambda _index, _result: threads.add(threading.get_ident()),
    )

    assert threads == {threading.get_ident()}


def test_failing_callback_stops_the_run_and_propagates(stub: LLMStubServer) -> None:
    stub.set_latency(0.05)

    def explode(index: int, result: LLMResult) -> None:
        raise RuntimeError(f"callback failed at {result.outcome}")

    with pytest.raises(RuntimeError, match="callback failed at fail"):
        grade_prompts(
            provider_for(stub, concurrency=2), [f"q{i}" for i in range(100)], on_result=explode
        )

    time.sleep(0.1)
    # The failed delivery, the other worker's request and at most one each started meanwhile.
    assert stub.request_count <= 4


def test_grade_prompts_works_inside_a_running_event_loop(stub: LLMStubServer) -> None:
    async def caller() -> list[LLMResult]:
        return grade_prompts(provider_for(stub), [YES])

    # A thread of its own: Playwright's sync API (browser tests in the same session) leaves
    # the main thread's event loop marked running, and asyncio.run refuses to nest in it.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        [result] = pool.submit(asyncio.run, caller()).result(timeout=30)

    assert result.outcome == "pass"


# -- chat and embeddings -----------------------------------------------------------------------


def test_chat_returns_the_text_and_asks_for_json(stub: LLMStubServer) -> None:
    stub.set_responder(lambda prompt: '{"criteria": ["grounded"]}')
    stub.fail_next(1, status=429)

    text = chat(
        provider_for(stub),
        [{"role": "user", "content": "Suggest criteria."}],
        response_format_json=True,
    )

    assert text == '{"criteria": ["grounded"]}'
    assert stub.request_count == 2
    body = stub.requests[-1].body
    assert body is not None
    assert body["response_format"] == {"type": "json_object"}


def test_chat_raises_a_clear_error_when_retries_run_out(stub: LLMStubServer) -> None:
    stub.fail_next(3, status=500)

    with pytest.raises(LLMProviderError) as raised:
        chat(provider_for(stub, max_retries=2), [{"role": "user", "content": "hi"}])

    assert (
        str(raised.value) == "gave up after 3 attempts; last error: HTTP 500: Stub fault: HTTP 500."
    )


def test_chat_names_an_unreachable_provider() -> None:
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    provider = ProviderConfig(
        base_url=base_url, model="m", api_key=None, max_retries=1, backoff_base_seconds=0.01
    )

    with pytest.raises(LLMProviderError) as raised:
        chat(provider, [{"role": "user", "content": "hi"}])

    assert str(raised.value).startswith(
        f"gave up after 2 attempts; last error: could not connect to the provider at {base_url}"
    )


def test_embed_returns_one_unit_row_per_text_in_batches() -> None:
    with LLMStubServer(embedding_dimensions=16) as stub:
        texts = [f"output number {i}" for i in range(10)] + [""]

        vectors = embed(provider_for(stub, concurrency=2), texts, batch_size=4)

        assert vectors.shape == (11, 16)
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), np.ones(11), rtol=1e-6)
        np.testing.assert_allclose(vectors[3], pseudo_embedding("output number 3", 16), rtol=1e-6)
        assert stub.count("/embeddings") == 3
        batch_sizes = sorted(
            len(request.body["input"]) for request in stub.requests if request.body is not None
        )
        assert batch_sizes == [3, 4, 4]


def test_embed_of_nothing_is_empty(stub: LLMStubServer) -> None:
    assert embed(provider_for(stub), []).shape == (0, 0)
    assert stub.request_count == 0


def test_embed_retries_then_raises(stub: LLMStubServer) -> None:
    stub.fail_next(2, status=502)

    vectors = embed(provider_for(stub), ["a", "b"])

    assert vectors.shape == (2, 64)
    stub.fail_next(5, status=502)
    with pytest.raises(LLMProviderError, match="gave up after 2 attempts"):
        embed(provider_for(stub, max_retries=1), ["a", "b"])


# -- configuration -----------------------------------------------------------------------------


def test_resolve_api_key_reads_the_named_variable() -> None:
    assert resolve_api_key("GRADER_KEY", environ={"GRADER_KEY": "sk-1"}) == "sk-1"
    assert resolve_api_key(None, environ={}) is None
    assert resolve_api_key("", environ={}) is None


def test_resolve_api_key_explains_a_missing_variable() -> None:
    with pytest.raises(MissingAPIKeyError) as raised:
        resolve_api_key("GRADER_KEY", environ={})

    assert str(raised.value) == (
        "the API key environment variable GRADER_KEY is not set; "
        "export GRADER_KEY=... where the web server and the workers run"
    )


def test_provider_config_refuses_impossible_limits() -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        ProviderConfig(base_url="http://x/v1", model="m", api_key=None, concurrency=0)


def test_stub_runs_as_a_command_for_the_running_app() -> None:
    repository = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "concord_testing.llm_stub", "--port", "0"]
    command += ["--keyword", "grounded"]
    process = subprocess.Popen(command, cwd=repository, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        base_url = banner.split()[4]
        provider = ProviderConfig(base_url=base_url, model="m", api_key=None)

        results = grade_prompts(provider, ["Is it grounded?", "Is it polite?"])

        assert banner.startswith("LLM stub listening on http://127.0.0.1:")
        assert [result.outcome for result in results] == ["pass", "fail"]
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_stub_lists_models(stub: LLMStubServer) -> None:
    with urllib.request.urlopen(f"{stub.base_url}/models") as response:
        payload = json.load(response)

    assert [model["id"] for model in payload["data"]] == [
        "concord-stub",
        "concord-stub-embedding",
    ]


def test_two_endpoints_serving_one_model_name_do_not_share_cached_answers(stub: LLMStubServer) -> None:
    from dataclasses import replace

    cache = InMemoryAnswerCache()
    here = provider_for(stub)
    elsewhere = replace(here, base_url=here.base_url.replace("127.0.0.1", "localhost"))

    grade_prompts(here, ["is this grounded?"], cache=cache)
    [second] = grade_prompts(elsewhere, ["is this grounded?"], cache=cache)

    assert not second.cached
    assert stub.request_count == 2
    assert len(cache) == 2
    assert grading_cache_params(here, None)["endpoint"] == here.base_url.rstrip("/")
