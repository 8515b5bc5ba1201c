"""Issue 13's judges through the API: the alignment answer's pairwise section and thresholds,
a suite holding a pairwise judge, and its export as JSON and as a suite.py that runs pairwise,
rating and code judges against a real loopback LLM server."""

import importlib.util
import json
import re
import subprocess
import sys

import pytest

from annotate.services.grades import grade_submit
from concord_testing.llm_stub import LLMStubServer
from tests.api.conftest import url
from validators import judging
from validators.models import PairVerdict, Provider, Suite, Validator, VerdictRecord
from validators.suite_export import suite_as_module

PAIR_PROMPT = "Question: {input}\nOutput (a): {output_a}\nOutput (b): {output_b}\nWhich output is better?"
RATING_PROMPT = "Rate this answer from 1 to 10.\n{output}"


def stub_judge(prompt: str) -> str:
    """A judge that prefers the output saying 'good', answering in the judge's own format;
    with both or neither good it names whichever output it was shown first."""
    if prompt.startswith("Rate"):
        return "Rating: 8" if "good" in prompt else "Rating: 2"
    first = re.search(r"Output \(a\): (.*)", prompt).group(1)
    second = re.search(r"Output \(b\): (.*)", prompt).group(1)
    if ("good" in first) == ("good" in second):
        return "VERDICT: A"
    return "After weighing both, VERDICT: " + ("A" if "good" in first else "B")


@pytest.fixture
def stub():
    with LLMStubServer(responder=stub_judge) as server:
        yield server


@pytest.fixture
def pairs(project, annotator_api, make_outputs):
    """Four pairs (alpha, beta), compared through the API: alpha wins q0 and q1, beta q2, q3 is a tie."""
    outputs = make_outputs(n_samples=4, systems=("alpha", "beta"))
    pairs = [(outputs[2 * i], outputs[2 * i + 1]) for i in range(4)]
    for (a, b), choice in zip(pairs, ["a", "a", "b", "tie"], strict=True):
        answer = annotator_api.post(url("comparisons/"), {"output_a": a.pk, "output_b": b.pk, "choice": choice},
                                    format="json")
        assert answer.status_code == 201
    return pairs


@pytest.fixture
def judge(project, pairs, stub):
    provider = Provider.objects.create(project=project, name="stub", base_url=stub.base_url, model="concord-stub")
    judge = Validator.objects.create(
        project=project, name="verdict judge", kind="llm", target="pair", provider=provider, source=PAIR_PROMPT,
        answer_patterns=r"VERDICT:\s*(a|b|tie)", inconsistent_is_tie=False,
    )
    PairVerdict.objects.bulk_create([
        PairVerdict(validator=judge, output_a=a, output_b=b, winner=w, first_winner=f, second_winner=s,
                    inconsistent=f != s, tokens=120)
        for (a, b), (w, f, s) in zip(pairs, [("a", "a", "a"), ("a", "a", "a"), ("b", "b", "b"),
                                           ("error", "a", "b")], strict=True)
    ])
    return judge


@pytest.mark.django_db
def test_alignment_has_a_pairwise_section_with_every_metric(reviewer_api, judge):
    body = reviewer_api.get(url("alignment/")).json()

    assert body["pairwise"] == {
        "floor": 0.6, "min_comparisons": 3, "n_comparisons": 4, "pinned": None, "excluded": [],
        "weighted": False,
        "chosen": judge.pk,
        "reason": "highest accuracy (1.00 on 3 comparisons) among judges whose position consistency meets 0.60",
        "candidates": [{
            "validator": judge.pk, "name": "verdict judge", "kind": "llm", "cost": 120.0,
            "n_pairs": 4, "n_decided": 3, "n_errors": 1, "accuracy": 1.0,
            "accuracy_ci": body["pairwise"]["candidates"][0]["accuracy_ci"],
            "accuracy_ties_half": 0.75, "kappa": 1.0, "n_both_orders": 4, "consistency": 0.75,
            "consistency_ci": body["pairwise"]["candidates"][0]["consistency_ci"],
            "first_position_rate": 0.625, "error_rate": 0.25, "why_not": None,
        }],
    }
    low, high = body["pairwise"]["candidates"][0]["accuracy_ci"]
    assert 0.0 < low < 1.0 == high


@pytest.mark.django_db
def test_alignment_without_pairs_has_no_pairwise_section(reviewer_api, make_outputs):
    make_outputs(n_samples=2)

    assert reviewer_api.get(url("alignment/")).json()["pairwise"] is None


@pytest.mark.django_db
def test_a_suite_with_only_a_pairwise_judge_is_saved_and_exported_as_json(owner_api, judge):
    saved = owner_api.post(url("suites/"), {"name": "Judge only"}, format="json")

    assert saved.status_code == 201
    assert saved.json()["validators"] == [judge.pk]
    exported = owner_api.get(saved.json()["export"]["json"]).json()
    assert exported["pairwise"]["chosen"] == judge.pk
    (entry,) = exported["validators"]
    assert {k: entry[k] for k in ("id", "name", "criterion", "kind", "target", "source", "patterns",
                                  "inconsistent_is_tie", "threshold", "threshold_source")} == {
        "id": judge.pk, "name": "verdict judge", "criterion": None, "kind": "llm", "target": "pair",
        "source": PAIR_PROMPT, "patterns": [r"VERDICT:\s*(a|b|tie)"], "inconsistent_is_tie": False,
        "threshold": None, "threshold_source": None,
    }
    assert entry["provider"]["model"] == "concord-stub"


@pytest.fixture
def rated(project, annotator, judge, stub):
    """The four pairs' outputs graded holistically (alpha passes q0, q1; beta q2; q3 both
    pass) and a rating judge's scores stored without a threshold."""
    rating = Validator.objects.create(
        project=project, name="rating judge", kind="rating", provider=judge.provider, source=RATING_PROMPT,
    )
    outputs = sorted({o for pair in PairVerdict.objects.filter(validator=judge) for o in (pair.output_a, pair.output_b)},
                     key=lambda o: o.pk)
    verdicts = ["pass", "fail", "pass", "fail", "fail", "pass", "pass", "pass"]
    scores = [8, 2, 9, 3, 2, 7, 8, 9]
    for output, verdict in zip(outputs, verdicts, strict=True):
        grade_submit(output=output, annotator=annotator, verdict=verdict, criteria={})
    VerdictRecord.objects.bulk_create([
        VerdictRecord(validator=rating, output=o, outcome="score", score=s) for o, s in zip(outputs, scores, strict=True)
    ])
    return rating


@pytest.mark.django_db
def test_exported_suite_runs_pairwise_and_rating_judges_against_a_real_llm_server(
    owner_api, reviewer_api, judge, rated, stub, tmp_path,
):
    candidates = reviewer_api.get(url("alignment/")).json()["criteria"][0]["candidates"]
    assert [(c["name"], c["threshold"], c["threshold_source"], c["status"]) for c in candidates] == [
        ("rating judge", 7.0, "picked", "chosen"),
    ]
    suite_id = owner_api.post(url("suites/"), {"name": "Both"}, format="json").json()["id"]
    module = tmp_path / "suite.py"
    module.write_bytes(owner_api.get(f"/api/suites/{suite_id}/export/?format=py").content)
    data = tmp_path / "records.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in [
        {"item_id": "p1", "input": "Hi?", "output_a": "a good answer", "output_b": "a poor answer",
         "system_a": "x", "system_b": "y"},
        {"item_id": "p2", "input": "Hi?", "output_a": "meh", "output_b": "good stuff"},
        {"item_id": "p3", "input": "Hi?", "output_a": "good one", "output_b": "good two"},
        {"item_id": "o1", "system": "x", "output": "a good answer"},
        {"item_id": "o2", "system": "x", "output": "a poor answer"},
    ]) + "\n")

    ran = subprocess.run([sys.executable, str(module), str(data)], capture_output=True, text=True,
                         timeout=60, env={})

    assert ran.returncode == 0, ran.stderr
    lines = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [(x["item_id"], x["winner"]) for x in lines[:3]] == [("p1", "a"), ("p2", "b"), ("p3", "error")]
    assert lines[2]["judges"]["verdict judge"] == {"winner": "error", "first": "a", "second": "b", "inconsistent": True}
    assert [(x["item_id"], x["verdicts"], x["suite"]) for x in lines[3:]] == [
        ("o1", {"rating judge": "pass"}, "pass"), ("o2", {"rating judge": "fail"}, "fail"),
    ]
    # Two orders for each of three pairs, and one rating per output.
    assert stub.request_count == 8


def load_module(tmp_path, text):
    path = tmp_path / "exported_suite.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("exported_suite", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ANSWERS = [
    "A", "(b)", "Output (a)", "Output B.", "[[A]]", "[[C]]", "tie", "Both are equally good.",
    "Output (a) is better than Output (b).", "I prefer Output (b).", "Let me think. Output (a) is vague; "
    "Output (b) is precise. Therefore, Output (b) is better.", "I cannot decide.", "", "Rating: 7",
    "7/10", "8", "score of 4.5", "It's a tie.", "neither output is better", "[[B]] because [[A]] was wrong... [[B]]",
]


@pytest.mark.django_db
def test_the_copied_answer_rules_agree_with_judging_py(owner_api, judge, tmp_path):
    suite_id = owner_api.post(url("suites/"), {}, format="json").json()["id"]
    module = load_module(tmp_path, suite_as_module(Suite.objects.get(pk=suite_id)))

    for answer in ANSWERS:
        assert module.parse_pairwise_answer(answer) == judging.parse_pairwise_answer(answer), answer
        assert module.parse_pairwise_answer(answer, [r"VERDICT:\s*(a|b)"]) == judging.parse_pairwise_answer(
            answer, [r"VERDICT:\s*(a|b)"])
        assert module.parse_rating(answer) == judging.parse_rating(answer), answer
    for shown in ("a", "b", "tie", None):
        for swapped in ("a", "b", "tie", None):
            for as_tie in (True, False):
                assert module.combine_orders(shown, swapped, inconsistent_as_tie=as_tie) == judging.combine_orders(
                    shown, swapped, inconsistent_as_tie=as_tie)


@pytest.mark.django_db
def test_exported_comparators_rating_pairs_and_external_judges(owner_api, judge, stub, tmp_path):
    suite_id = owner_api.post(url("suites/"), {}, format="json").json()["id"]
    module = load_module(tmp_path, suite_as_module(Suite.objects.get(pk=suite_id)))
    comparator = {"id": 1, "kind": "code", "target": "pair", "threshold": None, "patterns": []}
    by_length = module._compile("def compare(output_a, output_b, input, reference, meta):\n"
                                "    return len(output_a) - len(output_b)", "compare")
    by_word = module._compile("def compare(output_a, output_b, input, reference, meta):\n"
                              "    return 'tie' if 'same' in input else 'B'", "compare")
    rating = {"id": 2, "kind": "rating", "target": "pair", "threshold": None, "patterns": [],
              "source": RATING_PROMPT, "provider": {"base_url": stub.base_url, "model": "concord-stub"}}
    record = {"input": "q", "output_a": "longer good", "output_b": "short"}

    assert module.pair_verdict(comparator, record, {1: by_length}) == {"winner": "a"}
    assert module.pair_verdict(comparator, {**record, "output_b": "longer good"}, {1: by_length}) == {"winner": "tie"}
    assert module.pair_verdict(comparator, record, {1: by_word}) == {"winner": "b"}
    assert module.pair_verdict(rating, record, {}) == {"winner": "a", "score_a": 8.0, "score_b": 2.0}
    assert module.NOT_RUNNABLE == ("external",)
    assert "cannot run here" in module.__doc__


@pytest.mark.django_db
def test_a_suite_saved_before_pairwise_judges_still_exports_and_runs(owner_api, project, tmp_path):
    suite = Suite.objects.create(project=project, name="Old", coverage=1.0, false_failure_rate=0.0, snapshot={
        "criteria": [], "suite": {"coverage": 1.0}, "n_grades": 2,
        "validators": [{"id": 7, "name": "no beta", "criterion": None, "kind": "code", "threshold": None,
                        "provider": None,
                        "source": "def check(output, input, reference, meta):\n    return 'beta' not in output"}],
    })
    module = tmp_path / "suite.py"
    module.write_text(suite_as_module(suite))
    data = tmp_path / "outputs.jsonl"
    data.write_text(json.dumps({"item_id": "x", "output": "beta says hi"}) + "\n")

    exported = owner_api.get(f"/api/suites/{suite.pk}/export/?format=json").json()
    ran = subprocess.run([sys.executable, str(module), str(data)], capture_output=True, text=True, timeout=30, env={})

    assert {k: exported["validators"][0][k] for k in ("target", "patterns", "inconsistent_is_tie", "threshold_source")} == {
        "target": "output", "patterns": [], "inconsistent_is_tie": True, "threshold_source": None,
    }
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"item_id": "x", "system": None, "verdicts": {"no beta": "fail"},
                                      "suite": "fail", "not_run": []}
