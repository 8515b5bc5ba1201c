"""Validators and runs through the real sandbox and a real OpenAI-compatible stub server."""

import pytest

from annotate.models import Criterion
from concord_testing.llm_stub import LLMStubServer, keyword_responder
from validators.models import CachedAnswer, Run, Validator, VerdictRecord
from validators.services.authoring import validator_create, validator_revise
from validators.services.errors import ValidatorError
from validators.services.evaluation import validator_try
from validators.services.providers import provider_save
from validators.services.runs import run_execute, run_start
from validators.services.validator_files import (
    ValidatorImportError,
    validators_export,
    validators_import,
)

NO_EMAIL = "import re\ndef check(output, input, reference, meta):\n    return not re.search(r'[\\w.]+@[\\w.]+', output)\n"
LENGTH = "def check(output, input, reference, meta):\n    return len(output) / 100\n"
BROKEN = "def check(output, input, reference, meta):\n    return 1 / 0\n"
HOSTILE = "import os\ndef check(output, input, reference, meta):\n    return True\n"
GROUNDED = "Answer: {output}\nReference: {reference}\nIs the answer supported? Answer YES or NO."


@pytest.fixture
def outputs(project, make_outputs):
    made = make_outputs(n_samples=3, systems=("alpha", "beta"))
    made[0].text = "mail me at bob@example.com"
    made[0].save()
    return made


@pytest.fixture
def stub():
    with LLMStubServer(responder=keyword_responder("alpha")) as server:
        yield server


@pytest.fixture
def provider(project, stub):
    return provider_save(project=project, base_url=stub.base_url, model="stub-model")


def run_now(project, validators, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = run_start(project=project, validators=validators)
    return Run.objects.get(pk=run.pk)


@pytest.mark.django_db
class TestValidatorCreation:
    def test_code_validator_is_checked_before_saving(self, project):
        with pytest.raises(ValidatorError) as error:
            validator_create(project=project, kind="code", name="bad", source="def check(:\n")

        assert error.value.field == "source"
        assert Validator.objects.count() == 0

    def test_forbidden_import_is_refused_at_save(self, project):
        with pytest.raises(ValidatorError, match="os"):
            validator_create(project=project, kind="code", name="os", source=HOSTILE)

    def test_llm_validator_without_provider_says_how_to_configure_one(self, project):
        with pytest.raises(ValidatorError, match="add an OpenAI-compatible endpoint"):
            validator_create(project=project, kind="llm", name="g", source=GROUNDED)

    def test_prompt_with_unknown_field_is_refused(self, project, provider):
        with pytest.raises(ValidatorError, match="foo"):
            validator_create(project=project, kind="llm", name="g", source="{foo} YES or NO?")

    def test_provider_refuses_a_key_in_place_of_a_variable_name(self, project):
        with pytest.raises(ValidatorError, match="NAME of the environment variable"):
            provider_save(project=project, base_url="http://x/v1", model="m", api_key_env="sk-abc-123")

    def test_revision_makes_a_new_validator_and_archives_the_parent(self, project):
        original = validator_create(project=project, kind="code", name="len", source=LENGTH, threshold=0.2)

        revised = validator_revise(validator=original, source=NO_EMAIL)

        original.refresh_from_db()
        assert (revised.parent_id, revised.threshold, original.archived, original.source) == (
            original.pk, 0.2, True, LENGTH)


@pytest.mark.django_db
class TestRuns:
    def test_code_run_stores_one_verdict_per_output(self, project, outputs, django_capture_on_commit_callbacks):
        no_email = validator_create(project=project, kind="code", name="no email", source=NO_EMAIL)
        length = validator_create(project=project, kind="code", name="length", source=LENGTH, threshold=0.15)

        run = run_now(project, [no_email, length], django_capture_on_commit_callbacks)

        assert (run.status, run.total, run.done, run.failed) == ("done", 12, 12, 0)
        email_verdicts = dict(VerdictRecord.objects.filter(validator=no_email).values_list("output_id", "outcome"))
        assert email_verdicts == {o.pk: ("fail" if o.pk == outputs[0].pk else "pass") for o in outputs}
        scores = dict(VerdictRecord.objects.filter(validator=length).values_list("output_id", "score"))
        assert scores[outputs[1].pk] == pytest.approx(len(outputs[1].text) / 100)

    def test_errors_are_verdicts_with_messages(self, project, outputs, django_capture_on_commit_callbacks):
        broken = validator_create(project=project, kind="code", name="broken", source=BROKEN)

        run = run_now(project, [broken], django_capture_on_commit_callbacks)

        assert (run.done, run.failed) == (6, 6)
        details = set(VerdictRecord.objects.filter(validator=broken).values_list("detail", flat=True))
        assert len(details) == 1 and "ZeroDivisionError" in details.pop()

    def test_rerun_is_idempotent_and_resumes(self, project, outputs, django_capture_on_commit_callbacks):
        check = validator_create(project=project, kind="code", name="no email", source=NO_EMAIL)
        # A crashed earlier run left two verdicts behind.
        VerdictRecord.objects.bulk_create([
            VerdictRecord(validator=check, output=outputs[0], outcome="fail"),
            VerdictRecord(validator=check, output=outputs[1], outcome="pass"),
        ])

        run = run_now(project, [check], django_capture_on_commit_callbacks)
        again = run_execute(run_id=run.pk)

        assert (run.done, run.total, again.done) == (6, 6, 6)
        assert VerdictRecord.objects.filter(validator=check).count() == 6

    def test_llm_run_against_the_stub(self, project, outputs, provider, stub, django_capture_on_commit_callbacks):
        grader = validator_create(project=project, kind="llm", name="grounded", source=GROUNDED)

        run = run_now(project, [grader], django_capture_on_commit_callbacks)

        outcomes = dict(VerdictRecord.objects.filter(validator=grader).values_list("output__system", "outcome").distinct())
        assert (run.status, run.done, run.failed) == ("done", 6, 0)
        assert outcomes == {"alpha": "pass", "beta": "fail"}
        assert stub.count("/chat/completions") == 6
        assert CachedAnswer.objects.count() == 6

    def test_llm_answers_are_cached_across_validators(self, project, outputs, provider, stub, django_capture_on_commit_callbacks):
        first = validator_create(project=project, kind="llm", name="a", source=GROUNDED)
        run_now(project, [first], django_capture_on_commit_callbacks)
        second = validator_create(project=project, kind="llm", name="b (same prompt)", source=GROUNDED, threshold=None)

        run_now(project, [second], django_capture_on_commit_callbacks)

        assert stub.count("/chat/completions") == 6
        assert VerdictRecord.objects.filter(validator=second).count() == 6

    def test_unparseable_llm_answer_is_an_error_verdict_with_the_raw_text(
        self, project, outputs, provider, stub, django_capture_on_commit_callbacks
    ):
        stub.set_nonsense(True)
        grader = validator_create(project=project, kind="llm", name="g", source=GROUNDED)

        run = run_now(project, [grader], django_capture_on_commit_callbacks)

        assert run.failed == 6
        detail = VerdictRecord.objects.filter(validator=grader).first().detail
        assert "weather" in detail

    def test_run_of_another_projects_validator_is_refused(self, project, outputs):
        from annotate.services.projects import project_create

        other = project_create(name="Other", owner=project.created_by)
        foreign = validator_create(project=other, kind="code", name="x", source=NO_EMAIL)

        with pytest.raises(ValidatorError, match="another project"):
            run_start(project=project, validators=[foreign])
        assert Run.objects.count() == 0

    def test_try_returns_verdicts_without_saving(self, project, outputs):
        unsaved = Validator(project=project, kind="code", name="t", source=NO_EMAIL)

        results = validator_try(validator=unsaved)

        assert len(results) == 5
        assert {e.outcome for _, e in results} <= {"pass", "fail"}
        assert VerdictRecord.objects.count() == 0 and Validator.objects.count() == 0


@pytest.mark.django_db
class TestImportExport:
    def test_round_trip(self, project, provider):
        data = {"validators": [
            {"name": "no email", "criterion": "privacy", "kind": "code", "threshold": None, "source": NO_EMAIL},
            {"name": "len", "criterion": None, "kind": "code", "threshold": 0.3, "source": LENGTH},
            {"name": "grounded", "criterion": "grounded", "kind": "llm", "threshold": None, "source": GROUNDED, "provider": "default"},
        ]}

        created = validators_import(project=project, data=data, create_criteria=True)
        again = validators_import(project=project, data=data)

        assert [v.name for v in created] == ["no email", "len", "grounded"] and again == []
        exported = validators_export(project)
        assert exported == data

    def test_bad_entry_imports_nothing(self, project):
        data = [{"name": "ok", "kind": "code", "source": NO_EMAIL},
                {"name": "bad", "kind": "code", "source": HOSTILE}]

        with pytest.raises(ValidatorImportError) as error:
            validators_import(project=project, data=data)

        assert [(p.index, p.field) for p in error.value.problems] == [(2, "source")]
        assert Validator.objects.count() == 0


@pytest.mark.django_db
def test_import_names_the_entry_with_a_bad_criterion(project):
    data = [{"name": "a", "kind": "code", "criterion": "bad key!", "source": NO_EMAIL},
            {"name": "b", "kind": "code", "criterion": 5, "source": NO_EMAIL},
            {"kind": "code", "source": NO_EMAIL}]

    with pytest.raises(ValidatorImportError) as error:
        validators_import(project=project, data=data)

    assert [(p.index, p.field) for p in error.value.problems] == [(1, "criterion"), (2, "criterion"), (3, "name")]
    assert error.value.problems[0].message == (
        "Criterion key 'bad key!': Use letters, digits, '_' and '-' (no spaces)."
    )
    assert error.value.unknown_criteria == []
    assert Validator.objects.count() == 0


@pytest.mark.django_db
def test_unknown_criteria_roll_back_the_criteria_an_earlier_entry_created(project):
    # Given an entry that may create 'privacy', then one whose source is refused
    data = [{"name": "a", "kind": "code", "criterion": "privacy", "source": NO_EMAIL},
            {"name": "b", "kind": "code", "criterion": "privacy", "source": HOSTILE}]

    with pytest.raises(ValidatorImportError) as error:
        validators_import(project=project, data=data, create_criteria=True)

    assert [(p.index, p.field) for p in error.value.problems] == [(2, "source")]
    assert (Validator.objects.count(), Criterion.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_unknown_criteria_are_named_once_each_in_file_order(project):
    data = [{"name": "a", "kind": "code", "criterion": "tone", "source": NO_EMAIL},
            {"name": "b", "kind": "code", "criterion": "privacy", "source": NO_EMAIL},
            {"name": "c", "kind": "code", "criterion": "tone", "source": NO_EMAIL},
            {"name": "d", "kind": "code", "criterion": None, "source": NO_EMAIL}]

    with pytest.raises(ValidatorImportError) as error:
        validators_import(project=project, data=data)

    assert error.value.unknown_criteria == ["tone", "privacy"]
    assert [(p.index, p.field) for p in error.value.problems] == [
        (1, "criterion"), (2, "criterion"), (3, "criterion"),
    ]
    assert (Validator.objects.count(), Criterion.objects.count()) == (0, 0)
