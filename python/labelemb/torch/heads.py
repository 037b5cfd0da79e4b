"""Output heads that plug onto any backbone ``nn.Module``, and the models built from them.

* :class:`EmbeddingHead` — the paper's recipe: a linear layer to the embedding's ``d``,
  trained with cosine proximity to the encoded targets, decoded by nearest labels.
* :class:`LogitHead` — the sigmoid baseline: a linear layer to ``L`` logits, biases
  initialised to each label's log prior odds, trained with binary cross-entropy.
* :class:`LowRankHead` — logits through the embedding: ``s · normalize(W x) · Eᵀ + b``,
  a ``d``-wide weight layer, ``E`` initialised from the label vectors, trained with BCE.

The two logit heads can also be trained with softmax cross-entropy over all labels
(recipes ``"softmax"`` and ``"lowrank-softmax"`` of :func:`make_model`) or with the sum of
the sigmoid and softmax cross-entropies (``"hybrid"``, ``"lowrank-hybrid"``). The loss and the
decoder follow from the head and the recipe it was made for (see
:func:`labelemb.torch.fit`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._recipes import RECIPES, canonical_name, default_recipe
from .._validation import check_bool, check_float, check_int
from .data import _vectors_of
from .sparse import SparseLinear, first_sparse_layer

__all__ = ["EmbeddingHead", "LogitHead", "LowRankHead", "find_head", "make_model", "mlp"]


def _in_features(in_features) -> int:
    return check_int(in_features, "in_features", lo=1, hint=" (the backbone's output width)")


def log_prior_odds(label_counts, n_samples: int) -> torch.Tensor:
    """``log(p / (1 - p))`` per label, ``p = (c + 0.5) / (n + 1)`` (smoothed: an unseen
    label gets a large negative bias instead of -inf)."""
    c = torch.as_tensor(np.asarray(label_counts, dtype=np.float64))
    p = (c + 0.5) / (float(n_samples) + 1.0)
    return torch.log(p) - torch.log1p(-p)


class _PriorBias:
    """Mixin: biases set once from the training labels' log prior odds."""

    bias: nn.Parameter
    prior_initialized: bool = False
    label_names = None  # set by fit when the training labels were given as names

    def init_prior(self, label_counts, n_samples: int) -> None:
        """Set the output biases to the labels' log prior odds (done by ``fit`` when it
        first sees the training labels; call it yourself when training elsewhere)."""
        counts = np.asarray(label_counts)
        if counts.shape != (self.n_labels,):
            raise ValueError(f"label_counts has shape {counts.shape}, expected "
                             f"({self.n_labels},) (one count per label)")
        with torch.no_grad():
            self.bias.copy_(log_prior_odds(counts, n_samples).to(self.bias))
        self.prior_initialized = True


class EmbeddingHead(nn.Module):
    """Linear layer from the backbone's features to the label embedding space (d).

    Parameters
    ----------
    in_features : int
        Width of the backbone's output.
    embedding : LabelEmbedding or array (L, d)
        The label vectors the outputs are compared with; kept (as ``.embedding``, not as
        parameters) for decoding and targets.

    Input (batch, in_features) -> output (batch, d), float.

    Examples
    --------
    >>> import numpy as np
    >>> from labelemb.torch import EmbeddingHead
    >>> head = EmbeddingHead(16, np.eye(8, 4, dtype=np.float32))
    >>> head.linear.out_features
    4
    """

    def __init__(self, in_features: int, embedding):
        super().__init__()
        vectors = _vectors_of(embedding)
        self.embedding = embedding
        self.n_labels, self.dim = vectors.shape
        self.linear = nn.Linear(_in_features(in_features), self.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class LogitHead(_PriorBias, nn.Module):
    """Linear layer to one logit per label: the sigmoid baseline.

    Parameters
    ----------
    in_features : int
    n_labels : int
        ``L``.

    The biases start at zero; ``fit`` sets them to the labels' log prior odds
    (:meth:`init_prior`) before the first step, as practitioners run the baseline.
    """

    def __init__(self, in_features: int, n_labels: int):
        super().__init__()
        self.n_labels = check_int(n_labels, "n_labels", lo=1)
        self.linear = nn.Linear(_in_features(in_features), n_labels)

    @property
    def bias(self) -> nn.Parameter:
        return self.linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class LowRankHead(_PriorBias, nn.Module):
    """Logits through the label embedding: ``s · normalize(W x) · Eᵀ + b``.

    Parameters
    ----------
    in_features : int
    embedding : LabelEmbedding or array (L, d)
        Initial ``E``.
    learn_vectors : bool, default True
        ``E`` is a parameter (fine-tuned) or a fixed buffer.
    scale_init : float, default 10
        Initial value of the learned scale ``s`` (cosines lie in [-1, 1]; the logits
        need a wider range).
    residual : bool, default False
        Add a full-rank term ``R x`` (``R``: L x in_features, starting at zero) to the
        logits: the low-rank part gives the fast start, the residual the capacity of
        one sigmoid per label at convergence, at the cost per sample of that baseline.

    The weight layer is ``d`` wide; the final product costs O(d · L) per sample. Biases
    are initialised to log prior odds by ``fit``, as for :class:`LogitHead`.
    ``fit(..., sampled_labels=C)`` scores only ``C`` labels per training step
    (:mod:`labelemb.torch.sampling`): it sets ``sample`` to ``(label ids, logit
    offsets, sparse)`` for each step, and the head then outputs those columns while
    training (``sparse``: the label vectors get a row-sparse gradient, for
    :class:`~labelemb.torch.sparse.SparseAdamW`).
    """

    sample = None  # (ids, offsets, sparse) of a sampled training step, set by fit

    def __init__(self, in_features: int, embedding, *, learn_vectors: bool = True,
                 scale_init: float = 10.0, residual: bool = False):
        super().__init__()
        vectors = torch.from_numpy(_vectors_of(embedding).copy())
        self.embedding = embedding
        self.n_labels, self.dim = vectors.shape
        self.linear = nn.Linear(_in_features(in_features), self.dim)
        if learn_vectors:
            self.label_vectors = nn.Parameter(vectors)
        else:
            self.register_buffer("label_vectors", vectors)
        scale_init = check_float(scale_init, "scale_init", lo=0.0, lo_open=True)
        self.scale = nn.Parameter(torch.tensor(scale_init))
        self.bias = nn.Parameter(torch.zeros(self.n_labels))
        residual = check_bool(residual, "residual")
        self.residual = None
        if residual:
            self.residual = nn.Linear(self.linear.in_features, self.n_labels, bias=False)
            nn.init.zeros_(self.residual.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.linear(x), dim=-1)
        if self.training and self.sample is not None:
            ids, offsets, sparse = self.sample
            vectors = F.embedding(ids, self.label_vectors, sparse=sparse)
            out = torch.addmm((self.bias[ids] + offsets).to(z.dtype),
                              self.scale.to(z.dtype) * z, vectors.to(z.dtype).t())
            if self.residual is not None:
                out = out + F.linear(x, self.residual.weight[ids])
            return out
        out = torch.addmm(self.bias.to(z.dtype), self.scale.to(z.dtype) * z,
                          self.label_vectors.to(z.dtype).t())
        if self.residual is not None:
            out = out + self.residual(x)
        return out


HEADS = (EmbeddingHead, LogitHead, LowRankHead)
# The class behind each head kind of the recipe table (labelemb._recipes.RECIPES).
HEAD_CLASSES = {"embedding": EmbeddingHead, "logit": LogitHead, "lowrank": LowRankHead}


def find_head(model: nn.Module) -> Optional[nn.Module]:
    """The last labelemb head among ``model``'s modules, or None (a custom model)."""
    head = None
    for m in model.modules():
        if isinstance(m, HEADS):
            head = m
    return head


def mlp(in_features: int, hidden: Sequence[int] = (512,), *, dropout: float = 0.0,
        sparse: bool = False) -> nn.Module:
    """A small backbone: ``Linear -> ReLU (-> Dropout)`` per hidden width.

    Output width ``hidden[-1]`` (or ``in_features`` when ``hidden`` is empty).

    ``sparse=True`` makes the first layer a :class:`~labelemb.torch.sparse.SparseLinear`
    with row-sparse gradients: the backbone for scipy sparse inputs (TF-IDF, bags of
    features), which :func:`~labelemb.torch.fit` slices into sparse batches and never
    densifies; it takes dense rows too. Its weight is stored ``(in_features, width)``
    and ``fit`` trains it with :class:`~labelemb.torch.sparse.SparseAdamW` (lazy rows) for
    ``"adamw"``/``"adam"``. Not the default: on dense inputs it measured no faster than
    ``nn.Linear`` (benchmarks/README.md, "Sparse input features"), and saved models keep
    their layout.
    """
    layers, width = [], _in_features(in_features)
    check_bool(sparse, "sparse")
    if sparse and not len(hidden):
        raise ValueError("mlp(..., sparse=True) needs at least one hidden width (the sparse "
                         "first layer)")
    for i, h in enumerate(hidden):
        if sparse and i == 0:
            layers += [SparseLinear(width, int(h), sparse_grad=True), nn.ReLU()]
        else:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    return nn.Sequential(*layers)


def make_model(backbone: nn.Module, out_features: int, head: Optional[str] = None, *,
               embedding=None, n_labels: Optional[int] = None,
               **head_kwargs) -> nn.Sequential:
    """``nn.Sequential(backbone, head)`` for one of the recipes.

    Parameters
    ----------
    backbone : nn.Module
        Any module mapping inputs to (batch, out_features).
    out_features : int
        The backbone's output width.
    head : {"paper", "bce", "lowrank", "softmax", "lowrank-softmax", "hybrid", \
"lowrank-hybrid"}, optional
        The recipe: ``"paper"``: :class:`EmbeddingHead` (needs ``embedding``); ``"bce"``,
        ``"softmax"`` and ``"hybrid"``: :class:`LogitHead` (needs ``n_labels`` or
        ``embedding``); ``"lowrank"``, ``"lowrank-softmax"`` and ``"lowrank-hybrid"``:
        :class:`LowRankHead` (needs ``embedding``; ``head_kwargs`` go to it). The suffix
        names the loss: sigmoid cross-entropy (none), softmax cross-entropy over all
        labels, or the sum of both ("hybrid"). The head records it (``head.recipe``),
        so :func:`~labelemb.torch.fit` trains it with that recipe's loss.

        None (the default) picks by the size of the label set (``n_labels``, else the
        embedding's) with :func:`labelemb.torch.default_recipe`: ``"lowrank-softmax"``
        from 2,000 labels on, ``"hybrid"`` below, for sparse and dense inputs alike. On
        sparse TF-IDF inputs with about 5,000 labels (WordNet, Debian dependencies) the
        low-rank PMI head with softmax cross-entropy measured best against a tuned
        sigmoid baseline, in cheaper epochs (benchmarks/README.md, "Large label sets");
        with fewer labels (debtags, sparse or as LSA vectors; the Openclipart images)
        ``"hybrid"`` did, or tied (+0.4% MAP@100 on dense debtags in five seeds of five;
        "Recipes"). ``"hybrid"``'s head does not use the label vectors; ``"lowrank-*"``
        heads start from them, ``"paper"`` regresses onto them.

    Examples
    --------
    >>> import numpy as np
    >>> from labelemb.torch import make_model, mlp
    >>> E = np.eye(10, 4, dtype=np.float32)
    >>> model = make_model(mlp(32, [64]), 64, "bce", n_labels=10)
    >>> type(model[1]).__name__
    'LogitHead'
    """
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
    if head is None:
        if n_labels is None and embedding is None:
            raise ValueError("make_model needs n_labels= or embedding= (the default recipe "
                             "depends on the number of labels)")
        L = check_int(n_labels, "n_labels", lo=1) if n_labels is not None else \
            _vectors_of(embedding).shape[0]
        sparse = first_sparse_layer(backbone) is not None
        head = default_recipe(L, sparse)
        if RECIPES[head].head != "logit" and embedding is None:
            raise ValueError(f"the default recipe for {L} labels, {head!r}, needs "
                             f"embedding= (a LabelEmbedding); pass one, or name a head such "
                             f"as 'hybrid'")
    head = canonical_name(head, "head")
    cls = HEAD_CLASSES[RECIPES[head].head]
    if cls is not LogitHead and embedding is None:
        raise ValueError(f"head={head!r} needs embedding= (a LabelEmbedding)")
    if cls is LogitHead:
        if n_labels is None:
            if embedding is None:
                raise ValueError(f"head={head!r} needs n_labels= (or an embedding to take it "
                                 "from)")
            n_labels = _vectors_of(embedding).shape[0]
        h = LogitHead(out_features, n_labels, **head_kwargs)
    else:
        h = cls(out_features, embedding, **head_kwargs)
    h.recipe = head
    return nn.Sequential(backbone, h)
