"""GET /api/projects/{slug}/alignment/ says per criterion whether the choice is settled."""

import pytest

from tests.api.conftest import url

MENTIONS_ALPHA = "def check(output, input, reference, meta):\n    return 'alpha' in output\n"
MENTIONS_BETA = "def check(output, input, reference, meta):\n    return 'beta' in output\n"
ALWAYS = "def check(output, input, reference, meta):\n    return True\n"


@pytest.fixture
def three_validators(owner_api, make_outputs, django_capture_on_commit_callbacks):
    """Eight outputs (alpha and beta on four inputs) and three holistic validators, run."""
    outputs = make_outputs(n_samples=4, systems=("alpha", "beta"))
    ids = {}
    for name, source in (("fails beta", MENTIONS_ALPHA), ("fails alpha", MENTIONS_BETA),
                         ("always", ALWAYS)):
        ids[name] = owner_api.post(url("validators/"), {
            "kind": "code", "name": name, "source": source,
        }, format="json").json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        owner_api.post(url("runs/"), {"validators": "all"}, format="json")
    return outputs, ids


def holistic(body: dict) -> dict:
    return next(c for c in body["criteria"] if c["key"] == "__holistic__")


@pytest.mark.django_db
def test_before_any_grade_the_choice_is_open(reviewer_api, three_validators):
    settling = holistic(reviewer_api.get(url("alignment/")).json())["settling"]

    assert settling == {
        "settled": False, "tolerance": 0.02, "confidence": 0.95, "n_labels": 0,
        "worst_gap": None, "why": "open: no candidate qualifies yet",
    }


@pytest.mark.django_db
def test_every_output_graded_settles_the_choice(annotator_api, reviewer_api, three_validators):
    outputs, ids = three_validators
    for output in outputs:
        answer = annotator_api.post(url("grades/"), {
            "output": output.pk, "verdict": "pass" if output.system == "alpha" else "fail",
        }, format="json")
        assert answer.status_code == 201

    entry = holistic(reviewer_api.get(url("alignment/")).json())

    assert entry["chosen"] == ids["fails beta"]
    # "fails alpha" catches no failure (alignment 0) and "always" none either: no challenger
    # can qualify, and with all 8 outputs graded the estimates are the full-data figures.
    assert entry["settling"] == {
        "settled": True, "tolerance": 0.02, "confidence": 0.95, "n_labels": 8,
        "worst_gap": None,
        "why": "settled: further labels change it by < 0.02 with 95% confidence (8 labels)",
    }
