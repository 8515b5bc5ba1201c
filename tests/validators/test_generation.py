"""LLM-assisted criteria and candidates, against a real OpenAI-compatible stub server."""

import json

import pytest
from django.urls import reverse

from annotate.models import Criterion
from annotate.services.criteria import criterion_create
from concord_testing.llm_stub import LLMStubServer
from validators.generation import GenerationError, propose_candidates, suggest_criteria
from validators.models import Validator
from validators.services.providers import provider_save

CANDIDATES = {
    "assertions": [
        {"name": "no at-sign", "source": "def check(output, input, reference, meta):\n    return '@' not in output\n"},
        {"name": "sneaky", "source": "import os\ndef check(output, input, reference, meta):\n    return True\n"},
    ],
    "prompts": [
        {"name": "privacy judge", "template": "Does this answer leak personal data?\n{output}\nAnswer YES or NO."},
        {"name": "broken template", "template": "{output.__class__} YES or NO"},
    ],
}


@pytest.fixture
def stub():
    with LLMStubServer() as server:
        yield server


@pytest.fixture
def provider(project, stub):
    return provider_save(project=project, base_url=stub.base_url, model="m")


@pytest.mark.django_db
def test_suggested_criteria_skip_existing_ones(project, provider, stub, make_outputs):
    make_outputs(n_samples=2)
    criterion_create(project=project, key="grounded")
    stub.set_responder(lambda prompt: "```json\n" + json.dumps({"criteria": [
        {"key": "grounded", "name": "Grounded", "definition": "x"},
        {"key": "Privacy Leak", "name": "Privacy", "definition": "No personal data."},
    ]}) + "\n```")

    suggestions = suggest_criteria(project=project)

    assert [(s.key, s.name, s.definition) for s in suggestions] == [("privacy_leak", "Privacy", "No personal data.")]
    assert "Existing criteria: grounded" in stub.chat_prompts[0]
    assert Criterion.objects.filter(project=project).count() == 1


@pytest.mark.django_db
def test_proposed_candidates_pass_through_the_same_checks(project, provider, stub, make_outputs):
    make_outputs(n_samples=2)
    privacy = criterion_create(project=project, key="privacy", definition="No personal data.")
    stub.set_responder(lambda prompt: json.dumps(CANDIDATES))

    proposals = propose_candidates(project=project, criterion=privacy)

    saved = [(p.name, p.kind) for p in proposals if p.validator]
    refused = {p.name: p.problem for p in proposals if not p.validator}
    assert saved == [("no at-sign", "code"), ("privacy judge", "llm")]
    assert "os" in refused["sneaky"] and "__class__" in refused["broken template"]
    assert set(Validator.objects.values_list("origin", "criterion__key")) == {("generated", "privacy")}
    assert "the criterion 'privacy': No personal data." in stub.chat_prompts[0]


@pytest.mark.django_db
def test_without_a_provider_the_message_says_how_to_configure_one(project):
    with pytest.raises(GenerationError, match="add an OpenAI-compatible endpoint"):
        suggest_criteria(project=project)


@pytest.mark.django_db
def test_non_json_answer_is_a_clear_error(project, provider, stub):
    stub.set_responder(lambda prompt: "I think grounding matters most.")

    with pytest.raises(GenerationError, match="did not answer with JSON"):
        suggest_criteria(project=project)


@pytest.mark.django_db
def test_pages_owner_only(client, project, provider, stub, owner, annotator, make_outputs):
    make_outputs(n_samples=1)
    stub.set_responder(lambda prompt: json.dumps(CANDIDATES))
    client.force_login(annotator)

    assert client.post(reverse("propose-candidates", args=[project.slug])).status_code == 403
    assert Validator.objects.count() == 0

    client.force_login(owner)
    body = client.post(reverse("propose-candidates", args=[project.slug]), HTTP_HX_REQUEST="true").content.decode()

    assert body.count("saved") >= 2 and body.count("refused") == 2
    assert Validator.objects.filter(criterion__isnull=True, origin="generated").count() == 2


@pytest.mark.django_db
def test_accepting_a_suggestion_creates_the_criterion(client, project, owner):
    client.force_login(owner)

    client.post(reverse("criterion-accept", args=[project.slug]), {"key": "privacy", "name": "Privacy", "definition": "No PII."})

    version = Criterion.objects.get(key="privacy").versions.get()
    assert (version.name, version.definition, version.author) == ("Privacy", "No PII.", owner)
