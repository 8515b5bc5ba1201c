"""Pairwise, rating and code-comparator judges run end to end: pairs imported in the pairwise
format, a real OpenAI-compatible stub server answering as real judges do, the real sandbox."""

import pytest
from django.urls import reverse

from annotate.models import Output
from annotate.services.imports import outputs_import
from concord_testing.llm_stub import LLMStubServer, count_tokens
from validators import llm
from validators.models import PairVerdict, Run, RunStatus, Validator, VerdictRecord
from validators.services.authoring import validator_create
from validators.services.errors import ValidatorError
from validators.services.evaluation import evaluate
from validators.services.providers import provider_save
from validators.services.runs import run_execute, run_start

# One record per pair, anonymous systems, as LLMBar ships them; the better output is the one
# naming the right city, and it is shown as output_b in the second pair.
PAIR_RECORDS = [
    {"item_id": "p1", "input": "What is the capital of France?", "system_a": None,
     "output_a": "Paris is the capital of France.", "system_b": None,
     "output_b": "Lyon, I believe.", "human_preference": "a"},
    {"item_id": "p2", "input": "What is the capital of Italy?", "system_a": None,
     "output_a": "Milan.", "system_b": None,
     "output_b": "Rome is the capital of Italy.", "human_preference": "b"},
    {"item_id": "p3", "input": "What is the capital of Spain?", "system_a": None,
     "output_a": "Madrid is the capital of Spain.", "system_b": None,
     "output_b": "Barcelona is the capital.", "human_preference": "a"},
]
CORRECT = ("Paris", "Rome", "Madrid")
PAIRWISE_TEMPLATE = (
    "Question: {input}\n\nOutput (a):\n{output_a}\n\nOutput (b):\n{output_b}\n\n"
    "Which output is better? Think step by step, then name the better output."
)
RATING_TEMPLATE = "Question: {input}\nAnswer: {output}\nRate the answer from 1 to 10."


def first_shown_is_correct(prompt: str) -> bool:
    shown_a = prompt.index("Output (a):")
    shown_b = prompt.index("Output (b):")
    correct_at = min(prompt.index(city) for city in CORRECT if city in prompt)
    return shown_a < correct_at < shown_b


def chain_of_thought_judge(prompt: str) -> str:
    """A judge that reasons, then decides for the correct output wherever it is shown."""
    better = "a" if first_shown_is_correct(prompt) else "b"
    worse = "b" if better == "a" else "a"
    return (f"Output ({worse}) names the wrong city, while Output ({better}) answers the "
            f"question directly and correctly.\n\nTherefore, Output ({better}) is better.")


def first_position_judge(prompt: str) -> str:
    """A judge with pure position bias: it always picks whatever is shown first."""
    return "After careful comparison, my verdict is [[A]]"


def rating_judge(prompt: str) -> str:
    if any(city in prompt for city in CORRECT):
        return "The answer is correct and concise. 7/10"
    return "The answer names the wrong city.\nRating: 4"


@pytest.fixture
def pairs(project):
    result = outputs_import(project=project, records=PAIR_RECORDS)
    assert not result.problems
    outputs = {o.text: o for o in Output.objects.filter(project=project)}
    return [
        (outputs[r["output_a"]], outputs[r["output_b"]]) for r in PAIR_RECORDS
    ]


@pytest.fixture
def stub():
    with LLMStubServer(responder=chain_of_thought_judge) as server:
        yield server


@pytest.fixture
def provider(project, stub):
    # One request at a time, so a scripted failure of "the next two requests" hits one pair.
    return provider_save(project=project, base_url=stub.base_url, model="judge", concurrency=1)


def run_now(project, validators, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = run_start(project=project, validators=validators)
    return Run.objects.get(pk=run.pk)


def verdict_of(validator, output_a, output_b):
    return PairVerdict.objects.get(validator=validator, output_a=output_a, output_b=output_b)


def pairwise_judge(project, provider, **options):
    return validator_create(project=project, kind="llm", target="pair", name="judge",
                            source=PAIRWISE_TEMPLATE, provider=provider, **options)


@pytest.mark.django_db
class TestPairwiseLLMJudge:
    def test_run_asks_both_orders_and_stores_both_answers(
        self, project, pairs, provider, stub, django_capture_on_commit_callbacks
    ):
        judge = pairwise_judge(project, provider)

        run = run_now(project, [judge], django_capture_on_commit_callbacks)

        assert (run.status, run.total, run.done, run.failed) == (RunStatus.DONE, 3, 3, 0)
        assert stub.count("/chat/completions") == 6
        paris, lyon = pairs[0]
        first = verdict_of(judge, paris, lyon)
        assert (first.winner, first.first_winner, first.second_winner, first.inconsistent) == ("a", "a", "a", False)
        assert first.first_answer.endswith("Therefore, Output (a) is better.")
        # Asked with Lyon shown first, the judge named the second-shown output, (b): Paris.
        assert first.second_answer.endswith("Therefore, Output (b) is better.")
        milan, rome = pairs[1]
        second = verdict_of(judge, milan, rome)
        assert (second.winner, second.first_winner, second.second_winner) == ("b", "b", "b")
        prompt = llm.render_pair_prompt(PAIRWISE_TEMPLATE, output_a=paris.text, output_b=lyon.text,
                                        input=PAIR_RECORDS[0]["input"], reference=None, meta={})
        assert first.tokens == 2 * count_tokens(prompt) + count_tokens(first.first_answer) + count_tokens(first.second_answer)
        assert first.run_id == run.pk

    def test_position_biased_judge_is_inconsistent_and_counts_as_a_tie(
        self, project, pairs, provider, stub, django_capture_on_commit_callbacks
    ):
        stub.set_responder(first_position_judge)
        judge = pairwise_judge(project, provider)

        run_now(project, [judge], django_capture_on_commit_callbacks)

        verdicts = list(PairVerdict.objects.filter(validator=judge).order_by("output_a_id"))
        assert [(v.winner, v.first_winner, v.second_winner, v.inconsistent) for v in verdicts] == [
            ("tie", "a", "b", True)] * 3
        assert "the two orders disagree" in verdicts[0].detail

    def test_position_biased_judge_is_an_error_when_set_so(
        self, project, pairs, provider, stub, django_capture_on_commit_callbacks
    ):
        stub.set_responder(first_position_judge)
        judge = pairwise_judge(project, provider, inconsistent_is_tie=False)

        run = run_now(project, [judge], django_capture_on_commit_callbacks)

        assert sorted(PairVerdict.objects.filter(validator=judge).values_list("winner", "inconsistent")) == [
            ("error", True)] * 3
        assert (run.done, run.failed) == (3, 3)

    def test_bare_answers_and_a_refusal(self, project, pairs, provider, stub, django_capture_on_commit_callbacks):
        def judge_answers(prompt: str) -> str:
            if "France" in prompt:
                return "Output (a)" if first_shown_is_correct(prompt) else "Output (b)"
            if "Italy" in prompt:
                return "[[A]]" if first_shown_is_correct(prompt) else "[[B]]"
            return "I'm sorry, but I can't help with comparing these responses."

        stub.set_responder(judge_answers)
        judge = pairwise_judge(project, provider)

        run = run_now(project, [judge], django_capture_on_commit_callbacks)

        assert verdict_of(judge, *pairs[0]).winner == "a"
        assert verdict_of(judge, *pairs[1]).winner == "b"
        refused = verdict_of(judge, *pairs[2])
        assert (refused.winner, refused.first_winner, refused.second_winner) == ("error", "", "")
        assert refused.first_answer == "I'm sorry, but I can't help with comparing these responses."
        assert "could not read a winner" in refused.detail
        assert (run.done, run.failed) == (3, 1)

    def test_own_answer_pattern_is_tried_first(self, project, pairs, provider, stub, django_capture_on_commit_callbacks):
        stub.set_responder(lambda prompt: "Verdict: " + ("FIRST" if first_shown_is_correct(prompt) else "SECOND"))
        judge = pairwise_judge(project, provider, answer_patterns=r"Verdict: (FIRST|SECOND)")

        run_now(project, [judge], django_capture_on_commit_callbacks)

        # FIRST/SECOND is not a, b or tie: the pattern matched but named no winner.
        assert set(PairVerdict.objects.filter(validator=judge).values_list("winner", flat=True)) == {"error"}

    def test_a_resumed_run_skips_stored_pairs_and_retries_errors(
        self, project, pairs, provider, stub, django_capture_on_commit_callbacks
    ):
        judge = pairwise_judge(project, provider)
        stub.fail_next(2, status=400)
        first_run = run_now(project, [judge], django_capture_on_commit_callbacks)
        failed = verdict_of(judge, *pairs[0])
        assert (failed.winner, first_run.failed) == ("error", 1)
        assert "HTTP 400" in failed.detail
        requests_so_far = stub.count("/chat/completions")

        # The same run restarted (a worker died after its last batch): nothing is asked again,
        # not even its own error.
        Run.objects.filter(pk=first_run.pk).update(status=RunStatus.RUNNING)
        run_execute(run_id=first_run.pk)
        assert stub.count("/chat/completions") == requests_so_far

        second_run = run_now(project, [judge], django_capture_on_commit_callbacks)

        assert stub.count("/chat/completions") == requests_so_far + 2
        retried = verdict_of(judge, *pairs[0])
        assert (retried.winner, retried.run_id) == ("a", second_run.pk)
        assert retried.pk != failed.pk
        assert PairVerdict.objects.filter(validator=judge).count() == 3
        assert (second_run.done, second_run.failed) == (3, 0)


@pytest.mark.django_db
class TestRatingJudge:
    def test_per_output_with_a_threshold(self, project, pairs, provider, stub, django_capture_on_commit_callbacks):
        stub.set_responder(rating_judge)
        rater = validator_create(project=project, kind="rating", name="rater", source=RATING_TEMPLATE,
                                 threshold=5, provider=provider)

        run = run_now(project, [rater], django_capture_on_commit_callbacks)

        paris, lyon = pairs[0]
        assert VerdictRecord.objects.filter(validator=rater, output=paris).values_list("outcome", "score").get() == ("pass", 7.0)
        assert VerdictRecord.objects.filter(validator=rater, output=lyon).values_list("outcome", "score").get() == ("fail", 4.0)
        assert (run.total, run.done, run.failed) == (6, 6, 0)

    def test_per_output_without_a_threshold_stores_scores(self, project, pairs, provider, stub):
        stub.set_responder(rating_judge)
        rater = validator_create(project=project, kind="rating", name="rater", source=RATING_TEMPLATE,
                                 provider=provider)

        evaluations = evaluate(rater, list(pairs[0]))

        assert [(e.outcome, e.score) for e in evaluations] == [("score", 7.0), ("score", 4.0)]

    def test_an_answer_without_a_number_is_an_error_with_the_answer_kept(self, project, pairs, provider, stub):
        stub.set_responder(lambda prompt: "I cannot rate this.")
        rater = validator_create(project=project, kind="rating", name="rater", source=RATING_TEMPLATE,
                                 provider=provider)

        [evaluation] = evaluate(rater, [pairs[0][0]])

        assert (evaluation.outcome, evaluation.score) == ("error", None)
        assert evaluation.detail == "could not read a rating from the answer\nI cannot rate this."

    def test_pairwise_compares_the_two_scores(self, project, pairs, provider, stub, django_capture_on_commit_callbacks):
        stub.set_responder(rating_judge)
        rater = validator_create(project=project, kind="rating", target="pair", name="rater",
                                 source=RATING_TEMPLATE, provider=provider)

        run = run_now(project, [rater], django_capture_on_commit_callbacks)

        assert stub.count("/chat/completions") == 6  # each output once
        milan, rome = pairs[1]
        verdict = verdict_of(rater, milan, rome)
        assert (verdict.winner, verdict.score_a, verdict.score_b) == ("b", 4.0, 7.0)
        assert (verdict.first_winner, verdict.second_winner, verdict.inconsistent) == ("", "", False)
        assert verdict.second_answer == "The answer is correct and concise. 7/10"
        assert (run.total, run.done, run.failed) == (3, 3, 0)


LONGER_WINS = "def compare(output_a, output_b, input, reference, meta):\n    return len(output_a) - len(output_b)\n"
ALWAYS_FIRST = "def compare(output_a, output_b, input, reference, meta):\n    return 'a'\n"
MENTIONS_CAPITAL = (
    "def compare(output_a, output_b, input, reference, meta):\n"
    "    a, b = 'capital' in output_a, 'capital' in output_b\n"
    "    return 'tie' if a == b else ('a' if a else 'b')\n"
)
BROKEN = "def compare(output_a, output_b, input, reference, meta):\n    return 1 / 0\n"
RETURNS_BOOL = "def compare(output_a, output_b, input, reference, meta):\n    return True\n"


@pytest.mark.django_db
class TestCodeComparator:
    def test_numeric_comparator_in_both_orders(self, project, pairs, django_capture_on_commit_callbacks):
        comparator = validator_create(project=project, kind="code", target="pair", name="longer", source=LONGER_WINS)

        run = run_now(project, [comparator], django_capture_on_commit_callbacks)

        paris, lyon = pairs[0]
        verdict = verdict_of(comparator, paris, lyon)
        difference = len(paris.text) - len(lyon.text)
        assert (verdict.winner, verdict.first_winner, verdict.second_winner) == ("a", "a", "a")
        assert (verdict.first_answer, verdict.second_answer) == (f"{difference:g}", f"{-difference:g}")
        assert verdict_of(comparator, *pairs[1]).winner == "b"
        assert (run.done, run.failed) == (3, 0)

    def test_named_winners_and_a_tie(self, project, pairs, django_capture_on_commit_callbacks):
        comparator = validator_create(project=project, kind="code", target="pair", name="capital", source=MENTIONS_CAPITAL)

        run_now(project, [comparator], django_capture_on_commit_callbacks)

        assert [verdict_of(comparator, *pair).winner for pair in pairs] == ["a", "b", "tie"]

    def test_a_comparator_that_always_names_the_first_is_inconsistent(self, project, pairs, django_capture_on_commit_callbacks):
        comparator = validator_create(project=project, kind="code", target="pair", name="first", source=ALWAYS_FIRST,
                                      inconsistent_is_tie=False)

        run_now(project, [comparator], django_capture_on_commit_callbacks)

        verdict = verdict_of(comparator, *pairs[0])
        assert (verdict.winner, verdict.first_winner, verdict.second_winner, verdict.inconsistent) == ("error", "a", "b", True)

    def test_meta_names_the_systems_in_the_order_shown(self, project, pairs, django_capture_on_commit_callbacks):
        by_system = validator_create(
            project=project, kind="code", target="pair", name="system", inconsistent_is_tie=False,
            source="def compare(output_a, output_b, input, reference, meta):\n"
                   "    return 'a' if meta['system_a'] == 'anonymous-a' else 'b'\n",
        )

        run_now(project, [by_system], django_capture_on_commit_callbacks)

        # Swapped, the first-shown output is anonymous-b's, so the comparator names (b): the
        # same output, hence consistent.
        verdict = verdict_of(by_system, *pairs[0])
        assert (verdict.winner, verdict.first_winner, verdict.second_winner) == ("a", "a", "a")

    def test_errors_are_error_winners_with_the_reason(self, project, pairs, django_capture_on_commit_callbacks):
        broken = validator_create(project=project, kind="code", target="pair", name="broken", source=BROKEN)
        boolean = validator_create(project=project, kind="code", target="pair", name="bool", source=RETURNS_BOOL)

        run = run_now(project, [broken, boolean], django_capture_on_commit_callbacks)

        crashed = verdict_of(broken, *pairs[0])
        assert crashed.winner == "error"
        assert "ZeroDivisionError" in crashed.detail
        assert "compare returned a bool" in verdict_of(boolean, *pairs[0]).detail
        assert (run.total, run.done, run.failed) == (6, 6, 6)


@pytest.mark.django_db
class TestRunsWithPairsAndOutputs:
    def test_total_counts_outputs_for_single_validators_and_pairs_for_pair_validators(
        self, project, pairs, django_capture_on_commit_callbacks
    ):
        single = validator_create(project=project, kind="code", name="short",
                                  source="def check(output, input, reference, meta):\n    return len(output) < 20\n")
        comparator = validator_create(project=project, kind="code", target="pair", name="longer", source=LONGER_WINS)

        run = run_now(project, None, django_capture_on_commit_callbacks)

        assert (run.status, run.total, run.done, run.failed) == (RunStatus.DONE, 6 + 3, 6 + 3, 0)
        assert VerdictRecord.objects.filter(validator=single).count() == 6
        assert PairVerdict.objects.filter(validator=comparator).count() == 3

    def test_run_page_counts_pair_winners(self, client, project, owner, pairs, django_capture_on_commit_callbacks):
        comparator = validator_create(project=project, kind="code", target="pair", name="longer", source=LONGER_WINS)
        run = run_now(project, [comparator], django_capture_on_commit_callbacks)
        client.force_login(owner)

        body = client.get(reverse("run-detail", args=[project.slug, run.pk])).content.decode()

        # Paris and Madrid outputs are longer (a); Rome's is longer (b).
        assert ('<span class="verdict winner-a">2 a</span> <span class="verdict winner-b">1 b</span> '
                '<span class="verdict winner-tie">0 tie</span> <span class="verdict error">0 error</span>') in body

    def test_external_validators_are_never_run(self, project, pairs, django_capture_on_commit_callbacks):
        external = Validator.objects.create(project=project, kind="external", name="their judge")
        comparator = validator_create(project=project, kind="code", target="pair", name="longer", source=LONGER_WINS)

        run = run_now(project, None, django_capture_on_commit_callbacks)

        assert list(run.validators.all()) == [comparator]
        assert PairVerdict.objects.filter(validator=external).count() == 0
        with pytest.raises(ValidatorError, match="External validators are imported, never run: their judge"):
            run_start(project=project, validators=[external])
        assert Run.objects.count() == 1


SECRET = "sk-live-CONCORD-PAIR-0123456789abcdef"


@pytest.mark.django_db
def test_a_key_echoed_to_a_pairwise_or_rating_judge_is_redacted(project, pairs, monkeypatch,
                                                                 django_capture_on_commit_callbacks):
    monkeypatch.setenv("CONCORD_LLM_KEY_PAIRS", SECRET)
    with LLMStubServer(echo_authorization=True) as echoing:
        provider = provider_save(project=project, base_url=echoing.base_url, model="m",
                                 api_key_env="CONCORD_LLM_KEY_PAIRS")
        judge = pairwise_judge(project, provider)
        rater = validator_create(project=project, kind="rating", target="pair", name="rater",
                                 source=RATING_TEMPLATE, provider=provider)

        run_now(project, [judge, rater], django_capture_on_commit_callbacks)

        assert echoing.requests[0].authorization == f"Bearer {SECRET}"
    stored = list(PairVerdict.objects.values_list("first_answer", "second_answer", "detail"))
    assert len(stored) == 6
    assert all(SECRET not in text for row in stored for text in row)
    assert all("[redacted key]" in first and "[redacted key]" in second for first, second, _ in stored)
