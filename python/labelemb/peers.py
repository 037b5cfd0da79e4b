"""The extreme-classification tools a user would pick instead of labelemb, behind one interface.

Every peer is built with its documented defaults plus the one setting its documentation says
matters most, and runs on ``threads`` threads::

    peer = make_peer("pecos-b10", threads=2).fit(X_train, Y_train)
    indices, scores = peer.predict_topk(X_test, 100)   # (n, k) int64 and float32

``indices`` rank labels best first; a peer that proposes fewer than ``k`` labels for a row
pads it with -1 (and a score of -inf). ``X`` is a CSR matrix of features (TF-IDF rows),
``Y`` the binary CSR label matrix (n, L).

==================  ========================================================================
name                what it is
==================  ========================================================================
``popularity``      the ``k`` most frequent training labels for every sample
``knn``             TF-IDF cosine 10-NN (exact, sparse products): neighbours vote with their
                    similarity for each of their labels
``pecos-b10``,      PECOS XR-Linear (``libpecos``): PIFA label features, hierarchical
``pecos-b50``       k-means indexer, all defaults; beam 10 and 50 at prediction
``omikuji-parabel`` Omikuji with its defaults (balanced 2-means, depth 20, 3 trees: Parabel);
                    beam 10
``omikuji-bonsai``  Omikuji as its README sets Bonsai: regular k-means, k = 100, depth 3
``napkinxc-plt``    napkinXC PLT, defaults (hierarchical 2-means tree, exact top-k search)
==================  ========================================================================

A peer whose package does not import is left out of :func:`available` with a message.
``labelemb demo`` and the comparison benchmark (``benchmarks/xmc.py``) both use this module.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np
import scipy.sparse as sp

__all__ = ["KNN", "PEERS", "NapkinPLT", "OmikujiTrees", "PecosXR", "Peer", "Popularity",
           "available", "make_peer", "pad_ranked", "topk_of_csr", "versions", "write_xc"]

PEERS = ("popularity", "knn", "pecos-b10", "pecos-b50", "omikuji-parabel", "omikuji-bonsai",
         "napkinxc-plt")
# The package each peer needs (None: numpy / scipy only).
_NEEDS = {"pecos-b10": "pecos", "pecos-b50": "pecos", "omikuji-parabel": "omikuji",
          "omikuji-bonsai": "omikuji", "napkinxc-plt": "napkinxc"}


# ---------------------------------------------------------------- helpers
def _csr(a, dtype=np.float32) -> sp.csr_matrix:
    a = sp.csr_matrix(a, dtype=dtype)
    a.sum_duplicates()
    a.sort_indices()
    return a


def pad_ranked(rows: List[Tuple[np.ndarray, np.ndarray]], k: int) -> Tuple[np.ndarray,
                                                                        np.ndarray]:
    """Rank each row's ``(labels, scores)`` by score (ties: smaller id first) into
    ``(indices int64 (n, k), scores float32 (n, k))``, padded with -1 / -inf."""
    n = len(rows)
    idx = np.full((n, k), -1, dtype=np.int64)
    val = np.full((n, k), -np.inf, dtype=np.float32)
    for i, (lab, sc) in enumerate(rows):
        lab = np.asarray(lab, dtype=np.int64)
        sc = np.asarray(sc, dtype=np.float32)
        order = np.lexsort((lab, -sc))[:k]
        idx[i, :len(order)] = lab[order]
        val[i, :len(order)] = sc[order]
    return idx, val


def topk_of_csr(S: sp.csr_matrix, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest stored entries of each row of a score matrix, best first."""
    S = S.tocsr()
    return pad_ranked([(S.indices[S.indptr[i]:S.indptr[i + 1]],
                        S.data[S.indptr[i]:S.indptr[i + 1]]) for i in range(S.shape[0])], k)


def _check_fit(X, Y) -> Tuple[sp.csr_matrix, sp.csr_matrix]:
    if not sp.issparse(X):
        raise TypeError(f"X must be a scipy sparse feature matrix, got {type(X).__name__}")
    if not sp.issparse(Y):
        raise TypeError(f"Y must be a scipy sparse label matrix, got {type(Y).__name__}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; pass one label "
                         "row per sample")
    Y = _csr(Y)
    Y.data[:] = 1.0
    return _csr(X), Y


@contextlib.contextmanager
def _quiet():
    """Silence what native code writes to the process's stdout and stderr (Omikuji's
    logger draws a progress bar per example)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [null]:
            os.close(fd)


@contextlib.contextmanager
def _their_warnings():
    """The tools' own deprecation notices (PECOS uses scipy namespaces scipy deprecates)
    are theirs to fix, not errors of the caller."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return int(k)


# ---------------------------------------------------------------- peers
class Peer:
    """Base class: ``fit(X, Y) -> self``, ``predict_topk(X, k) -> (indices, scores)``."""

    name = "peer"

    def __init__(self, threads: int = 2):
        self.threads = int(threads)

    def fit(self, X, Y) -> Peer:
        X, Y = _check_fit(X, Y)
        self.n_features_, self.n_labels_ = X.shape[1], Y.shape[1]
        with _their_warnings():
            self._fit(X, Y)
        return self

    def predict_topk(self, X, k: int) -> Tuple[np.ndarray, np.ndarray]:
        k = _check_k(k)
        if not sp.issparse(X):
            raise TypeError(f"X must be a scipy sparse feature matrix, got {type(X).__name__}")
        if X.shape[1] != self.n_features_:
            raise ValueError(f"X has {X.shape[1]} columns, the model was fitted on "
                             f"{self.n_features_}")
        with _their_warnings():
            return self._predict(_csr(X), k)

    def close(self) -> None:
        """Remove files the peer keeps on disk (models saved by the tool)."""

    def _fit(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
        raise NotImplementedError

    def _predict(self, X: sp.csr_matrix, k: int):
        raise NotImplementedError


class Popularity(Peer):
    """The most frequent training labels, the same list for every sample."""

    name = "popularity"

    def _fit(self, X, Y):
        counts = np.asarray(Y.sum(axis=0)).ravel()
        self.order_ = np.lexsort((np.arange(len(counts)), -counts))
        self.freq_ = (counts / max(1, Y.shape[0])).astype(np.float32)

    def _predict(self, X, k):
        top = self.order_[:k]
        idx = np.full((X.shape[0], k), -1, dtype=np.int64)
        val = np.full((X.shape[0], k), -np.inf, dtype=np.float32)
        idx[:, :len(top)] = top
        val[:, :len(top)] = self.freq_[top]
        return idx, val


def _normalize_rows(X: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return _csr(sp.diags(1.0 / norms) @ X)


class KNN(Peer):
    """TF-IDF cosine k-NN: each of the ``neighbors`` most similar training rows (exact,
    sparse products in blocks) adds its cosine similarity to each of its labels."""

    name = "knn"

    def __init__(self, threads: int = 2, neighbors: int = 10, block: int = 512):
        super().__init__(threads)
        self.neighbors, self.block = int(neighbors), int(block)

    def _fit(self, X, Y):
        self.XT_ = _normalize_rows(X).T.tocsr()  # (F, n): one product per query block
        self.Y_ = Y

    def _predict(self, X, k):
        X = _normalize_rows(X)
        n_train = self.XT_.shape[1]
        m = min(self.neighbors, n_train)
        idx = np.full((X.shape[0], k), -1, dtype=np.int64)
        val = np.full((X.shape[0], k), -np.inf, dtype=np.float32)
        for s in range(0, X.shape[0], self.block):
            S = (X[s:s + self.block] @ self.XT_).toarray()
            nb = np.argpartition(-S, m - 1, axis=1)[:, :m]
            w = np.take_along_axis(S, nb, axis=1)
            rows = np.repeat(np.arange(len(S)), m)
            keep = w.ravel() > 0  # a neighbour sharing no term gives no evidence
            W = sp.csr_matrix((w.ravel()[keep], (rows[keep], nb.ravel()[keep])),
                              shape=(len(S), n_train))
            i, v = topk_of_csr(W @ self.Y_, k)
            idx[s:s + len(S)], val[s:s + len(S)] = i, v
        return idx, val


class PecosXR(Peer):
    """PECOS XR-Linear: PIFA label features -> hierarchical k-means indexer -> XR-Linear,
    all at PECOS's defaults; ``beam`` is the beam size at prediction (default 10)."""

    def __init__(self, threads: int = 2, beam: int = 10):
        super().__init__(threads)
        self.beam = int(beam)
        self.name = f"pecos-b{self.beam}"
        with _their_warnings():
            import pecos.xmc.xlinear.model  # noqa: F401 (imported here, not timed with fit)

    def _fit(self, X, Y):
        from pecos.xmc import Indexer, LabelEmbeddingFactory
        from pecos.xmc.xlinear.model import XLinearModel

        label_feat = LabelEmbeddingFactory.create(Y, X, method="pifa")
        chain = Indexer.gen(label_feat, threads=self.threads)
        self.model_ = XLinearModel.train(X, Y.tocsc(), C=chain, threads=self.threads)

    def _predict(self, X, k):
        P = self.model_.predict(X, beam_size=self.beam, only_topk=k, threads=self.threads)
        return topk_of_csr(P, k)


class OmikujiTrees(Peer):
    """Omikuji partitioned label trees. ``kind="parabel"``: the defaults (balanced 2-means,
    depth 20, 3 trees); ``kind="bonsai"``: regular k-means with k = 100 and depth 3, the
    settings its README gives for Bonsai. Beam 10 (its default) at prediction.

    Omikuji trains from a file in the Extreme Classification Repository format: the time to
    write it is kept apart (``prep_time_``), not counted as training.
    """

    def __init__(self, threads: int = 2, kind: str = "parabel", beam: int = 10):
        super().__init__(threads)
        if kind not in ("parabel", "bonsai"):
            raise ValueError(f"kind must be 'parabel' or 'bonsai', got {kind!r}")
        self.kind, self.beam = kind, int(beam)
        self.name = f"omikuji-{kind}"
        with _their_warnings():
            import omikuji  # noqa: F401 (imported here, not timed with fit)

    def _fit(self, X, Y):
        import time

        import omikuji

        hp = omikuji.Model.default_hyper_param()
        if self.kind == "bonsai":
            hp.cluster_balanced = False
            hp.cluster_k = 100
            hp.max_depth = 3
        # Omikuji's reader refuses a row without features; such a row has nothing for a
        # linear model to learn from, so it is left out of its training file
        keep = np.flatnonzero(np.diff(X.indptr) > 0)
        if len(keep) < X.shape[0]:
            X, Y = X[keep], Y[keep]
        tmp = tempfile.mkdtemp(prefix="omikuji-")
        try:
            t = time.perf_counter()
            path = os.path.join(tmp, "train.txt")
            write_xc(path, X, Y)
            self.prep_time_ = time.perf_counter() - t
            with _quiet():
                self.model_ = omikuji.Model.train_on_data(path, hp, n_threads=self.threads)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.model_.init_prediction_thread_pool(self.threads)

    def _predict(self, X, k):
        rows = []
        for i in range(X.shape[0]):
            a, b = X.indptr[i], X.indptr[i + 1]
            pairs = list(zip(X.indices[a:b].tolist(), X.data[a:b].tolist()))
            pred = self.model_.predict(pairs, beam_size=self.beam, top_k=k)
            rows.append(([p[0] for p in pred], [p[1] for p in pred]))
        return pad_ranked(rows, k)


def write_xc(path: str, X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
    """Write ``(X, Y)`` in the Extreme Classification Repository's text format."""
    with open(path, "w", encoding="ascii") as f:
        f.write(f"{X.shape[0]} {X.shape[1]} {Y.shape[1]}\n")
        for i in range(X.shape[0]):
            labels = ",".join(map(str, Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tolist()))
            a, b = X.indptr[i], X.indptr[i + 1]
            feats = " ".join(f"{j}:{v:.6g}" for j, v in zip(X.indices[a:b].tolist(),
                                                          X.data[a:b].tolist()))
            f.write(f"{labels} {feats}\n")


class NapkinPLT(Peer):
    """napkinXC probabilistic label tree with its defaults (hierarchical balanced 2-means
    tree, up to 100 labels per leaf, exact top-k search)."""

    name = "napkinxc-plt"

    def __init__(self, threads: int = 2):
        super().__init__(threads)
        with _their_warnings():
            import napkinxc.models  # noqa: F401 (imported here, not timed with fit)

    def _fit(self, X, Y):
        from napkinxc.models import PLT

        self.dir_ = tempfile.mkdtemp(prefix="napkinxc-")
        self.model_ = PLT(self.dir_, threads=self.threads, seed=0)
        self.model_.fit(X, Y)

    def _predict(self, X, k):
        pred = self.model_.predict_proba(X, top_k=k)
        return pad_ranked([([p[0] for p in row], [p[1] for p in row]) for row in pred], k)

    def close(self):
        if getattr(self, "dir_", None):
            shutil.rmtree(self.dir_, ignore_errors=True)


# ---------------------------------------------------------------- registry
def make_peer(name: str, threads: int = 2) -> Peer:
    """A fresh, unfitted peer by name (one of :data:`PEERS`)."""
    if name == "popularity":
        return Popularity(threads)
    if name == "knn":
        return KNN(threads)
    if name.startswith("pecos-b") and name in PEERS:
        return PecosXR(threads, beam=int(name[len("pecos-b"):]))
    if name.startswith("omikuji-") and name in PEERS:
        return OmikujiTrees(threads, kind=name[len("omikuji-"):])
    if name == "napkinxc-plt":
        return NapkinPLT(threads)
    raise ValueError(f"peer must be one of {', '.join(PEERS)}, got {name!r}")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def _smoke_test(name: str) -> None:
    """Fit and query the peer on a tiny problem: a package can import and still fail
    at run time against the installed numpy/scipy (PECOS 1.2.8 calls a helper that
    scipy 1.15 removed)."""
    rng = np.random.default_rng(0)
    X = sp.random(12, 6, density=0.5, format="csr", dtype=np.float32, random_state=rng)
    X = X + sp.eye(12, 6, dtype=np.float32, format="csr")
    Y = sp.csr_matrix((np.ones(12, np.float32), np.arange(12) % 3, np.arange(13)),
                      shape=(12, 3))
    peer = make_peer(name, threads=1)
    try:
        with _quiet(), _their_warnings():
            peer.fit(X, Y).predict_topk(X, 2)
    finally:
        peer.close()


def available(names=PEERS, echo=_stderr) -> List[str]:
    """The peers of ``names`` whose package imports and runs; each one left out is named
    with the reason (``pip install ".[bench]"`` installs them)."""
    import importlib

    out, failed = [], {}
    for name in names:
        pkg = _NEEDS.get(name)
        if pkg is not None and pkg not in failed:
            try:
                with _their_warnings():
                    importlib.import_module(pkg)
            except Exception as e:  # noqa: BLE001 (a broken wheel is a skip, not a failure)
                failed[pkg] = f"{type(e).__name__}: {e}"
        if pkg is not None and pkg in failed:
            echo(f"skipping {name}: package {pkg!r} does not import ({failed[pkg]})")
            continue
        if pkg is not None:
            try:
                _smoke_test(name)
            except Exception as e:  # noqa: BLE001 (a peer broken here is a skip, not ours)
                echo(f"skipping {name}: it fails on a tiny problem here "
                     f"({type(e).__name__}: {str(e)[:200]})")
                continue
        out.append(name)
    return out


def versions() -> Dict[str, Optional[str]]:
    """Installed versions of the peers' packages (None: not installed)."""
    from importlib import metadata

    out = {}
    for dist in ("libpecos", "omikuji", "napkinxc", "scikit-learn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out
