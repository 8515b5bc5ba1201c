"""Re-running a validator retries its `error` verdicts against a real stub provider, keeps pass
and fail ones, and keeps the replaced errors in each verdict's history."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate.statistics import VERDICT_ERROR, VERDICT_FAIL, VERDICT_PASS
from concord_testing.llm_stub import LLMStubServer, keyword_responder
from validators import services
from validators.matrix import verdict_matrix
from validators.models import Run, VerdictHistory, VerdictRecord

GRADER = "Answer: {output}\nIs it good? Answer YES or NO."
GARBAGE = "<html>502 upstream says hello</html>"


def broken_for_first_two_samples(prompt: str) -> str:
    """A provider half down: samples 0 and 1 get an answer nobody can parse."""
    if "answers 0." in prompt or "answers 1." in prompt:
        return GARBAGE
    return keyword_responder("alpha")(prompt)


def run_now(project, validators, capture) -> Run:
    with capture(execute=True):
        run = services.run_start(project=project, validators=validators)
    return Run.objects.get(pk=run.pk)


@pytest.mark.django_db
def test_rerun_retries_errors_keeps_pass_fail_and_keeps_history(
    project, make_outputs, owner, client, django_capture_on_commit_callbacks
):
    make_outputs(n_samples=3, systems=("alpha", "beta"))
    with LLMStubServer(responder=broken_for_first_two_samples) as stub:
        provider = services.provider_save(project=project, base_url=stub.base_url, model="stub-model")
        grader = services.validator_create(project=project, kind="llm", name="good", source=GRADER, provider=provider)

        first = run_now(project, [grader], django_capture_on_commit_callbacks)
        # The first run happened a while ago, and the report card has read its verdicts since:
        # its in-memory matrix counts them as settled and will not read those ids again.
        VerdictRecord.objects.update(created_at=timezone.now() - timedelta(minutes=5))
        matrix = verdict_matrix(project)
        codes_before = sorted(matrix.codes[:, matrix.column(grader.pk)].tolist())
        before = {v.output.text: v for v in VerdictRecord.objects.filter(validator=grader).select_related("output")}
        # The provider is fixed, and now (to prove what was recomputed) passes beta, not alpha.
        stub.set_responder(keyword_responder("beta"))
        requests_before = stub.count("/chat/completions")
        second = run_now(project, [grader], django_capture_on_commit_callbacks)
        retried_requests = stub.count("/chat/completions") - requests_before
        third = run_now(project, [grader], django_capture_on_commit_callbacks)
        requests_after_third = stub.count("/chat/completions") - requests_before

    assert (first.status, first.done, first.failed) == ("done", 6, 4)
    assert (second.status, second.done, second.total, second.failed) == ("done", 6, 6, 0)
    assert (third.status, third.done, third.failed) == ("done", 6, 0)
    # Only the four errors were asked again; the unparseable cached answers were not replayed.
    assert retried_requests == 4 and requests_after_third == 4
    after = {v.output.text: v for v in VerdictRecord.objects.filter(validator=grader).select_related("output")}
    assert {text: v.outcome for text, v in after.items()} == {
        "alpha answers 0.": "fail", "beta answers 0.": "pass",
        "alpha answers 1.": "fail", "beta answers 1.": "pass",
        # Pass and fail verdicts of the first run stay as they were, with the run that made them.
        "alpha answers 2.": "pass", "beta answers 2.": "fail",
    }
    assert {text: v.run_id for text, v in after.items()} == {
        "alpha answers 0.": second.pk, "beta answers 0.": second.pk,
        "alpha answers 1.": second.pk, "beta answers 1.": second.pk,
        "alpha answers 2.": first.pk, "beta answers 2.": first.pk,
    }
    # Kept verdicts keep their rows; retried ones are new rows (verdict rows are write-once, so
    # the in-memory verdict matrix sees them), still one verdict per output.
    kept = {"alpha answers 2.", "beta answers 2."}
    assert {text for text, v in after.items() if v.pk == before[text].pk} == kept
    assert all(after[text].pk > max(v.pk for v in before.values()) for text in set(after) - kept)
    assert VerdictRecord.objects.filter(validator=grader).count() == 6

    history = list(VerdictHistory.objects.select_related("output").order_by("output__text"))
    assert [(h.output.text, h.outcome, h.run_id, h.replaced_by_id) for h in history] == [
        ("alpha answers 0.", "error", first.pk, second.pk),
        ("alpha answers 1.", "error", first.pk, second.pk),
        ("beta answers 0.", "error", first.pk, second.pk),
        ("beta answers 1.", "error", first.pk, second.pk),
    ]
    assert all(GARBAGE in h.detail for h in history)
    assert [h.stored_at for h in history] == [before[h.output.text].created_at for h in history]
    assert {h.validator_id for h in history} == {grader.pk}
    assert all(h.latency_ms is not None and h.latency_ms >= 0 for h in history)

    client.force_login(owner)
    page = client.get(reverse("validator-detail", args=[project.slug, grader.pk])).content.decode()
    assert page.count('<span class="verdict error">error</span>') == 4
    assert "502 upstream says hello" in page.replace("&lt;", "<").replace("&gt;", ">")
    assert f"run #{first.pk}" in page and f"run #{second.pk}" in page
    # The report card's in-memory matrix sees the retried verdicts, not the old errors.
    matrix = verdict_matrix(project)
    assert codes_before == [VERDICT_ERROR, VERDICT_ERROR, VERDICT_ERROR, VERDICT_ERROR, VERDICT_FAIL, VERDICT_PASS]
    assert sorted(matrix.codes[:, matrix.column(grader.pk)].tolist()) == [VERDICT_FAIL, VERDICT_FAIL, VERDICT_FAIL, VERDICT_PASS, VERDICT_PASS, VERDICT_PASS]


@pytest.mark.django_db
def test_resumed_run_does_not_retry_its_own_errors(project, make_outputs, django_capture_on_commit_callbacks):
    """A run re-queued after a crash must store every verdict once: errors it stored itself are
    kept, only errors from earlier runs are retried."""
    make_outputs(n_samples=2, systems=("alpha", "beta"))
    broken = services.validator_create(
        project=project, kind="code", name="broken",
        source="def check(output, input, reference, meta):\n    return 1 / 0\n",
    )
    run = run_now(project, [broken], django_capture_on_commit_callbacks)

    Run.objects.filter(pk=run.pk).update(status="running")
    again = services.run_execute(run_id=run.pk)

    assert (again.status, again.done, again.failed) == ("done", 4, 4)
    assert VerdictHistory.objects.count() == 0
    assert set(VerdictRecord.objects.filter(validator=broken).values_list("run_id", flat=True)) == {run.pk}
