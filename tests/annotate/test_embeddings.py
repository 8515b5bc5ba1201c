import numpy as np
import pytest

from annotate import embeddings
from annotate.embeddings_math import DEFAULT_DIMENSIONS
from annotate.models import OutputEmbeddings
from concord_testing.llm_stub import LLMStubServer


@pytest.mark.django_db
def test_tfidf_embeddings_are_stored_and_reused(project, make_outputs):
    outputs = make_outputs(n_samples=3, systems=("alpha", "beta"))
    ids = np.array([o.pk for o in outputs], dtype=np.int64)

    first = embeddings.load_embeddings(project, ids)
    again = embeddings.load_embeddings(project, ids)

    # Six texts over three terms ("0" to "2" are too short to be tokens): two SVD components,
    # the other columns zero, every row of unit length, the same text the same vector.
    assert first.shape == (6, DEFAULT_DIMENSIONS)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), np.ones(6), atol=1e-6)
    assert not first[:, 2:].any()
    alpha_rows, beta_rows = first[0::2], first[1::2]
    assert all(np.array_equal(row, alpha_rows[0]) for row in alpha_rows)
    assert all(np.array_equal(row, beta_rows[0]) for row in beta_rows)
    # Rank two, so the SVD keeps TF-IDF's cosine: the texts share "answers" (idf 1) and differ
    # in "alpha" / "beta" (smoothed idf 1 + ln(7/4) each).
    assert float(alpha_rows[0] @ beta_rows[0]) == pytest.approx(1 / (1 + (1 + np.log(7 / 4)) ** 2), abs=1e-5)
    assert np.array_equal(first, again)
    assert OutputEmbeddings.objects.get(project=project).method == "tfidf-svd"


@pytest.mark.django_db
def test_new_outputs_trigger_a_recompute(project, make_outputs):
    outputs = make_outputs(n_samples=2, systems=("alpha",))
    embeddings.load_embeddings(project, np.array([o.pk for o in outputs]))
    from tests.factories import OutputFactory

    more = [*outputs, OutputFactory(project=project, sample=outputs[0].sample, system="gamma")]

    vectors = embeddings.load_embeddings(project, np.array(sorted(o.pk for o in more)))

    assert vectors.shape[0] == 3 and OutputEmbeddings.objects.count() == 1


@pytest.mark.django_db
def test_large_projects_are_embedded_by_the_celery_task(project, make_outputs, monkeypatch, django_capture_on_commit_callbacks):
    outputs = make_outputs(n_samples=3, systems=("alpha",))
    monkeypatch.setattr(embeddings, "INLINE_LIMIT", 2)
    ids = np.array([o.pk for o in outputs])

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert embeddings.load_embeddings(project, ids) is None

    assert len(callbacks) == 1
    assert embeddings.load_embeddings(project, ids).shape[0] == 3


@pytest.mark.django_db
def test_provider_embeddings_from_the_stub(project, make_outputs, settings):
    from validators.services.providers import provider_save

    outputs = make_outputs(n_samples=2, systems=("alpha", "beta"))
    with LLMStubServer(embedding_dimensions=16) as stub:
        provider_save(project=project, base_url=stub.base_url, model="m")
        vectors = embeddings.load_embeddings(project, np.array([o.pk for o in outputs]), method="provider")

    assert vectors.shape == (4, 16)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert stub.count("/embeddings") >= 1
