"""Output embeddings, stored per project for the diversity and MAD-systems selectors.

`tfidf-svd` (the default) needs no model download. `provider` asks the callable named by
settings.ANNOTATE_EMBEDDER (validators wires it to the project's OpenAI-compatible endpoint);
annotate never imports validators. Small projects are embedded inline on first use; large ones
by a Celery task, while the selectors fall back to validator-verdict patterns meanwhile.
"""

from __future__ import annotations

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from annotate.embeddings_math import embed_texts
from annotate.models import Output, OutputEmbeddings, Project

DEFAULT_METHOD = "tfidf-svd"
PROVIDER_METHOD = "provider"
# Above this many outputs, computing inline would stall a request: a task does it instead.
INLINE_LIMIT = 20_000


def configured_method() -> str:
    return getattr(settings, "CONCORD_EMBEDDINGS_METHOD", DEFAULT_METHOD) or DEFAULT_METHOD


def _vectors(project: Project, texts: list[str], method: str) -> np.ndarray:
    if method == PROVIDER_METHOD:
        vectors = np.asarray(import_string(settings.ANNOTATE_EMBEDDER)(project, texts), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)
    return embed_texts(texts)


@transaction.atomic
def embeddings_compute(*, project: Project, method: str | None = None) -> OutputEmbeddings:
    method = method or configured_method()
    rows = list(Output.objects.filter(project=project).order_by("id").values_list("id", "text"))
    output_ids = np.array([r[0] for r in rows], dtype=np.int64)
    vectors = _vectors(project, [r[1] for r in rows], method) if rows else np.zeros((0, 1), np.float32)
    stored, _ = OutputEmbeddings.objects.update_or_create(
        project=project, method=method,
        defaults={
            "dimensions": vectors.shape[1], "output_ids": output_ids.tobytes(),
            "vectors": vectors.astype(np.float32).tobytes(),
        },
    )
    return stored


def _decode(stored: OutputEmbeddings) -> tuple[np.ndarray, np.ndarray]:
    ids = np.frombuffer(bytes(stored.output_ids), dtype=np.int64)
    vectors = np.frombuffer(bytes(stored.vectors), dtype=np.float32).reshape(ids.size, stored.dimensions)
    return ids, vectors


def load_embeddings(project: Project, output_ids: np.ndarray, *, method: str | None = None) -> np.ndarray | None:
    """(N, D) rows aligned to `output_ids`, or None while they are being computed."""
    method = method or configured_method()
    stored = OutputEmbeddings.objects.filter(project=project, method=method).first()
    if stored is not None:
        ids, vectors = _decode(stored)
        if np.array_equal(ids, output_ids):
            return vectors
    if output_ids.size > INLINE_LIMIT:
        from annotate.tasks import embeddings_compute_task

        transaction.on_commit(lambda: embeddings_compute_task.delay(project.pk, method))
        return None
    return _decode(embeddings_compute(project=project, method=method))[1]
