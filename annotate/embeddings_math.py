"""Default text embeddings for the selectors (DESIGN §4.3): TF-IDF + truncated SVD.

Latent semantic analysis (Deerwester et al. 1990) with scikit-learn: no model download, fitted
on the project's own outputs. Pure: no Django import.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

DEFAULT_DIMENSIONS = 64


def embed_texts(
    texts: Sequence[str],
    *,
    dimensions: int = DEFAULT_DIMENSIONS,
    max_features: int = 50_000,
    seed: int = 0,
) -> np.ndarray:
    """(len(texts), dimensions) float32 rows of unit length.

    Always `dimensions` columns, so stored embeddings keep one shape; a corpus too small for
    that many components leaves the extra columns at 0. A text with no known term (empty, or
    only symbols) gets the zero vector: cosine 0 to everything.
    """
    if dimensions < 1:
        raise ValueError("dimensions must be at least 1")
    n_texts = len(texts)
    embeddings = np.zeros((n_texts, dimensions), dtype=np.float32)
    if n_texts == 0:
        return embeddings
    # Sublinear tf keeps one repeated token from dominating an output (Manning et al. 2008, §6.4).
    # Unigrams only: adding bigrams made vectorising 100,000 outputs about 8× slower here.
    vectorizer = TfidfVectorizer(sublinear_tf=True, max_features=max_features, dtype=np.float32)
    try:
        tfidf = vectorizer.fit_transform(texts)
    except ValueError:
        # scikit-learn refuses an empty vocabulary: no text has a single word in it.
        return embeddings
    components = min(dimensions, tfidf.shape[1] - 1, n_texts - 1)
    if components >= 1:
        svd = TruncatedSVD(n_components=components, random_state=seed)
        reduced = svd.fit_transform(tfidf)
    else:
        reduced = tfidf[:, :dimensions].toarray()
        components = reduced.shape[1]
    embeddings[:, :components] = reduced
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    np.divide(embeddings, norms, out=embeddings, where=norms > 0)
    return embeddings

