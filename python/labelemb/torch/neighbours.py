"""Neighbour votes: the label sets of a sample's nearest training samples, in the space
where the model meets the label vectors, fused with the model's own scores.

A low-rank head maps a sample to a unit vector ``z`` and scores label ``l`` by
``s · z · E_l``: ``z`` is the sample's point among the label vectors. Training samples
that land near ``z`` tend to carry the same labels, and their label sets are a second,
non-parametric opinion that is strongest where the network is weakest (labels with few
examples, unusual combinations). :class:`NeighbourVotes` keeps the training samples'
points and label sets; at prediction time each sample's ``k`` nearest training points
(exact inner-product top-k, :func:`labelemb.topk`) vote with weights
``softmax(similarity / temperature)``, and the ranking score of label ``l`` is::

    (1 - weight) · softmax(logits)_l + weight · votes_l

Both terms are distributions over the labels, so ``weight`` is a plain mixing share.
For heads without a label space (:class:`~labelemb.torch.LogitHead`), the point is the
head's unit-normalised input; for :class:`~labelemb.torch.EmbeddingHead` the
normalised prediction. Only recipes decoded by logits can be fused.

Examples
--------
>>> import labelemb
>>> from labelemb.torch import fit, make_model, mlp, predict
>>> from labelemb.torch.neighbours import NeighbourVotes
>>> data = labelemb.make_topic_labels(600, 40, n_features=16, seed=0)
>>> emb = labelemb.fit_embeddings(data.labels, dim=8)
>>> model = make_model(mlp(16, [32]), 32, "lowrank-softmax", embedding=emb)
>>> h = fit(model, (data.features, data.labels), emb, epochs=1, lr=1e-2, batch_size=64,
...         progress=False)
>>> votes = NeighbourVotes.from_model(model, data.features, data.labels, k=10)
>>> idx, scores = predict(model, data.features[:3], k=5, neighbours=votes)
>>> idx.shape, bool((scores[:, :-1] >= scores[:, 1:]).all())
((3, 5), True)
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_float, check_int
from ..topk import topk as _topk
from .device import autocast
from .distributed import DistContext
from .heads import EmbeddingHead, LogitHead, LowRankHead, find_head

__all__ = ["NeighbourVotes", "decode_fused", "fused_topk", "head_space"]

# Fused decoding holds a few (rows x L) float32 matrices: rows per batch are capped so that
# one of them stays under this many entries (128 MB).
MAX_BATCH_ENTRIES = 1 << 25
# Chosen on the validation splits of WordNet and Debian dependencies (benchmarks/README.md)
DEFAULT_K = 50
DEFAULT_TEMPERATURE = 0.05
DEFAULT_WEIGHT = 0.5


def _space_of(head: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(head, LowRankHead):
        return F.normalize(head.linear(x), dim=-1)
    if isinstance(head, EmbeddingHead):
        return F.normalize(head(x), dim=-1)
    return F.normalize(x.flatten(1), dim=-1)


@contextlib.contextmanager
def head_space(net: nn.Module) -> Iterator[List[torch.Tensor]]:
    """While the block runs, every forward pass of ``net`` appends the batch's points in
    the head's space (unit rows, float32) to the list yielded.

    Raises
    ------
    ValueError
        ``net`` has no labelemb head (:func:`~labelemb.torch.make_model`).
    """
    head = find_head(net)
    if head is None:
        raise ValueError("neighbour votes need a model with a labelemb head (make_model); "
                         "this model has none")
    points: List[torch.Tensor] = []

    def hook(module, inputs):
        points.append(_space_of(module, inputs[0]).float())

    handle = head.register_forward_pre_hook(hook)
    try:
        yield points
    finally:
        handle.remove()


class NeighbourVotes:
    """The training samples' points in the head's space and their label sets.

    Parameters
    ----------
    keys : array (n, d)
        Unit rows: the training samples' points (:meth:`from_model` computes them).
    labels : scipy sparse (n, L)
        Their label sets (binary).
    k : int, default 50
        Neighbours per query.
    temperature : float, default 0.05
        Vote weights ``softmax(similarity / temperature)`` over the ``k`` neighbours.
    weight : float in [0, 1], default 0.5
        Share of the votes in the fused score (0: the model alone, 1: the votes alone).

    Attributes
    ----------
    keys : ndarray (n, d) float32
    labels : scipy.sparse.csr_matrix (n, L) float32
    """

    def __init__(self, keys, labels, *, k: int = DEFAULT_K,
                 temperature: float = DEFAULT_TEMPERATURE, weight: float = DEFAULT_WEIGHT):
        keys = np.asarray(keys)
        if keys.ndim != 2 or keys.shape[0] < 1 or keys.shape[1] < 1:
            raise ValueError(f"keys must be a non-empty (n, d) array, got shape {keys.shape}")
        if not np.issubdtype(keys.dtype, np.floating) or not np.isfinite(keys).all():
            raise ValueError("keys must be finite floating-point numbers")
        if not sp.issparse(labels):
            raise TypeError(f"labels must be a scipy sparse matrix (n, L), got "
                            f"{type(labels).__name__}")
        if labels.shape[0] != keys.shape[0]:
            raise ValueError(f"labels has {labels.shape[0]} rows but keys has "
                             f"{keys.shape[0]}; one label set per key")
        self.keys = np.ascontiguousarray(keys, dtype=np.float32)
        labels = sp.csr_matrix(labels, dtype=np.float32)
        labels.data[:] = 1.0
        self.labels = labels
        self.k = check_int(k, "k", lo=1, hi=keys.shape[0],
                           hint=" (neighbours per query, at most the number of keys)")
        self.temperature = check_float(temperature, "temperature", lo=0.0, lo_open=True)
        self.weight = check_float(weight, "weight", lo=0.0, hi=1.0)

    @property
    def n_labels(self) -> int:
        return int(self.labels.shape[1])

    @classmethod
    def from_model(cls, model: nn.Module, X, Y, *, batch_size: int = 2048, device=None,
                   amp=True, **options) -> NeighbourVotes:
        """The points of ``X`` (the training inputs) under the trained ``model`` and the
        label sets ``Y``; ``options`` (``k``, ``temperature``, ``weight``) as in the
        constructor."""
        from .data import as_label_csr
        from .sources import inference_source
        from .sparse import check_source

        head = find_head(model)
        n_labels = getattr(head, "n_labels", None)
        Y, _ = as_label_csr(Y, "Y", n_labels=n_labels)
        source = inference_source(X, Y.shape[1], None)
        check_source(model, source, "X")
        if len(source) != Y.shape[0]:
            raise ValueError(f"X has {len(source)} samples but Y has {Y.shape[0]} label sets")
        batch_size = check_int(batch_size, "batch_size", lo=1)
        dev = next(model.parameters()).device if device is None else torch.device(device)
        was = model.training
        model.eval()
        try:
            with torch.no_grad(), head_space(model) as points, autocast(amp, dev):
                for x, _ in source.eval_batches(batch_size, DistContext(), dev):
                    model(x)
        finally:
            model.train(was)
        keys = torch.cat(points).cpu().numpy() if points else np.zeros((0, 1), np.float32)
        return cls(keys, Y, **options)

    def arrays(self) -> Tuple[Dict[str, np.ndarray], Dict[str, float]]:
        """What a model file keeps: ``({"keys", "indptr", "indices"}, {"n_labels", "k",
        "temperature", "weight"})``; :meth:`from_arrays` reads it back."""
        return ({"keys": self.keys, "indptr": self.labels.indptr.astype(np.int64),
                 "indices": self.labels.indices.astype(np.int64)},
                {"n_labels": self.n_labels, "k": self.k, "temperature": self.temperature,
                 "weight": self.weight})

    @classmethod
    def from_arrays(cls, arrays, meta, where: str) -> NeighbourVotes:
        """The votes :meth:`arrays` described; a ``ValueError`` naming ``where`` (the file)
        when they are damaged."""
        try:
            keys, indptr, indices = (np.asarray(arrays[a]) for a in ("keys", "indptr",
                                                                      "indices"))
            labels = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr),
                                   shape=(keys.shape[0], int(meta["n_labels"])))
            return cls(keys, labels, k=meta["k"], temperature=meta["temperature"],
                       weight=meta["weight"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: the neighbour votes are damaged ({e})") from None

    def votes(self, points: np.ndarray) -> sp.csr_matrix:
        """``(m, L)`` CSR: each row's neighbour votes (a distribution over the labels of
        its ``k`` nearest keys; rows of neighbours without labels sum to less than 1)."""
        points = np.ascontiguousarray(points, dtype=np.float32)
        if points.ndim != 2 or points.shape[1] != self.keys.shape[1]:
            raise ValueError(f"points must be (m, {self.keys.shape[1]}), got {points.shape}")
        idx, sim = _topk(points, self.keys, self.k, num_threads=torch.get_num_threads())
        w = np.exp((sim - sim[:, :1]) / self.temperature)
        w /= w.sum(axis=1, keepdims=True)
        m = points.shape[0]
        pick = sp.csr_matrix((w.ravel(), idx.ravel().astype(np.int64),
                              np.arange(0, m * self.k + 1, self.k)),
                             shape=(m, self.keys.shape[0]))
        return (pick @ self.labels).tocsr()

    def fuse(self, logits: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """``(1 - weight) · softmax(logits) + weight · votes``, (m, L) float32 on the
        logits' device."""
        if logits.dim() != 2 or logits.shape[1] != self.n_labels:
            raise ValueError(f"logits must be (m, {self.n_labels}), got "
                             f"{tuple(logits.shape)}")
        scores = torch.softmax(logits.float(), dim=1).mul_(1.0 - self.weight)
        v = self.votes(points.detach().float().cpu().numpy()).tocoo()
        rows = torch.from_numpy(v.row.astype(np.int64)).to(scores.device)
        cols = torch.from_numpy(v.col.astype(np.int64)).to(scores.device)
        vals = torch.from_numpy(v.data.astype(np.float32)).to(scores.device)
        scores.index_put_((rows, cols), vals * self.weight, accumulate=True)
        return scores


def fused_batch_size(batch_size: int, n_labels: int) -> int:
    """``batch_size`` capped so that a (rows x ``n_labels``) float32 matrix stays under
    :data:`MAX_BATCH_ENTRIES` entries (at least one row)."""
    return max(1, min(int(batch_size), MAX_BATCH_ENTRIES // max(1, int(n_labels))))


def _check_head(net: nn.Module) -> None:
    head = find_head(net)
    if isinstance(head, EmbeddingHead):
        raise ValueError("neighbour votes fuse with logits; this model is decoded by nearest "
                         "label vectors (recipe 'paper')")
    if not isinstance(head, (LogitHead, LowRankHead)):
        raise ValueError("neighbour votes need a model with a labelemb head (make_model)")


@torch.no_grad()
def fused_topk(net: nn.Module, votes: NeighbourVotes, x, k: int
               ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(indices int64, fused scores float32)`` of one batch ``x``, best first (``net``
    in the mode the caller left it, eval for prediction)."""
    with head_space(net) as points:
        out = net(x)
    s, i = torch.topk(votes.fuse(out, points[-1]), k, dim=1)
    return i, s


@torch.no_grad()
def decode_fused(net: nn.Module, source, votes: NeighbourVotes, k: int, batch_size: int,
                 device: torch.device, amp) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(indices int64, fused scores float32)``, best first, of every sample of
    ``source``; the model is in eval mode meanwhile."""
    from .inference import decode_source

    _check_head(net)
    return decode_source(net, source, None, k, fused_batch_size(batch_size, votes.n_labels),
                         DistContext(), device, amp,
                         step=lambda x, k: fused_topk(net, votes, x, k))


def check_votes(votes: Optional[NeighbourVotes], n_labels: Optional[int]) -> None:
    """A clear error when ``votes`` is not a :class:`NeighbourVotes` over ``n_labels``."""
    if votes is None:
        return
    if not isinstance(votes, NeighbourVotes):
        raise TypeError(f"neighbours must be a NeighbourVotes "
                        f"(NeighbourVotes.from_model(model, X_train, Y_train)), got "
                        f"{type(votes).__name__}")
    if n_labels is not None and votes.n_labels != n_labels:
        raise ValueError(f"neighbours has {votes.n_labels} labels but the model has "
                         f"{n_labels}")
