"""The recorded-judge replay server, driven by the real openai client and by validators.llm."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from concord_testing.judge_replay import JudgeReplayServer
from validators.llm import InMemoryAnswerCache, ProviderConfig, grade_prompts

PAIRS = [
    {"item_id": "p1", "input": "Name a prime.", "system_a": None, "output_a": "7",
     "system_b": None, "output_b": "The number 7 is prime.", "human_preference": "b"},
    {"item_id": "p2", "input": "Say hello.", "system_a": None, "output_a": "Hello!",
     "system_b": None, "output_b": "Goodbye.", "human_preference": "a"},
    {"item_id": "p3", "input": "Count to two.", "system_a": None, "output_a": "one two",
     "system_b": None, "output_b": "1, 2", "human_preference": "b"},
]


def _comparison(judge: str, item_id: str, shown: str, swapped: str) -> dict:
    return {"item_id": item_id, "judge": judge, "model": judge.split("/")[0],
            "strategy": judge.split("/")[1], "mode": "comparison", "aux": [],
            "runs": [{"swap": False, "completion": shown, "winner": None},
                     {"swap": True, "completion": swapped, "winner": None}],
            "scores": None}


JUDGES = [
    _comparison("GPT-4/Vanilla", "p1", "Output (b)", "Output (a)"),
    _comparison("GPT-4/Vanilla", "p2", "Output (a)", "Output (b)"),
    _comparison("GPT-4/Vanilla", "p3", "Output (b)", None),
    _comparison("Falcon/CoT", "p1", "Therefore, Output (a) is better.", "Output (b) first"),
    {"item_id": "p1", "judge": "GPT-4/Rating", "model": "GPT-4", "strategy": "Rating",
     "mode": "rating", "aux": [], "runs": [{"swap": False, "completion": None, "winner": "b"},
                                           {"swap": True, "completion": None, "winner": "b"}],
     "scores": {"a": "3", "b": "8"}},
]


def _prompt(instruction: str, first: str, second: str | None = None) -> str:
    if second is None:
        return f"# Instruction:\n{instruction}\n\n# Output:\n{first}\n\n# Score:"
    return f"# Instruction:\n{instruction}\n\n# Output (a):\n{first}\n\n# Output (b):\n{second}\n\n# Which?"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    judges, pairs = tmp_path / "judges.jsonl", tmp_path / "pairs.jsonl"
    judges.write_text("".join(json.dumps(r) + "\n" for r in JUDGES), encoding="utf-8")
    pairs.write_text("".join(json.dumps(r) + "\n" for r in PAIRS), encoding="utf-8")
    return judges, pairs


@pytest.fixture
def replay(files: tuple[Path, Path]):
    with JudgeReplayServer(*files) as server:
        yield server


def _ask(replay: JudgeReplayServer, model: str, prompt: str) -> openai.types.chat.ChatCompletion:
    client = openai.OpenAI(base_url=replay.base_url, api_key="k", max_retries=0)
    return client.chat.completions.create(
        model=model, messages=[{"role": "system", "content": "You judge."},
                               {"role": "user", "content": prompt}])


def test_a_comparison_judge_answers_with_the_run_of_the_order_shown(replay) -> None:
    # given pair p1, whose output_a "7" also occurs inside output_b
    shown = _prompt("Name a prime.", "7", "The number 7 is prime.")
    swapped = _prompt("Name a prime.", "The number 7 is prime.", "7")

    # when GPT-4/Vanilla and Falcon/CoT are asked in both orders
    answers = [_ask(replay, model, prompt).choices[0].message.content
               for model in ("GPT-4/Vanilla", "Falcon/CoT") for prompt in (shown, swapped)]

    # then each gets its recorded completion for that order
    assert answers == ["Output (b)", "Output (a)", "Therefore, Output (a) is better.",
                       "Output (b) first"]


def test_the_pair_is_found_from_its_texts_and_usage_counts_words(replay) -> None:
    completion = _ask(replay, "GPT-4/Vanilla", _prompt("Say hello.", "Goodbye.", "Hello!"))

    assert completion.choices[0].message.content == "Output (b)"
    # "You judge." (2 words) + the user prompt (14 words); the answer is 2 words.
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (16, 2)


def test_a_rating_judge_gets_the_score_of_the_output_it_sees(replay) -> None:
    scores = [_ask(replay, "GPT-4/Rating", _prompt("Name a prime.", text)).choices[0].message.content
              for text in ("The number 7 is prime.", "7")]

    assert scores == ["8", "3"]


@pytest.mark.parametrize(("model", "prompt", "message"), [
    ("GPT-5/Magic", _prompt("Say hello.", "Hello!", "Goodbye."),
     "judge replay: no recorded judge is named 'GPT-5/Magic'"),
    ("GPT-4/Vanilla", _prompt("Say hello.", "Hello!", "Bonjour."),
     "judge replay: no recorded pair has both outputs in the prompt"),
    ("GPT-4/Vanilla", _prompt("Count to two.", "1, 2", "one two"),
     "judge replay: judge 'GPT-4/Vanilla' has no recorded swapped-order completion for pair p3"),
    ("Falcon/CoT", _prompt("Say hello.", "Hello!", "Goodbye."),
     "judge replay: judge 'Falcon/CoT' has no recording for pair p2"),
])
def test_what_cannot_be_replayed_is_a_404_saying_why(replay, model, prompt, message) -> None:
    with pytest.raises(openai.NotFoundError) as refused:
        _ask(replay, model, prompt)

    assert refused.value.status_code == 404
    assert refused.value.body["message"] == message


def test_the_grading_client_meets_recorded_answers_at_concurrency_32(replay) -> None:
    # given 64 prompts, half in each order, all to one judge
    provider = ProviderConfig(base_url=replay.base_url, model="GPT-4/Vanilla", api_key=None,
                              concurrency=32)
    prompts = [_prompt("Name a prime.", "7", "The number 7 is prime.") + " " * i for i in range(32)]
    prompts += [_prompt("Say hello.", "Hello!", "Goodbye.") + " " * i for i in range(32)]

    # when graded through validators.llm with a fresh cache
    results = grade_prompts(provider, prompts, cache=InMemoryAnswerCache())

    # then every one reached the server and got the recorded text
    assert replay.request_count == 64
    assert [r.raw for r in results] == ["Output (b)"] * 32 + ["Output (a)"] * 32


def test_an_unplaceable_prompt_becomes_an_error_verdict_with_the_reason(replay) -> None:
    provider = ProviderConfig(base_url=replay.base_url, model="GPT-4/Vanilla", api_key=None,
                              concurrency=1, max_retries=0)

    [result] = grade_prompts(provider, [_prompt("Say hello.", "Hi", "Bye")])

    assert result.outcome == "error"
    assert result.detail == (
        f"the provider at {replay.base_url} refused the request for model 'GPT-4/Vanilla' "
        "(HTTP 404): judge replay: no recorded pair has both outputs in the prompt"
    )


def test_the_stub_command_replays_recorded_judges(files: tuple[Path, Path]) -> None:
    repository = Path(__file__).resolve().parents[2]
    judges, pairs = files
    command = [sys.executable, "-m", "concord_testing.llm_stub", "--port", "0",
               "--replay", str(judges), "--pairs", str(pairs)]
    process = subprocess.Popen(command, cwd=repository, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        client = openai.OpenAI(base_url=banner.split()[4], api_key="k", max_retries=0)

        answer = client.chat.completions.create(
            model="GPT-4/Vanilla",
            messages=[{"role": "user", "content": _prompt("Count to two.", "one two", "1, 2")}],
        )

        assert banner.startswith("LLM stub listening on http://127.0.0.1:")
        assert answer.choices[0].message.content == "Output (b)"
    finally:
        process.terminate()
        process.wait(timeout=5)
