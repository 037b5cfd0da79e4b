"""Synthetic multi-label data with power-law label frequencies and topic structure.

Shared by the tests and the benchmarks so that both measure the same kind of data.
Each label belongs to one topic; a sample picks one to three topics (popular topics
more often) and draws its labels from them, with a share of labels drawn from the
global popularity instead. Label frequencies follow a Zipf law; co-occurrence
concentrates within topics, as with real tags.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class TopicData:
    """A synthetic set: ``labels`` (n x L CSR, float32 ones), ``topics`` (n x T CSR of each
    sample's topics), ``label_topic`` (L, the topic of each label), and, when features
    were asked for, ``features`` (n x F float32)."""

    labels: sp.csr_matrix
    topics: sp.csr_matrix
    label_topic: np.ndarray
    features: np.ndarray | None = None


def _csr_unique(rows: np.ndarray, cols: np.ndarray, n: int, m: int) -> sp.csr_matrix:
    key = np.sort(rows.astype(np.int64) * m + cols)
    if len(key):
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    r, c = np.divmod(key, m)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
    itype = np.int32 if max(n, m) < 2**31 else np.int64
    return sp.csr_matrix((np.ones(len(c), dtype=np.float32), c.astype(itype), indptr.astype(itype)),
                         shape=(n, m))


def make_topic_labels(n_samples: int, n_labels: int, *, labels_per_sample: float = 7.5,
                      n_topics: int | None = None, zipf: float = 1.0, noise: float = 0.1,
                      n_features: int = 0, feature_noise: float = 1.0,
                      seed: int = 0) -> TopicData:
    """Generate a topic-structured multi-label data set.

    Parameters
    ----------
    n_samples, n_labels : int
    labels_per_sample : float, default 7.5
        Mean number of label draws per sample (repeated draws collapse, so the mean
        number of distinct labels is a little lower: about 6 with the defaults).
    n_topics : int, optional
        Defaults to ``max(4, n_labels // 50)``.
    zipf : float, default 1.0
        Exponent of the label popularity law (weight of rank r is ``(r + 1)^-zipf``).
    noise : float, default 0.1
        Share of label draws taken from the global popularity rather than the topics.
    n_features : int, default 0
        When > 0, also return features: each topic and each label has a random
        direction; a sample's features are the sum of its topics' directions, plus a
        weaker sum of its labels' directions, plus Gaussian noise of scale
        ``feature_noise``. A model must combine both to predict the labels.
    seed : int, default 0

    Returns
    -------
    TopicData
    """
    if n_samples < 1 or n_labels < 2:
        raise ValueError("n_samples must be >= 1 and n_labels >= 2")
    rng = np.random.default_rng(seed)
    T = int(n_topics) if n_topics else max(4, n_labels // 50)
    # Label popularity (Zipf over a random ranking) and a topic for each label.
    rank = rng.permutation(n_labels)
    weight = (rank + 1.0) ** -zipf
    label_topic = rng.integers(0, T, size=n_labels)
    order = np.lexsort((rank, label_topic))  # labels grouped by topic
    w_sorted = weight[order]
    t_sorted = label_topic[order]
    start = np.searchsorted(t_sorted, np.arange(T + 1))
    # Per-topic CDFs laid end to end in [t, t + 1) so that one searchsorted samples all.
    cdf = np.empty(n_labels)
    for t in range(T):
        a, b = start[t], start[t + 1]
        if b > a:
            c = np.cumsum(w_sorted[a:b])
            cdf[a:b] = t + c / c[-1]
    empty_topics = start[1:] == start[:-1]
    topic_w = (np.arange(T) + 1.0) ** -0.8
    topic_w[empty_topics] = 0
    topic_w /= topic_w.sum()
    global_cdf = np.cumsum(weight) / weight.sum()

    n = n_samples
    n_top = 1 + rng.binomial(2, 0.3, size=n)
    sample_topics = rng.choice(T, size=(n, 3), p=topic_w)
    k = 1 + rng.poisson(labels_per_sample - 1.0, size=n)
    rows = np.repeat(np.arange(n), k)
    m = len(rows)
    which = (rng.random(m) * n_top[rows]).astype(np.int64)
    topic = sample_topics[rows, which]
    u = rng.random(m)
    pos = np.minimum(np.searchsorted(cdf, topic + u, side="right"), n_labels - 1)
    cols = order[pos]
    from_noise = rng.random(m) < noise
    cols[from_noise] = np.minimum(np.searchsorted(global_cdf, rng.random(from_noise.sum())),
                                  n_labels - 1)
    labels = _csr_unique(rows, cols, n, n_labels)
    trow = np.repeat(np.arange(n), n_top)
    first = np.repeat(np.cumsum(n_top) - n_top, n_top)
    tcol = sample_topics[trow, np.arange(len(trow)) - first]
    topics = _csr_unique(trow, tcol, n, T)
    features = None
    if n_features > 0:
        topic_dir = rng.standard_normal((T, n_features)).astype(np.float32)
        label_dir = rng.standard_normal((n_labels, n_features)).astype(np.float32) * 0.5
        features = np.asarray(topics @ topic_dir, dtype=np.float32)
        features += np.asarray(labels @ label_dir, dtype=np.float32)
        features += feature_noise * rng.standard_normal(features.shape).astype(np.float32)
    return TopicData(labels=labels, topics=topics, label_topic=label_topic, features=features)
