"""TF-IDF features of texts, for models that read raw text (``labelemb fit-model --text``).

A small vectoriser whose whole state is two arrays (the terms and their idf), so that it
travels in a model file without pickling: lower-cased word tokens of two or more
characters, terms kept by document frequency, ``(1 + log tf) * idf`` weights with the
smoothed ``idf = log((1 + n) / (1 + df)) + 1``, rows scaled to unit length.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional, Sequence

import numpy as np
import scipy.sparse as sp

from ._validation import check_int

__all__ = ["TextFeatures"]

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _tokens(text) -> list:
    if not isinstance(text, str):
        raise TypeError(f"texts must be strings, got {type(text).__name__}")
    return _TOKEN.findall(text.lower())


def _check_texts(texts, name: str) -> list:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a sequence of strings (one per sample), got one str")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of strings, got "
                        f"{type(texts).__name__}") from None
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f"{name} must hold strings (one per sample), got "
                            f"{type(t).__name__}")
    return texts


class TextFeatures:
    """TF-IDF vectoriser whose state is its terms and their idf weights.

    Parameters
    ----------
    max_features : int, default 100000
        Keep the most frequent terms (by document frequency, ties by term).
    min_df : int, default 2
        Drop terms found in fewer documents.

    Attributes
    ----------
    terms : ndarray of str, shape (F,)
        The vocabulary, column order.
    idf : ndarray of float32, shape (F,)

    Examples
    --------
    >>> from labelemb.text import TextFeatures
    >>> tf = TextFeatures(min_df=1).fit(["red apple", "green apple", "red car"])
    >>> tf.terms.tolist()
    ['apple', 'red', 'car', 'green']
    >>> tf.transform(["apple pie"]).nnz
    1
    """

    def __init__(self, max_features: int = 100_000, min_df: int = 2,
                 terms: Optional[Sequence[str]] = None, idf=None):
        self.max_features = check_int(max_features, "max_features", lo=1)
        self.min_df = check_int(min_df, "min_df", lo=1)
        self.terms = None if terms is None else np.asarray(terms, dtype=str)
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float32)
        if self.terms is not None and (self.idf is None or self.idf.shape != self.terms.shape):
            raise ValueError("terms and idf must be given together, one idf per term")
        self._index = None

    @property
    def n_features(self) -> int:
        return 0 if self.terms is None else len(self.terms)

    def fit(self, texts: Iterable[str]) -> TextFeatures:
        """Learn the vocabulary and idf of ``texts`` (a sequence of strings)."""
        texts = _check_texts(texts, "texts")
        df: dict = {}
        for t in texts:
            for w in set(_tokens(t)):
                df[w] = df.get(w, 0) + 1
        kept = sorted((w for w, c in df.items() if c >= self.min_df),
                      key=lambda w: (-df[w], w))[:self.max_features]
        if not kept:
            raise ValueError(f"texts: no term occurs in at least min_df={self.min_df} "
                             "documents; lower min_df or give more text")
        counts = np.array([df[w] for w in kept], dtype=np.float64)
        self.terms = np.array(kept, dtype=str)
        self.idf = (np.log((1 + len(texts)) / (1 + counts)) + 1).astype(np.float32)
        self._index = None
        return self

    def transform(self, texts: Iterable[str]) -> sp.csr_matrix:
        """TF-IDF rows (float32 CSR, unit length; zero rows for texts with no known term)."""
        if self.terms is None:
            raise ValueError("TextFeatures is not fitted; call fit(texts) first")
        texts = _check_texts(texts, "texts")
        if self._index is None:
            self._index = {w: i for i, w in enumerate(self.terms.tolist())}
        index = self._index
        indptr, indices, data = [0], [], []
        for t in texts:
            row: dict = {}
            for w in _tokens(t):
                j = index.get(w)
                if j is not None:
                    row[j] = row.get(j, 0) + 1
            cols = sorted(row)
            indices.extend(cols)
            data.extend(row[j] for j in cols)
            indptr.append(len(indices))
        X = sp.csr_matrix((np.asarray(data, dtype=np.float32),
                           np.asarray(indices, dtype=np.int32),
                           np.asarray(indptr, dtype=np.int64)),
                          shape=(len(texts), len(self.terms)))
        X.data = (1 + np.log(X.data)) * self.idf[X.indices]
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        X.data /= np.repeat(np.maximum(norms, 1e-12), np.diff(X.indptr)).astype(np.float32)
        return X
