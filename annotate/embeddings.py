"""Output embeddings, stored per project for the diversity and MAD-systems selectors.

`tfidf-svd` (the default) needs no model download. `provider` asks the callable named by
settings.ANNOTATE_EMBEDDER (validators wires it to the project's OpenAI-compatible endpoint);
annotate never imports validators. `minilm` runs all-MiniLM-L6-v2 on the CPU from the optional
`embeddings` extra. Small projects are embedded inline on first use; large ones by a Celery
task, while the selectors fall back to validator-verdict patterns meanwhile.
"""

from __future__ import annotations

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.module_loading import import_string

from annotate.embeddings_math import embed_texts
from annotate.embeddings_minilm import embed_texts_minilm
from annotate.models import Output, OutputEmbeddings, Project

DEFAULT_METHOD = "tfidf-svd"
PROVIDER_METHOD = "provider"
MINILM_METHOD = "minilm"
METHODS = (DEFAULT_METHOD, PROVIDER_METHOD, MINILM_METHOD)
# Above this many outputs, computing inline would stall a request: a task does it instead.
INLINE_LIMIT = 20_000
# The transformer embeds about 100 short outputs a second on two CPU cores.
MINILM_INLINE_LIMIT = 1_000


def checked_method(method: str | None = None) -> str:
    """`method`, or settings.CONCORD_EMBEDDINGS_METHOD, once known to be one of METHODS."""
    if not method:
        method = getattr(settings, "CONCORD_EMBEDDINGS_METHOD", DEFAULT_METHOD) or DEFAULT_METHOD
    if method not in METHODS:
        raise ImproperlyConfigured(
            f"Unknown embeddings method {method!r} (CONCORD_EMBEDDINGS_METHOD): "
            f"use one of {', '.join(METHODS)}."
        )
    return method


def _vectors(project: Project, texts: list[str], method: str) -> np.ndarray:
    if method == PROVIDER_METHOD:
        vectors = np.asarray(import_string(settings.ANNOTATE_EMBEDDER)(project, texts), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)
    if method == MINILM_METHOD:
        return embed_texts_minilm(texts)
    return embed_texts(texts)


def _inline_limit(method: str) -> int:
    return min(INLINE_LIMIT, MINILM_INLINE_LIMIT) if method == MINILM_METHOD else INLINE_LIMIT


@transaction.atomic
def embeddings_compute(*, project: Project, method: str | None = None) -> OutputEmbeddings:
    method = checked_method(method)
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
    method = checked_method(method)
    stored = OutputEmbeddings.objects.filter(project=project, method=method).first()
    if stored is not None:
        ids, vectors = _decode(stored)
        if np.array_equal(ids, output_ids):
            return vectors
    if output_ids.size > _inline_limit(method):
        from annotate.tasks import embeddings_compute_task

        transaction.on_commit(lambda: embeddings_compute_task.delay(project.pk, method))
        return None
    return _decode(embeddings_compute(project=project, method=method))[1]
