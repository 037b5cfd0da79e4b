"""Text multi-label data sets in one form: TF-IDF features, label matrices, group splits.

Every text loader (:func:`~labelemb.datasets.load_wordnet`,
:func:`~labelemb.datasets.load_debian_deps`, :func:`load_debtags_xmc`) first reads its
source into a :class:`LabelledTexts` (all samples, the full label set, the group of
each sample) and then calls :func:`make_text_dataset`, which

1. splits by group: test groups, then validation groups carved from the rest, so that
   no group spans two parts (near-duplicate samples share a group);
2. keeps the labels seen at least ``min_count`` times in the training part (and,
   optionally, in at most ``max_label_fraction`` of its samples), then drops samples
   left with no label;
3. fits scikit-learn's ``TfidfVectorizer`` on the training texts only and transforms
   the three parts with it.

The result is a :class:`TextDataset` whose ``X_*``/``Y_*`` matrices share their
columns across the parts.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import scipy.sparse as sp

from .._io import atomic_write
from .._validation import check_float, check_int

__all__ = [
    "LabelledTexts",
    "TextDataset",
    "as_text_dataset",
    "check_text_options",
    "hash01",
    "load_corpus",
    "load_debtags_xmc",
    "make_text_dataset",
    "save_corpus",
    "split_groups",
]

#: Options given to ``TfidfVectorizer`` unless the ``tfidf`` argument overrides them.
TFIDF_DEFAULTS: Dict[str, Any] = {
    "sublinear_tf": True,
    "min_df": 2,
    "max_df": 0.5,
    "max_features": 200_000,
    "strip_accents": "unicode",
    "dtype": np.float32,
}
#: A group holding more than this fraction of the samples always goes to training.
MAX_HELD_OUT_GROUP = 0.05


@dataclass
class LabelledTexts:
    """All samples of a text data set with the full label set, before any split.

    Attributes
    ----------
    texts : list of str, length n
    labels : scipy.sparse.csr_matrix, shape (n, L), float32
        Binary: ``labels[i, j] == 1`` when sample ``i`` carries ``label_names[j]``.
    label_names : list of str, length L
    ids : list of str, length n
        A name per sample (synset name, package name).
    groups : ndarray of int32, shape (n,)
        Index into ``group_names``; samples of one group stay in one part of a split.
    group_names : list of str
    source : str
        Where the data came from, with its version or date.
    meta : dict
        Provenance and counts.
    """

    texts: List[str]
    labels: sp.csr_matrix
    label_names: List[str]
    ids: List[str]
    groups: np.ndarray
    group_names: List[str]
    source: str
    meta: Dict[str, object] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return len(self.texts)

    @property
    def n_labels(self) -> int:
        return len(self.label_names)


@dataclass(repr=False)
class TextDataset:
    """A text multi-label data set split into train / validation / test, with features.

    Attributes
    ----------
    X_train, X_valid, X_test : scipy.sparse.csr_matrix, float32
        TF-IDF rows, ``(n_part, n_features)``; the vectorizer saw the training texts only.
    Y_train, Y_valid, Y_test : scipy.sparse.csr_matrix, float32
        Binary label rows, ``(n_part, n_labels)``, the same columns in every part.
    label_names : list of str, length n_labels
    feature_names : list of str, length n_features
        The vocabulary term of each feature column.
    texts_train, texts_valid, texts_test : list of str
        The raw input texts of each part.
    ids_train, ids_valid, ids_test : list of str
        The sample names of each part.
    groups_train, groups_valid, groups_test : ndarray of int32
        Index into ``group_names``; no group appears in two parts.
    group_names : list of str
    source : str
        Provenance with its version (Debian package version, index date).
    vectorizer : sklearn.feature_extraction.text.TfidfVectorizer
        Fitted on ``texts_train``; ``vectorizer.transform(texts)`` featurises new text.
    meta : dict
        Options, counts before and after filtering, the split rule.
    """

    X_train: sp.csr_matrix
    Y_train: sp.csr_matrix
    X_valid: sp.csr_matrix
    Y_valid: sp.csr_matrix
    X_test: sp.csr_matrix
    Y_test: sp.csr_matrix
    label_names: List[str]
    feature_names: List[str]
    texts_train: List[str]
    texts_valid: List[str]
    texts_test: List[str]
    ids_train: List[str]
    ids_valid: List[str]
    ids_test: List[str]
    groups_train: np.ndarray
    groups_valid: np.ndarray
    groups_test: np.ndarray
    group_names: List[str]
    source: str
    vectorizer: Any = None
    meta: Dict[str, object] = field(default_factory=dict)

    @property
    def n_labels(self) -> int:
        return len(self.label_names)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def _parts(self):
        return (("train", self.Y_train), ("valid", self.Y_valid), ("test", self.Y_test))

    def describe(self) -> str:
        """Counts per part: samples, groups, labels present, labels per sample."""
        lines = [
            f"{self.meta.get('name', 'text data set')}: {self.n_labels} labels, "
            f"{self.n_features} TF-IDF features; {self.source}"
        ]
        groups = {"train": self.groups_train, "valid": self.groups_valid,
                  "test": self.groups_test}
        for part, y in self._parts():
            n = y.shape[0]
            present = int(np.count_nonzero(np.diff(y.tocsc().indptr)))
            per = y.nnz / n if n else 0.0
            lines.append(
                f"  {part:5s} {n:7d} samples {len(np.unique(groups[part])):7d} groups "
                f"{present:7d} labels present {per:6.2f} labels/sample"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        sizes = "/".join(str(y.shape[0]) for _, y in self._parts())
        return (
            f"TextDataset({self.meta.get('name', '?')}: train/valid/test = {sizes}, "
            f"{self.n_labels} labels, {self.n_features} features, source={self.source!r})"
        )


# ------------------------------------------------------------------------------- cache

CORPUS_CACHE_VERSION = 1


def save_corpus(cache_dir: str, name: str, corpus: LabelledTexts) -> None:
    """Cache ``corpus`` as ``<name>.npz`` (labels, groups) + ``<name>.json`` (the rest).

    Each file is written atomically; the JSON file, which :func:`load_corpus` checks
    first, is written last.
    """
    with atomic_write(os.path.join(cache_dir, name + ".npz")) as fh:
        np.savez_compressed(
            fh,
            label_indptr=corpus.labels.indptr.astype(np.int64),
            label_indices=corpus.labels.indices.astype(np.int32),
            groups=np.asarray(corpus.groups, dtype=np.int32),
        )
    doc = {
        "cache_version": CORPUS_CACHE_VERSION,
        "n_samples": corpus.n_samples,
        "source": corpus.source,
        "meta": corpus.meta,
        "label_names": corpus.label_names,
        "group_names": corpus.group_names,
        "ids": corpus.ids,
        "texts": corpus.texts,
    }
    with atomic_write(os.path.join(cache_dir, name + ".json"), "w") as fh:
        json.dump(doc, fh, ensure_ascii=False)


def load_corpus(cache_dir: str, name: str) -> Optional[LabelledTexts]:
    """The corpus cached by :func:`save_corpus`, or None when absent, stale or unreadable."""
    jpath = os.path.join(cache_dir, name + ".json")
    npath = os.path.join(cache_dir, name + ".npz")
    if not (os.path.isfile(jpath) and os.path.isfile(npath)):
        return None
    try:
        with open(jpath, encoding="utf-8") as fh:
            doc = json.load(fh)
        if doc.get("cache_version") != CORPUS_CACHE_VERSION:
            return None
        with np.load(npath, allow_pickle=False) as z:
            indptr, indices, groups = z["label_indptr"], z["label_indices"], z["groups"]
        n = int(doc["n_samples"])
        if len(indptr) != n + 1 or len(groups) != n or len(doc["texts"]) != n:
            return None
        labels = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr),
            shape=(n, len(doc["label_names"])),
        )
        return LabelledTexts(
            texts=doc["texts"], labels=labels, label_names=doc["label_names"],
            ids=doc["ids"], groups=groups, group_names=doc["group_names"],
            source=doc["source"], meta=doc["meta"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ------------------------------------------------------------------------------- split


def hash01(name: str, salt: str) -> float:
    """A salted SHA-256 of ``name`` read as a number in [0, 1): stable across runs."""
    h = hashlib.sha256(f"{salt}:{name}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def split_groups(
    group_names: Sequence[str],
    group_sizes: np.ndarray,
    *,
    test_fraction: float,
    valid_fraction: float,
    salt: str,
    max_held_out: float = MAX_HELD_OUT_GROUP,
) -> np.ndarray:
    """Part of each group: 0 train, 1 validation, 2 test.

    A group larger than ``max_held_out`` of all samples stays in training (one giant
    group in the test part would make it mostly one cluster of near-duplicates). Each
    other group goes to test when ``hash01(name, salt + ":test")`` is below
    ``test_fraction`` scaled up by the share of samples in eligible groups, so that about
    ``test_fraction`` of the samples are in test; of the remaining groups, those with
    ``hash01(name, salt + ":valid")`` below the similarly scaled ``valid_fraction`` form
    the validation part (about ``valid_fraction`` of the non-test samples).
    """
    sizes = np.asarray(group_sizes, dtype=np.int64)
    n = int(sizes.sum())
    part = np.zeros(len(group_names), dtype=np.int8)
    if n == 0:
        return part
    eligible = sizes <= max_held_out * n
    n_eligible = int(sizes[eligible].sum())
    if n_eligible == 0:
        return part
    p_test = min(1.0, test_fraction * n / n_eligible)
    h_test = np.array([hash01(g, salt + ":test") for g in group_names])
    part[eligible & (h_test < p_test)] = 2
    n_rest = n - int(sizes[part == 2].sum())
    rest = eligible & (part == 0)
    n_rest_eligible = int(sizes[rest].sum())
    if n_rest_eligible and valid_fraction > 0:
        p_valid = min(1.0, valid_fraction * n_rest / n_rest_eligible)
        h_valid = np.array([hash01(g, salt + ":valid") for g in group_names])
        part[rest & (h_valid < p_valid)] = 1
    return part


# ------------------------------------------------------------------------------ assembly


def check_text_options(min_count, max_label_fraction, valid_fraction, test_fraction, tfidf):
    """Validate the options of :func:`make_text_dataset` (loaders call it before any download).

    Returns ``(min_count, max_label_fraction, valid_fraction, test_fraction)`` converted.
    """
    min_count = check_int(min_count, "min_count", lo=0, hint=" (0 keeps every label)")
    valid_fraction = check_float(valid_fraction, "valid_fraction", lo=0.0, hi=1.0, hi_open=True)
    test_fraction = check_float(test_fraction, "test_fraction", lo=0.0, hi=1.0, hi_open=True)
    if max_label_fraction is not None:
        max_label_fraction = check_float(max_label_fraction, "max_label_fraction", lo=0.0,
                                         hi=1.0, lo_open=True, hint=" or None")
    if tfidf is not None and not isinstance(tfidf, dict):
        raise TypeError(
            f"tfidf must be a dict of TfidfVectorizer options, got {type(tfidf).__name__}"
        )
    return min_count, max_label_fraction, valid_fraction, test_fraction


def _vectorizer(tfidf: Optional[Dict[str, Any]]):
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
    except ImportError as exc:  # pragma: no cover - scikit-learn is in the data extra
        raise ImportError(
            "the text data sets need scikit-learn for their TF-IDF features: "
            "pip install 'labelemb[data]' (or pip install scikit-learn)"
        ) from exc
    options = dict(TFIDF_DEFAULTS)
    options.update(tfidf or {})
    return TfidfVectorizer(**options), options


def make_text_dataset(
    corpus: LabelledTexts,
    *,
    min_count: int = 5,
    max_label_fraction: Optional[float] = None,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    salt: str = "labelemb-text-split-v1",
    test_mask: Optional[np.ndarray] = None,
    tfidf: Optional[Dict[str, Any]] = None,
    name: str = "",
) -> TextDataset:
    """Split ``corpus`` by group, filter its labels and compute TF-IDF features.

    Parameters
    ----------
    corpus : LabelledTexts
    min_count : int, default 5
        Keep the labels carried by at least ``min_count`` training samples
        (``Y_train``, after the validation part is carved out). ``1`` keeps every label
        seen in training; ``0`` keeps the whole label set, labels seen only in the
        validation or test part included.
    max_label_fraction : float in (0, 1], optional
        Also drop the labels carried by more than this fraction of the training samples
        (the near-root labels of a hierarchy); ``None`` keeps them.
    valid_fraction : float in [0, 1), default 0.1
        About this fraction of the non-test samples, as whole groups, form the
        validation part; ``0`` leaves it empty.
    test_fraction : float in [0, 1), default 0.2
        About this fraction of all samples, as whole groups, form the test part
        (ignored when ``test_mask`` is given).
    salt : str
        Salt of the group hashes (see :func:`split_groups`).
    test_mask : ndarray of bool, shape (n,), optional
        A test part fixed by the source (it must not split a group).
    tfidf : dict, optional
        ``TfidfVectorizer`` options that replace those of :data:`TFIDF_DEFAULTS`
        (sublinear tf, float32, ``min_df=2``, ``max_df=0.5``, ``max_features=200000``,
        accents stripped).
    name : str
        Name shown by ``describe()``.

    Returns
    -------
    TextDataset
        Samples left with no label after the filter are dropped from every part.
    """
    min_count, max_label_fraction, valid_fraction, test_fraction = check_text_options(
        min_count, max_label_fraction, valid_fraction, test_fraction, tfidf
    )
    vectorizer, tfidf_options = _vectorizer(tfidf)
    n = corpus.n_samples
    if n == 0:
        raise ValueError("the corpus has no sample")
    groups = np.asarray(corpus.groups, dtype=np.int64)
    sizes = np.bincount(groups, minlength=len(corpus.group_names))
    if test_mask is None:
        part_of_group = split_groups(
            corpus.group_names, sizes, test_fraction=test_fraction,
            valid_fraction=valid_fraction, salt=salt,
        )
    else:
        test_mask = np.asarray(test_mask, dtype=bool)
        if test_mask.shape != (n,):
            raise ValueError(f"test_mask must have shape ({n},), got {test_mask.shape}")
        test_groups = np.zeros(len(corpus.group_names), dtype=bool)
        test_groups[groups[test_mask]] = True
        if test_groups[groups[~test_mask]].any():
            raise ValueError("test_mask splits a group between training and test")
        sizes_rest = np.where(test_groups, 0, sizes)
        part_of_group = split_groups(
            corpus.group_names, sizes_rest, test_fraction=0.0,
            valid_fraction=valid_fraction, salt=salt,
        )
        part_of_group[test_groups] = 2
    part = part_of_group[groups]

    labels = corpus.labels.tocsr()
    train_rows = np.flatnonzero(part == 0)
    counts = np.bincount(labels[train_rows].indices, minlength=corpus.n_labels)
    keep = counts >= min_count
    if max_label_fraction is not None:
        keep &= counts <= max_label_fraction * len(train_rows)
    cols = np.flatnonzero(keep)
    labels = labels[:, cols]
    labelled = np.diff(labels.indptr) > 0
    rows = {p: np.flatnonzero((part == k) & labelled) for k, p in
            enumerate(("train", "valid", "test"))}
    if len(rows["train"]) == 0:
        raise ValueError("no training sample is left: lower min_count or test_fraction")

    texts = {p: [corpus.texts[i] for i in r] for p, r in rows.items()}
    X_train = vectorizer.fit_transform(texts["train"]).tocsr()
    X = {"train": X_train}
    for p in ("valid", "test"):
        X[p] = (vectorizer.transform(texts[p]).tocsr() if texts[p]
                else sp.csr_matrix((0, X_train.shape[1]), dtype=np.float32))
    Y = {p: labels[r].astype(np.float32).tocsr() for p, r in rows.items()}
    for y in Y.values():
        y.sort_indices()

    meta = dict(corpus.meta)
    meta.update(
        name=name,
        min_count=int(min_count),
        max_label_fraction=max_label_fraction,
        valid_fraction=valid_fraction,
        test_fraction=test_fraction if test_mask is None else float(test_mask.mean()),
        split_salt=salt,
        n_samples_all=n,
        n_labels_all=corpus.n_labels,
        n_dropped_unlabelled=int(n - sum(len(r) for r in rows.values())),
        tfidf={k: (v.__name__ if isinstance(v, type) else v) for k, v in tfidf_options.items()},
    )
    return TextDataset(
        X_train=X["train"], Y_train=Y["train"], X_valid=X["valid"], Y_valid=Y["valid"],
        X_test=X["test"], Y_test=Y["test"],
        label_names=[corpus.label_names[j] for j in cols],
        feature_names=[str(t) for t in vectorizer.get_feature_names_out()],
        texts_train=texts["train"], texts_valid=texts["valid"], texts_test=texts["test"],
        ids_train=[corpus.ids[i] for i in rows["train"]],
        ids_valid=[corpus.ids[i] for i in rows["valid"]],
        ids_test=[corpus.ids[i] for i in rows["test"]],
        groups_train=corpus.groups[rows["train"]].astype(np.int32),
        groups_valid=corpus.groups[rows["valid"]].astype(np.int32),
        groups_test=corpus.groups[rows["test"]].astype(np.int32),
        group_names=list(corpus.group_names),
        source=corpus.source,
        vectorizer=vectorizer,
        meta=meta,
    )


# ------------------------------------------------------------------------------ debtags


def as_text_dataset(ds, **options) -> TextDataset:
    """The :class:`TextDataset` form of a :class:`~labelemb.datasets.debtags.DebtagsDataset`.

    Its test part is kept as ``load_debtags`` splits it (by Source package); the
    validation part is carved from its training part by Source. ``options`` are those of
    :func:`make_text_dataset` (``min_count`` defaults to 1 here: every debtag is kept,
    as ``load_debtags`` does).
    """
    options.setdefault("min_count", 1)
    options.setdefault("name", "debtags")
    options.setdefault("salt", "labelemb-debtags-split-v1")
    if "test_fraction" in options:
        raise TypeError("as_text_dataset keeps the test part of the debtags split")
    test_mask = np.zeros(ds.n_samples, dtype=bool)
    test_mask[ds.test_index] = True
    date = ds.meta.get("index_date")
    corpus = LabelledTexts(
        texts=list(ds.texts), labels=ds.labels, label_names=list(ds.label_names),
        ids=list(ds.packages), groups=np.asarray(ds.groups, dtype=np.int32),
        group_names=list(ds.group_names),
        source=f"Debian debtags, apt indexes of {date or 'unknown date'}",
        meta=dict(ds.meta),
    )
    return make_text_dataset(corpus, test_mask=test_mask, **options)


def load_debtags_xmc(cache_dir=None, *, rebuild: bool = False, **options) -> TextDataset:
    """:func:`~labelemb.datasets.load_debtags` as a :class:`TextDataset`.

    ``cache_dir`` and ``rebuild`` go to ``load_debtags``; ``options`` to
    :func:`as_text_dataset` (``min_count``, ``valid_fraction``, ``tfidf``, ...).
    """
    from .debtags import load_debtags

    return as_text_dataset(load_debtags(cache_dir, rebuild=rebuild), **options)
