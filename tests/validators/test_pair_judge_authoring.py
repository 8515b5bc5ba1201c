"""Writing pairwise, rating and comparator judges: the service's checks, the validators file,
the create page's try-it with both orders, and a pair judge's detail page."""

import io
import json

import pytest
from django.urls import reverse

from annotate.models import Output
from annotate.services.imports import outputs_import
from concord_testing.llm_stub import LLMStubServer
from validators.models import PairVerdict, Validator
from validators.services.authoring import validator_create
from validators.services.errors import ValidatorError
from validators.services.evaluation import validator_first_outputs_problem
from validators.services.providers import provider_save
from validators.services.validator_files import (
    ValidatorImportError,
    validators_export,
    validators_import,
)

PAIRWISE = "Q: {input}\nOutput (a): {output_a}\nOutput (b): {output_b}\nWhich is better?"
RATING = "Q: {input}\nA: {output}\nRate it from 1 to 10."
COMPARATOR = "def compare(output_a, output_b, input, reference, meta):\n    return len(output_a) - len(output_b)\n"
CHECK = "def check(output, input, reference, meta):\n    return True\n"
RECORDS = [
    {"item_id": "p1", "input": "Capital of France?", "system_a": None, "output_a": "Paris.",
     "system_b": None, "output_b": "Lyon, probably.", "human_preference": "a"},
]


@pytest.fixture
def stub():
    def judge(prompt: str) -> str:
        first_is_paris = prompt.index("Paris") < prompt.index("Lyon")
        return ("Output (a) is correct; Output (b) is not.\nTherefore, Output (a) is better." if first_is_paris
                else "Output (b) is correct.\nTherefore, Output (b) is better.")

    with LLMStubServer(responder=judge) as server:
        yield server


@pytest.fixture
def provider(project, stub):
    return provider_save(project=project, base_url=stub.base_url, model="judge")


@pytest.mark.django_db
class TestValidatorCreateChecks:
    @pytest.mark.parametrize(("kind", "target", "source", "message"), [
        ("llm", "pair", "Which is better, {output_a} or {output}?", "unknown field 'output'"),
        ("llm", "pair", "Is {output_a} better than the other?",
         "the template never uses {output_b}, so the judge would not see that output"),
        ("rating", "output", "Rate {output_a} from 1 to 10.", "unknown field 'output_a'"),
        ("rating", "pair", "Rate this answer from 1 to 10.", "the template never uses {output}"),
        ("code", "pair", CHECK,
         "the assertion must define a function compare(output_a, output_b, input, reference, meta)"),
        ("code", "pair", "def compare(output_a, output_b):\n    return 'a'\n",
         "Line 1: compare takes 2 arguments; it is called as compare(output_a, output_b, input, reference, meta)"),
    ])
    def test_sources_are_checked_for_their_kind_and_target(self, project, provider, kind, target, source, message):
        with pytest.raises(ValidatorError) as error:
            validator_create(project=project, kind=kind, target=target, name="j", source=source, provider=provider)

        assert error.value.field == "source"
        assert message in str(error.value)
        assert Validator.objects.count() == 0

    @pytest.mark.parametrize(("patterns", "message"), [
        ("Winner: (a|b)\n(", "Line 2 of the answer patterns is not a regular expression: missing ), unterminated subpattern"),
        ("\nWinner: (a)|(b)", "Line 2 of the answer patterns has 2 groups; it needs exactly one"),
        ("Winner: [ab]", "Line 1 of the answer patterns has 0 groups"),
    ])
    def test_answer_patterns_need_one_group_per_line(self, project, provider, patterns, message):
        with pytest.raises(ValidatorError) as error:
            validator_create(project=project, kind="llm", target="pair", name="j", source=PAIRWISE,
                             provider=provider, answer_patterns=patterns)

        assert error.value.field == "answer_patterns"
        assert message in str(error.value)
        assert Validator.objects.count() == 0

    def test_rating_judge_needs_a_provider(self, project):
        with pytest.raises(ValidatorError) as error:
            validator_create(project=project, kind="rating", name="r", source=RATING)

        assert error.value.field == "provider"

    def test_external_validators_are_not_written_here(self, project):
        with pytest.raises(ValidatorError, match="importing their verdicts") as error:
            validator_create(project=project, kind="external", name="e", source="")

        assert error.value.field == "kind"

    def test_a_pairwise_judge_keeps_its_settings(self, project, provider):
        judge = validator_create(project=project, kind="llm", target="pair", name="j", source=PAIRWISE,
                                 provider=provider, answer_patterns="Winner: (a|b|tie)\n",
                                 inconsistent_is_tie=False)

        assert (judge.target, judge.patterns, judge.inconsistent_is_tie) == ("pair", ["Winner: (a|b|tie)"], False)


@pytest.mark.django_db
class TestValidatorsFile:
    def test_pairwise_and_rating_entries_are_imported_and_exported_back(self, project, provider):
        created = validators_import(project=project, data={"validators": [
            {"name": "judge", "criterion": None, "kind": "pairwise", "provider": "default", "source": PAIRWISE,
             "answer_patterns": ["Winner: (a|b|tie)"], "inconsistent": "error"},
            {"name": "longer", "criterion": None, "kind": "pairwise", "source": COMPARATOR},
            {"name": "rater", "criterion": None, "kind": "rating", "target": "pair", "source": RATING,
             "answer_patterns": "Score: (\\d+)"},
            {"name": "rater 5", "criterion": None, "kind": "rating", "source": RATING, "threshold": 5},
        ]})

        assert [(v.name, v.kind, v.target, v.inconsistent_is_tie) for v in created] == [
            ("judge", "llm", "pair", False), ("longer", "code", "pair", True),
            ("rater", "rating", "pair", True), ("rater 5", "rating", "output", True),
        ]
        exported = validators_export(project)["validators"]
        assert exported == [
            {"name": "judge", "criterion": None, "kind": "pairwise", "threshold": None, "source": PAIRWISE,
             "provider": "default", "answer_patterns": ["Winner: (a|b|tie)"], "inconsistent": "error"},
            {"name": "longer", "criterion": None, "kind": "pairwise", "threshold": None, "source": COMPARATOR,
             "inconsistent": "tie"},
            {"name": "rater", "criterion": None, "kind": "rating", "threshold": None, "source": RATING,
             "provider": "default", "target": "pair", "answer_patterns": ["Score: (\\d+)"]},
            {"name": "rater 5", "criterion": None, "kind": "rating", "threshold": 5.0, "source": RATING,
             "provider": "default"},
        ]
        # Importing the export again creates nothing: every entry is already there.
        assert validators_import(project=project, data={"validators": exported}) == []

    def test_problems_name_the_entry_and_field_and_nothing_is_written(self, project, provider):
        with pytest.raises(ValidatorImportError) as error:
            validators_import(project=project, data={"validators": [
                {"name": "ok", "kind": "pairwise", "source": COMPARATOR},
                {"name": "bad patterns", "kind": "pairwise", "source": PAIRWISE, "answer_patterns": 3},
                {"name": "bad setting", "kind": "pairwise", "source": PAIRWISE, "inconsistent": "coin flip"},
                {"name": "bad target", "kind": "rating", "source": RATING, "target": "trio"},
                {"name": "one sided", "kind": "pairwise", "source": "Is {output_a} good?"},
                {"name": "theirs", "kind": "external", "source": ""},
                {"name": "two groups", "kind": "pairwise", "source": PAIRWISE, "answer_patterns": ["(a)(b)"]},
            ]})

        assert [(p.index, p.field) for p in error.value.problems] == [
            (2, "answer_patterns"), (3, "inconsistent"), (4, "target"), (5, "source"), (6, "kind"),
            (7, "answer_patterns"),
        ]
        assert error.value.problems[1].message == 'must be "tie" or "error"'
        assert Validator.objects.count() == 0


@pytest.fixture
def pairs(project):
    result = outputs_import(project=project, records=RECORDS)
    assert not result.problems
    return list(Output.objects.filter(project=project).order_by("id"))


def pair_form(**overrides):
    return {"kind": "llm", "target": "pair", "name": "judge", "source": PAIRWISE, "criterion": "",
            "threshold": "", "provider": "", "answer_patterns": "", "inconsistent": "tie", **overrides}


@pytest.mark.django_db
class TestPages:
    def test_try_it_shows_both_orders_of_a_pair(self, client, project, owner, pairs, provider):
        client.force_login(owner)

        response = client.post(reverse("validator-try", args=[project.slug]), pair_form(), HTTP_HX_REQUEST="true")

        body = response.content.decode()
        assert response.status_code == 200
        assert "Order 1 (a first)" in body and "Order 2 (b first)" in body
        # Order 1 shows Paris first; order 2 shows Lyon first.
        assert "Output (a): Paris.\nOutput (b): Lyon, probably." in body
        assert "Output (a): Lyon, probably.\nOutput (b): Paris." in body
        assert "Therefore, Output (a) is better." in body and "Therefore, Output (b) is better." in body
        assert '<span class="verdict winner-a">a</span>' in body
        assert Validator.objects.count() == 0

    def test_try_it_names_the_problem_of_a_one_sided_template(self, client, project, owner, pairs, provider):
        client.force_login(owner)

        body = client.post(reverse("validator-try", args=[project.slug]),
                           pair_form(source="Is {output_a} good?"), HTTP_HX_REQUEST="true").content.decode()

        assert "the template never uses {output_b}" in body

    def test_create_page_saves_a_pairwise_judge(self, client, project, owner, provider):
        client.force_login(owner)

        response = client.post(reverse("validator-create", args=[project.slug]),
                               pair_form(answer_patterns="Winner: (a|b)", inconsistent="error"))

        assert response.status_code == 302
        judge = Validator.objects.get()
        assert (judge.kind, judge.target, judge.answer_patterns, judge.inconsistent_is_tie) == (
            "llm", "pair", "Winner: (a|b)", False)

    def test_create_page_refuses_bad_patterns_with_the_line(self, client, project, owner, provider):
        client.force_login(owner)

        response = client.post(reverse("validator-create", args=[project.slug]), pair_form(answer_patterns="(a)(b)"))

        assert response.status_code == 400
        assert "Line 1 of the answer patterns has 2 groups" in response.content.decode()
        assert Validator.objects.count() == 0

    def test_detail_page_lists_pair_verdicts_with_both_orders(self, client, project, reviewer, pairs):
        comparator = validator_create(project=project, kind="code", target="pair", name="longer", source=COMPARATOR)
        PairVerdict.objects.create(validator=comparator, output_a=pairs[0], output_b=pairs[1], winner="tie",
                                   inconsistent=True, first_winner="a", second_winner="b",
                                   first_answer="3", second_answer="-3")
        client.force_login(reviewer)

        body = client.get(reverse("validator-detail", args=[project.slug, comparator.pk])).content.decode()

        assert 'id="pair-verdicts"' in body
        assert '<span class="verdict winner-tie">tie</span> <small class="tag">inconsistent</small>' in body
        assert "anonymous-a" in body and "anonymous-b" in body

    def test_validators_file_upload_accepts_pairwise(self, client, project, owner):
        client.force_login(owner)
        upload = io.BytesIO(json.dumps({"validators": [
            {"name": "longer", "criterion": None, "kind": "pairwise", "source": COMPARATOR}]}).encode())
        upload.name = "validators.json"

        client.post(reverse("validators-import", args=[project.slug]), {"file": upload})

        assert Validator.objects.values_list("kind", "target").get() == ("code", "pair")


@pytest.mark.django_db
class TestFirstPairsWarning:
    def test_a_comparator_failing_on_every_first_pair_is_told_at_creation(self, project, pairs):
        broken = validator_create(project=project, kind="code", target="pair", name="broken",
                                  source="def compare(output_a, output_b, input, reference, meta):\n    return meta['x']\n")
        working = validator_create(project=project, kind="code", target="pair", name="longer", source=COMPARATOR)

        assert validator_first_outputs_problem(validator=broken).startswith(
            "'broken' answered error on every one of the project's first 1 pairs; the first said: ")
        assert validator_first_outputs_problem(validator=working) == ""
