"""The training recipes by name: one table, readable without importing torch.

A recipe names a head, a loss and a decoder. This table is the only list of them: the
``head=`` of :func:`labelemb.torch.make_model`, the ``recipe=`` of
:func:`labelemb.torch.fit`, ``labelemb train --objective`` and ``labelemb demo --recipes``
all read it. :mod:`labelemb.torch.recipes` adds what needs torch (the head class and the
loss function of each recipe); the CLI reads the names from here, so ``labelemb --help``
never imports torch.

Examples
--------
>>> from labelemb._recipes import RECIPES, canonical_name
>>> RECIPES["paper"].objective, RECIPES["paper"].decode
('cosine', 'nearest')
>>> canonical_name("hybrid")
'hybrid'
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ._validation import check_bool, check_int

__all__ = ["ALIASES", "DEFAULT_RECIPE", "DEFAULT_RECIPE_LARGE", "LARGE_LABEL_SET", "RECIPES",
           "Recipe", "SAMPLED_LABELS", "WIDE_LABEL_SET", "canonical_name", "default_dim",
           "default_recipe", "default_sampled_labels", "recipe_names"]

OBJECTIVES = ("cosine", "bce", "softmax", "hybrid")
LOGIT_OBJECTIVES = ("bce", "softmax", "hybrid")
DECODERS = ("nearest", "logits")
HEAD_KINDS = ("embedding", "logit", "lowrank")


@dataclass(frozen=True)
class Recipe:
    """How a model is trained and decoded.

    Attributes
    ----------
    name : str
    objective : {"cosine", "bce", "softmax", "hybrid"}
        Cosine proximity to ``EmbeddingTargets``, sigmoid cross-entropy on multi-hot
        targets built per batch, softmax cross-entropy against the label set as a
        uniform distribution (:func:`~labelemb.torch.losses.sparse_softmax_cross_entropy`),
        or the sum of the last two.
    decode : {"nearest", "logits"}
        Rank labels by ``prediction · E_l`` (the top-k decoder) or by the outputs.
    head : {"embedding", "logit", "lowrank"} or None
        The head :func:`~labelemb.torch.make_model` builds for it
        (:class:`~labelemb.torch.EmbeddingHead`, :class:`~labelemb.torch.LogitHead`,
        :class:`~labelemb.torch.LowRankHead`); None for a recipe used with a custom model.
    title : str
        One line for reports.
    lr : float
        The AdamW learning rate chosen for it on a validation split (from {1e-3, 3e-3,
        1e-2}; ``benchmarks/recipes.py``, ``benchmarks/README.md``).
    schedule : {"constant", "cosine"}
        The learning-rate schedule chosen with ``lr``: what :func:`labelemb.torch.fit`,
        :class:`labelemb.Classifier`, ``labelemb train`` and the demo use when none is
        named.
    sparse_lr, sparse_schedule : float and str, optional
        The same two, chosen for a backbone whose first layer takes sparse rows
        (:class:`~labelemb.torch.SparseLinear` under TF-IDF inputs), where they differ:
        each step touches few rows of that layer, and the full-rank heads measured best
        there at 1e-2 with cosine decay (three sparse sets, 593-5,855 labels), against
        1e-3 constant on the small dense sets (``benchmarks/README.md``, "Large label
        sets", "Recipes"). None: ``lr`` and ``schedule``. :meth:`settings` picks the
        pair. On a large dense set (WordNet as LSA vectors, 2,048-wide MLP) ``bce`` also
        did better at 1e-2 with cosine decay: name them there.
    """

    name: str
    objective: str
    decode: str
    head: Optional[str] = None
    title: str = ""
    lr: float = 1e-3
    schedule: str = "constant"
    sparse_lr: Optional[float] = None
    sparse_schedule: Optional[str] = None

    def settings(self, sparse: bool = False) -> Tuple[float, str]:
        """``(lr, schedule)`` for a backbone over dense rows, or over sparse ones
        (``sparse=True``).

        >>> RECIPES["hybrid"].settings(), RECIPES["hybrid"].settings(sparse=True)
        ((0.001, 'constant'), (0.01, 'cosine'))
        """
        if check_bool(sparse, "sparse"):
            return (self.lr if self.sparse_lr is None else self.sparse_lr,
                    self.schedule if self.sparse_schedule is None else self.sparse_schedule)
        return self.lr, self.schedule


# The first recipe of each head kind is the one inferred for a head made without
# make_model. The default recipe is the one measured best overall (benchmarks/README.md).
RECIPES: Dict[str, Recipe] = {r.name: r for r in (
    Recipe("paper", "cosine", "nearest", "embedding",
           "label embedding + cosine proximity (paper)", 3e-3),
    Recipe("bce", "bce", "logits", "logit", "sigmoid cross-entropy (log-prior biases)", 1e-3,
           sparse_lr=1e-2, sparse_schedule="cosine"),
    Recipe("lowrank", "bce", "logits", "lowrank", "low-rank PMI head + sigmoid cross-entropy",
           3e-3),
    Recipe("softmax", "softmax", "logits", "logit",
           "one output per label + softmax cross-entropy", 1e-3),
    Recipe("lowrank-softmax", "softmax", "logits", "lowrank",
           "low-rank PMI head + softmax cross-entropy", 2e-3, "cosine"),
    Recipe("hybrid", "hybrid", "logits", "logit",
           "one output per label + sigmoid and softmax CE", 1e-3,
           sparse_lr=1e-2, sparse_schedule="cosine"),
    Recipe("lowrank-hybrid", "hybrid", "logits", "lowrank",
           "low-rank PMI head + sigmoid and softmax CE", 1e-3),
)}
# The default recipe below LARGE_LABEL_SET labels, and from there on (default_recipe).
DEFAULT_RECIPE = "hybrid"
DEFAULT_RECIPE_LARGE = "lowrank-softmax"
LARGE_LABEL_SET = 2000
# Former names, accepted with a DeprecationWarning until the next release.
ALIASES: Dict[str, str] = {"embedding": "paper"}


def default_recipe(n_labels: Optional[int] = None, sparse: bool = False) -> str:
    """The recipe used when none is named: by ``make_model``, ``labelemb train``,
    ``labelemb.Classifier`` and the demo.

    Parameters
    ----------
    n_labels : int, optional
        The size of the label set: what decides.
    sparse : bool, default False
        Whether the inputs are sparse rows (TF-IDF, bags of features: a scipy sparse
        matrix, a backbone with a :class:`~labelemb.torch.SparseLinear` first layer).
        Consulted only when ``n_labels`` is None (not known yet): sparse inputs come with
        large label sets far more often than not.

    Returns
    -------
    str
        ``"lowrank-softmax"`` (:data:`DEFAULT_RECIPE_LARGE`) from
        :data:`LARGE_LABEL_SET` = 2,000 labels on, ``"hybrid"`` (:data:`DEFAULT_RECIPE`)
        below, whatever the inputs. Each is trained at its own measured rate and schedule
        for the input kind (:meth:`Recipe.settings`).

    Notes
    -----
    Chosen by measurement (``benchmarks/README.md``, "Large label sets"): the same MLP
    for every recipe, learning rates and schedules tuned on validation, test MAP@100 at
    the best validation epoch, three seeds. Sparse TF-IDF inputs, MLP 2,048 wide: the
    low-rank PMI head trained with softmax cross-entropy (lr 2e-3, cosine decay) was
    ahead of the sigmoid head at its own tuned rate on WordNet (4,929 labels) and Debian
    dependencies (5,855 labels) by 1-3%, each step a quarter as costly; with neighbour
    votes at prediction (:class:`labelemb.torch.neighbours.NeighbourVotes`, used by
    :class:`labelemb.Classifier`) by 3-4%, and ahead of every extreme-classification tool
    measured (PECOS, Omikuji, napkinXC). Below 2,000 labels the full-rank ``"hybrid"``
    head measured best or level: on debtags (593 labels) as sparse TF-IDF rows (lr 1e-2,
    cosine decay, with votes: 0.4% behind the tuned sigmoid head, within its seed spread,
    where the low-rank head was 0.6% behind), as dense LSA vectors, and on the Openclipart
    images (lr 1e-3), where the low-rank heads lost 0.4-0.7%. The threshold lies between
    the sizes measured; it is not tuned.

    Raises
    ------
    TypeError
        ``n_labels`` is not an int, or ``sparse`` not a bool.
    ValueError
        ``n_labels`` is below 1.

    Examples
    --------
    >>> from labelemb._recipes import default_recipe
    >>> default_recipe(600), default_recipe(600, sparse=True), default_recipe(20_000)
    ('hybrid', 'hybrid', 'lowrank-softmax')
    >>> default_recipe(sparse=True)
    'lowrank-softmax'
    """
    sparse = check_bool(sparse, "sparse")
    if n_labels is not None:
        n_labels = check_int(n_labels, "n_labels", lo=1, hint=" (the size of the label set)")
        return DEFAULT_RECIPE_LARGE if n_labels >= LARGE_LABEL_SET else DEFAULT_RECIPE
    return DEFAULT_RECIPE_LARGE if sparse else DEFAULT_RECIPE


# The label count from which the default label vectors are 512-dimensional (default_dim).
WIDE_LABEL_SET = 10_000


def default_dim(n_labels: int) -> int:
    """The label-embedding dimension used when none is named (``labelemb.Classifier``,
    ``labelemb train``, ``labelemb fit-model``): 256 below :data:`WIDE_LABEL_SET` =
    10,000 labels, 512 from there on.

    Measured with the default recipe on a 2,048-wide sparse MLP (``benchmarks/README.md``,
    "Large label sets", round 3): d = 512 against 256 gave +0.5% test MAP@100 on WordNet
    with every label (15,218; three seeds of 256 within ± 0.0005) and +0.6% on Debian
    dependencies with every label (34,536), but +0.1% or nothing with about 5,000 labels
    (round 2), where it only costs: the head's product is O(d L) per sample. The
    threshold lies between the sizes measured; it is not tuned.

    >>> from labelemb._recipes import default_dim
    >>> default_dim(5_855), default_dim(15_218)
    (256, 512)
    """
    n_labels = check_int(n_labels, "n_labels", lo=1, hint=" (the size of the label set)")
    return 512 if n_labels >= WIDE_LABEL_SET else 256


# Labels a training step scores under the sampled softmax, from WIDE_LABEL_SET labels on.
SAMPLED_LABELS = 4096


def default_sampled_labels(n_labels: int, recipe: str) -> Optional[int]:
    """Labels scored per training step when none is said (``labelemb.Classifier``,
    ``labelemb train``): :data:`SAMPLED_LABELS` = 4,096 for ``"lowrank-softmax"`` from
    :data:`WIDE_LABEL_SET` = 10,000 labels on, None (every label) otherwise.

    Measured on a 2,048-wide sparse MLP with d = 512 (``benchmarks/README.md``, "Large
    label sets", round 4): test MAP@100 0.8186 on WordNet with every label (15,218) and
    0.5029 on Debian dependencies with every label (34,536), against 0.8189 and 0.5022
    scoring every label (three seeds each), with steps 2.6x and 3.3x cheaper. The threshold
    is :func:`default_dim`'s; it is not tuned.

    >>> from labelemb._recipes import default_sampled_labels
    >>> default_sampled_labels(34_536, "lowrank-softmax"), default_sampled_labels(5_855,
    ...     "lowrank-softmax"), default_sampled_labels(34_536, "bce")
    (4096, None, None)
    """
    n_labels = check_int(n_labels, "n_labels", lo=1, hint=" (the size of the label set)")
    if recipe != "lowrank-softmax" or n_labels < WIDE_LABEL_SET:
        return None
    return SAMPLED_LABELS


def recipe_names(*, aliases: bool = False) -> Tuple[str, ...]:
    """The recipe names in the table's order, optionally followed by the former names."""
    return tuple(RECIPES) + (tuple(ALIASES) if aliases else ())


def deprecation_message(name: str, what: str = "recipe") -> str:
    """What to say when a former name is used."""
    return (f"{what} {name!r} is deprecated and will be removed in the next release; "
            f"use {ALIASES[name]!r}")


def canonical_name(name, what: str = "recipe", *, stacklevel: int = 3) -> str:
    """``name`` itself if it is a recipe, its new name (with a ``DeprecationWarning``) if it
    is a former one; a ``ValueError`` naming ``what`` and the choices otherwise."""
    if isinstance(name, str) and name in RECIPES:
        return name
    if isinstance(name, str) and name in ALIASES:
        warnings.warn(deprecation_message(name, what), DeprecationWarning,
                      stacklevel=stacklevel)
        return ALIASES[name]
    raise ValueError(f"{what} must be one of {', '.join(map(repr, RECIPES))}, got {name!r}")
