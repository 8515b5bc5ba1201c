import io
import json

import pytest
from django.urls import reverse

from annotate.models import Criterion
from validators.models import Provider, Run, Validator, VerdictRecord
from validators.services.authoring import validator_create

NO_EMAIL = "import re\ndef check(output, input, reference, meta):\n    return not re.search(r'@', output)\n"


def form(**overrides):
    return {"kind": "code", "name": "no email", "source": NO_EMAIL, "criterion": "", "threshold": "", "provider": "", **overrides}


@pytest.mark.django_db
class TestValidatorPages:
    def test_list_shows_validators_and_counts(self, client, project, reviewer, make_outputs):
        outputs = make_outputs(n_samples=1, systems=("a", "b"))
        v = validator_create(project=project, kind="code", name="no email", source=NO_EMAIL)
        VerdictRecord.objects.create(validator=v, output=outputs[0], outcome="fail")
        client.force_login(reviewer)

        page = client.get(reverse("validator-list", args=[project.slug])).content.decode()

        assert "no email" in page and '<td class="num fail">1</td>' in page
        assert "New validator" not in page  # reviewers read only

    def test_no_provider_message(self, client, project, owner):
        client.force_login(owner)

        page = client.get(reverse("validator-list", args=[project.slug])).content.decode()

        assert "LLM graders need an OpenAI-compatible endpoint" in page

    def test_owner_creates_a_validator(self, client, project, owner):
        client.force_login(owner)

        response = client.post(reverse("validator-create", args=[project.slug]), form())

        assert response.status_code == 302
        assert Validator.objects.get().name == "no email"

    def test_hostile_source_is_refused_on_the_page(self, client, project, owner):
        client.force_login(owner)

        response = client.post(reverse("validator-create", args=[project.slug]), form(source="import os\ndef check(output, input, reference, meta):\n    return 1"))

        assert response.status_code == 400
        assert "os" in response.content.decode()
        assert Validator.objects.count() == 0

    def test_annotator_cannot_create_or_run(self, client, project, annotator, make_outputs):
        make_outputs(n_samples=1)
        validator_create(project=project, kind="code", name="x", source=NO_EMAIL)
        client.force_login(annotator)

        assert client.post(reverse("validator-create", args=[project.slug]), form(name="y")).status_code == 403
        assert client.post(reverse("run-start", args=[project.slug])).status_code == 403
        assert Validator.objects.count() == 1 and Run.objects.count() == 0

    def test_try_it_shows_five_verdicts(self, client, project, owner, make_outputs):
        make_outputs(n_samples=4, systems=("a", "b"))
        client.force_login(owner)

        body = client.post(reverse("validator-try", args=[project.slug]), form(), HTTP_HX_REQUEST="true").content.decode()

        assert body.count('class="verdict pass"') == 5
        assert Validator.objects.count() == 0

    def test_run_page_shows_progress_and_counts(self, client, project, owner, make_outputs, django_capture_on_commit_callbacks):
        make_outputs(n_samples=2, systems=("a", "b"))
        validator_create(project=project, kind="code", name="x", source=NO_EMAIL)
        client.force_login(owner)

        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("run-start", args=[project.slug]))
        run = Run.objects.get()
        page = client.get(response["Location"]).content.decode()
        partial = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()

        assert response["Location"] == reverse("run-detail", args=[project.slug, run.pk])
        assert "4 of 4 verdicts (100%)" in page and "4 pass" in page
        assert partial.startswith('<section id="run-progress"') and "hx-trigger" not in partial

    def test_verdict_matrix_filters(self, client, project, owner, make_outputs):
        outputs = make_outputs(n_samples=2, systems=("a", "b"))
        v = validator_create(project=project, kind="code", name="x", source=NO_EMAIL)
        VerdictRecord.objects.bulk_create([
            VerdictRecord(validator=v, output=o, outcome="fail" if o.system == "a" else "pass") for o in outputs
        ])
        client.force_login(owner)

        page = client.get(reverse("verdict-matrix", args=[project.slug]), {"outcome": "fail"}).content.decode()

        assert "2 outputs" in page and "a answers 0." in page and "b answers 0." not in page

    def test_verdict_matrix_filters_combine(self, client, project, owner, make_outputs):
        """A newcomer found "fail + validators disagree" always empty and the validator filter
        ignored without an outcome."""
        outputs = {o.text: o for o in make_outputs(n_samples=2, systems=("a", "b"))}
        x, y, z = (validator_create(project=project, kind="code", name=n, source=NO_EMAIL) for n in "xyz")
        fails = {x: {"a answers 0.", "a answers 1."}, y: {"b answers 1."}}
        VerdictRecord.objects.bulk_create([
            VerdictRecord(validator=v, output=o, outcome="fail" if text in fails[v] else "pass")
            for v in (x, y) for text, o in outputs.items()
        ] + [VerdictRecord(validator=z, output=outputs["a answers 0."], outcome="error")])
        client.force_login(owner)

        def shown(**query) -> list[str]:
            page = client.get(reverse("verdict-matrix", args=[project.slug]), query).content.decode()
            return sorted(text for text in outputs if text in page)

        assert shown(outcome="fail", disagree="1") == ["a answers 0.", "a answers 1.", "b answers 1."]
        assert shown(disagree="1") == ["a answers 0.", "a answers 1.", "b answers 1."]
        assert shown(outcome="fail", validator=str(y.pk)) == ["b answers 1."]
        assert shown(validator=str(z.pk)) == ["a answers 0."]
        assert shown(outcome="pass", validator=str(x.pk), disagree="1") == ["b answers 1."]

    def test_export_then_import_into_another_project(self, client, project, owner):
        validator_create(project=project, kind="code", name="x", source=NO_EMAIL)
        client.force_login(owner)
        exported = client.get(reverse("validators-export", args=[project.slug])).content
        client.post(reverse("project-create"), {"name": "Copy"})
        upload = io.BytesIO(exported)
        upload.name = "v.json"

        client.post(reverse("validators-import", args=["copy"]), {"file": upload})

        assert json.loads(exported)["validators"][0]["name"] == "x"
        assert Validator.objects.filter(project__slug="copy").count() == 1

    def test_provider_form(self, client, project, owner):
        client.force_login(owner)

        client.post(reverse("provider-save", args=[project.slug]), {
            "name": "default", "base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "CONCORD_LLM_KEY_MINE",
            "concurrency": 4, "timeout_seconds": 10,
        })

        assert Provider.objects.get().api_key_env == "CONCORD_LLM_KEY_MINE"

    def test_the_provider_form_shows_what_was_saved(self, client, project, owner, monkeypatch):
        monkeypatch.setenv("CONCORD_LLM_KEY_MINE", "sk-secret-value")
        client.force_login(owner)
        for name, model in (("default", "judge-1"), ("cheap", "judge-mini")):
            client.post(reverse("provider-save", args=[project.slug]), {
                "name": name, "base_url": "http://127.0.0.1:9/v1", "model": model,
                "api_key_env": "CONCORD_LLM_KEY_MINE", "concurrency": 4, "timeout_seconds": 10,
            })

        page = client.get(reverse("validator-list", args=[project.slug])).content.decode()
        cheap = client.get(reverse("validator-list", args=[project.slug]), {"provider": "cheap"}).content.decode()

        assert 'name="model" value="judge-1"' in page and 'name="concurrency" value="4"' in page
        assert 'name="api_key_env" value="CONCORD_LLM_KEY_MINE"' in page
        assert 'name="model" value="judge-mini"' in cheap and 'href="?provider=cheap#provider-form"' in page
        assert "sk-secret-value" not in page + cheap

    def test_non_member_404(self, client, project, outsider):
        client.force_login(outsider)

        assert client.get(reverse("validator-list", args=[project.slug])).status_code == 404
        assert client.get(reverse("verdict-matrix", args=[project.slug])).status_code == 404


def upload(entries) -> io.BytesIO:
    file = io.BytesIO(json.dumps({"validators": entries}).encode())
    file.name = "validators.json"
    return file


TYPO_FILE = [
    {"name": "no email", "criterion": "privacy", "kind": "code", "source": NO_EMAIL},
    {"name": "no email either", "criterion": "privcy", "kind": "code", "source": NO_EMAIL + "\n"},
]


@pytest.mark.django_db
class TestImportPageCriteria:
    def test_the_page_offers_to_create_missing_criteria(self, client, project, owner):
        client.force_login(owner)

        page = client.get(reverse("validator-list", args=[project.slug])).content.decode()

        assert '<input type="checkbox" name="create_criteria" aria-describedby="id_create_criteria_helptext" id="id_create_criteria">' in page
        assert "Create missing criteria" in page

    def test_unknown_criteria_are_refused_with_their_names(self, client, project, owner):
        # Given a project with 'privacy' and a file that also names the typo 'privcy'
        from annotate.services.criteria import criterion_create

        criterion_create(project=project, key="privacy")
        client.force_login(owner)

        # When the box is left unticked
        response = client.post(
            reverse("validators-import", args=[project.slug]), {"file": upload(TYPO_FILE)}, follow=True,
        )

        # Then nothing is written and the page names the missing criterion
        page = response.content.decode()
        assert (
            "Nothing was imported: the file names criteria this project lacks: privcy. Fix the "
            "names, or tick “Create missing criteria” to create them."
        ) in page
        assert Validator.objects.count() == 0
        assert list(Criterion.objects.values_list("key", flat=True)) == ["privacy"]

    def test_the_ticked_box_creates_them(self, client, project, owner):
        client.force_login(owner)

        response = client.post(
            reverse("validators-import", args=[project.slug]),
            {"file": upload(TYPO_FILE), "create_criteria": "on"}, follow=True,
        )

        assert "Imported 2 validator(s)." in response.content.decode()
        assert sorted(Criterion.objects.values_list("key", flat=True)) == ["privacy", "privcy"]
        assert sorted(Validator.objects.values_list("name", "criterion__key")) == [
            ("no email", "privacy"), ("no email either", "privcy"),
        ]

    def test_other_problems_are_named_beside_the_missing_criteria(self, client, project, owner):
        client.force_login(owner)
        entries = [*TYPO_FILE, {"name": "t", "kind": "code", "source": NO_EMAIL, "threshold": "high"}]

        response = client.post(
            reverse("validators-import", args=[project.slug]), {"file": upload(entries)}, follow=True,
        )

        page = response.content.decode()
        assert (
            "the file names criteria this project lacks: privacy, privcy. Fix the names, or tick "
            "“Create missing criteria” to create them. Other problems: entry 3 (&#x27;t&#x27;), threshold: "
            "must be a number or null"
        ) in page
        assert (Validator.objects.count(), Criterion.objects.count()) == (0, 0)
