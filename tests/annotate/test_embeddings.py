import numpy as np
import pytest

from annotate import embeddings
from annotate.models import OutputEmbeddings
from concord_testing.llm_stub import LLMStubServer


@pytest.mark.django_db
def test_tfidf_embeddings_are_stored_and_reused(project, make_outputs):
    outputs = make_outputs(n_samples=3, systems=("alpha", "beta"))
    ids = np.array([o.pk for o in outputs], dtype=np.int64)

    first = embeddings.load_embeddings(project, ids)
    again = embeddings.load_embeddings(project, ids)

    assert first.shape[0] == 6 and np.allclose(np.linalg.norm(first, axis=1)[np.linalg.norm(first, axis=1) > 0], 1)
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
