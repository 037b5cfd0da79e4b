"""The one-call estimator: label embedding, network, training, decoding and one model file.

:class:`Classifier` assembles the steps of the method the way a user would by hand
(``fit_embeddings`` -> ``make_model(mlp(...))`` -> ``labelemb.torch.fit``), with
scikit-learn's conventions: constructor arguments are the settings, ``fit`` returns
``self``, learned attributes end in ``_``, ``get_params``/``set_params``. It needs the
``torch`` extra; scikit-learn is optional (when importable the class also derives from its
``BaseEstimator``, so ``clone``, ``Pipeline`` and the search tools see it as theirs).

Decoding is exact and skips the dense ``n x L`` logits: every head's scores are inner
products of a per-sample query with fixed label vectors (a logit head: ``[h, 1] · [W, b]``;
the low-rank head: ``[z, 1] · [s E, b]``; the paper's head: ``p · E``), so the top-k runs
through :func:`labelemb.topk` (or a :class:`labelemb.TopkIndex` for large label sets),
batch by batch, on the model's device.
"""

from __future__ import annotations

import copy
import inspect
from typing import Callable, Optional, Sequence, Union

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from . import _recipes, metrics
from ._classifier_parts import BestEpoch, batch_tensor, out_width, threads
from ._inputs import check_width, features, label_sets, texts
from ._recipes import DEFAULT_RECIPE, RECIPES, canonical_name, default_dim, default_recipe
from ._validation import check_bool, check_choice, check_float, check_int, check_threads
from .embedding import LabelEmbedding, fit_embeddings
from .text import TextFeatures
from .torch import fit as torch_fit
from .torch.data import as_label_csr
from .torch.decoder import ExactDecoder
from .torch.device import resolve_device
from .torch.model_file import build_model, mlp_architecture, read_model, write_model
from .torch.neighbours import (
    DEFAULT_K,
    DEFAULT_WEIGHT,
    NeighbourVotes,
    fused_batch_size,
    fused_topk,
)
from .torch.optim import SCHEDULES
from .torch.sparse import first_sparse_layer

try:  # scikit-learn is optional: with it, Classifier is one of its estimators
    from sklearn.base import BaseEstimator as _Base
    from sklearn.exceptions import NotFittedError as _NotFitted  # a ValueError
except ImportError:  # pragma: no cover
    _Base = object
    _NotFitted = ValueError

__all__ = ["Classifier"]


class _Params:
    """``get_params`` / ``set_params`` from the constructor's signature (no dependency)."""

    @classmethod
    def _get_param_names(cls) -> list:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind == p.POSITIONAL_OR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict:
        """The settings, as given to the constructor (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Change settings; takes effect at the next ``fit``. Returns ``self``."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters are {valid}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__)
                    .parameters.values() if p.name != "self"}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not _same(v, defaults.get(k))]
        return f"{type(self).__name__}({', '.join(changed)})"


def _same(a, b) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return a is b


class Classifier(_Params, _Base):
    """Multi-label classifier trained with information-theoretic label embeddings.

    Parameters
    ----------
    recipe : str, optional
        A recipe name (``"paper"``, ``"bce"``, ``"lowrank"``, ``"softmax"``,
        ``"lowrank-softmax"``, ``"hybrid"``, ``"lowrank-hybrid"``): the head and loss (see
        :func:`labelemb.torch.make_model`). None: the default for the size of the label
        set (:func:`labelemb.torch.default_recipe`: ``"lowrank-softmax"`` from 2,000
        labels on, ``"hybrid"`` below).
    dim : int, optional
        Label embedding dimension (clipped to ``L - 1`` for small label sets). None: by
        the size of the label set (:func:`labelemb._recipes.default_dim`: 256 below
        10,000 labels, 512 from there on).
    hidden : sequence of int, default (1024,)
        Hidden widths of the default MLP backbone.
    dropout : float, default 0
        Dropout after each hidden layer of the MLP.
    epochs : int, default 10
    lr : float, optional
        Learning rate (AdamW). None: the recipe's measured default for the backbone's
        input kind (``labelemb._recipes.RECIPES[recipe].settings(sparse)``: 1e-2 for the
        full-rank heads over sparse rows, 1e-3 over dense ones; 2e-3 for
        ``"lowrank-softmax"``).
    batch_size : int, default 256
    weight_decay : float, default 0
    schedule : {"constant", "cosine"}, optional
        Learning-rate schedule. None: the recipe's measured default, chosen with ``lr``
        (cosine decay for ``"lowrank-softmax"`` and for the full-rank heads over sparse
        rows, constant otherwise).
    patience : int, optional
        With a validation set: stop after this many epochs without a better validation
        MAP@100 (None: train every epoch). The best epoch's weights are kept either way.
    neighbours : int, default 50
        Predictions fuse the model's softmax with the label sets of each sample's
        ``neighbours`` nearest training samples in the head's space
        (:class:`labelemb.torch.neighbours.NeighbourVotes`); 0: the model alone. The
        training samples' points (n x d floats) and label sets are kept in the model.
        Recipes decoded by logits only (not ``"paper"``, for which it is ignored).
    neighbour_weight : float in [0, 1], default 0.5
        The votes' share of the fused score.
    sampled_labels : int, optional
        ``"lowrank-softmax"`` only: labels scored per training step (a sampled softmax,
        ``labelemb.torch.fit(sampled_labels=)``); 0: every label. None: by the size of
        the label set (:func:`labelemb._recipes.default_sampled_labels`: 4,096 from
        10,000 labels on, every label below).
    backbone : nn.Module or callable, optional
        Replaces the MLP: a module mapping inputs to (batch, width), or a callable
        ``backbone(n_features) -> nn.Module``. The module given is copied, never trained
        in place. A model with a custom backbone is reloaded with
        ``Classifier.load(path, backbone=...)``.
    text : bool, default False
        Inputs are strings (one text per sample), turned into TF-IDF features by a
        built-in vectoriser that is saved with the model.
    device : str, default "auto"
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
    seed : int, default 0
        Seeds the embedding, the weights' initialisation and the shuffling.
    num_threads : int, default 0
        CPU threads of training and decoding (0: torch's current setting).
    progress : bool, default False
        Progress bars while fitting the embedding and training.
    eval_batch_size : int, default 4096
        Samples per forward pass when predicting.

    Attributes
    ----------
    label_embedding_ : LabelEmbedding
        Fitted on the training label sets (``neighbors``, ``encode``...).
    classes_ : ndarray, shape (L,)
        The label names (str), or the ids ``0..L-1`` when trained on ids.
    model_ : nn.Module
        ``nn.Sequential(backbone, head)``, trained.
    history_ : labelemb.torch.History
        Per-epoch records (validation metrics when a validation set was given).
    best_epoch_ : int
        The epoch whose weights were kept (the last one without validation).
    n_features_in_ : int
    neighbours_ : NeighbourVotes or None
        The training samples' points and label sets that predictions consult (None with
        ``neighbours=0`` or the ``"paper"`` recipe).

    Examples
    --------
    >>> import labelemb
    >>> data = labelemb.make_topic_labels(2000, 50, n_features=32, seed=0)
    >>> clf = labelemb.Classifier(dim=16, hidden=(64,), epochs=2, lr=1e-2)
    >>> clf = clf.fit(data.features, data.labels)
    >>> clf.predict(data.features[:3], k=2).shape
    (3, 2)
    """

    def __init__(self, recipe: Optional[str] = None, dim: Optional[int] = None,
                 hidden: Sequence[int] = (1024,), dropout: float = 0.0, epochs: int = 10,
                 lr: Optional[float] = None, batch_size: int = 256, weight_decay: float = 0.0,
                 schedule: Optional[str] = None, patience: Optional[int] = None,
                 neighbours: int = DEFAULT_K, neighbour_weight: float = DEFAULT_WEIGHT,
                 sampled_labels: Optional[int] = None,
                 backbone: Union[None, nn.Module, Callable[[int], nn.Module]] = None,
                 text: bool = False, device: str = "auto", seed: int = 0,
                 num_threads: int = 0, progress: bool = False, eval_batch_size: int = 4096):
        self.recipe = recipe
        self.dim = dim
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.patience = patience
        self.neighbours = neighbours
        self.neighbour_weight = neighbour_weight
        self.sampled_labels = sampled_labels
        self.backbone = backbone
        self.text = text
        self.device = device
        self.seed = seed
        self.num_threads = num_threads
        self.progress = progress
        self.eval_batch_size = eval_batch_size

    # ------------------------------------------------------------------ settings
    def _settings(self) -> dict:
        """The parameters, checked; ``recipe`` and ``lr`` resolved."""
        recipe = DEFAULT_RECIPE if self.recipe is None else \
            canonical_name(self.recipe, "recipe", stacklevel=4)
        hidden = self.hidden
        if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
            hidden = (hidden,)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (list, tuple)):
            raise TypeError(f"hidden must be a sequence of widths such as (1024,), got "
                            f"{type(self.hidden).__name__}")
        hidden = [check_int(h, "hidden widths", lo=1) for h in hidden]
        lr = None if self.lr is None else check_float(self.lr, "lr", lo=0.0, lo_open=True)
        patience = None if self.patience is None else check_int(self.patience, "patience",
                                                                 lo=1)
        backbone = self.backbone
        if backbone is not None and not (isinstance(backbone, nn.Module) or callable(backbone)):
            raise TypeError(f"backbone must be None, an nn.Module or a callable "
                            f"backbone(n_features) -> nn.Module, got {type(backbone).__name__}")
        if not isinstance(self.device, (str, torch.device)):
            raise TypeError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got "
                            f"{type(self.device).__name__}")
        device = resolve_device(self.device)
        return {"recipe": recipe,
                "dim": None if self.dim is None else check_int(self.dim, "dim", lo=1),
                "hidden": hidden,
                "dropout": check_float(self.dropout, "dropout", lo=0.0, hi=1.0, hi_open=True),
                "epochs": check_int(self.epochs, "epochs", lo=1), "lr": lr,
                "batch_size": check_int(self.batch_size, "batch_size", lo=1),
                "weight_decay": check_float(self.weight_decay, "weight_decay", lo=0.0),
                "schedule": None if self.schedule is None else
                check_choice(self.schedule, "schedule", SCHEDULES),
                "patience": patience, "text": check_bool(self.text, "text"),
                "neighbours": check_int(self.neighbours, "neighbours", lo=0),
                "neighbour_weight": check_float(self.neighbour_weight, "neighbour_weight",
                                                lo=0.0, hi=1.0),
                "sampled_labels": None if self.sampled_labels is None else
                check_int(self.sampled_labels, "sampled_labels", lo=0),
                "device": device, "seed": check_int(self.seed, "seed", lo=0),
                "num_threads": check_threads(self.num_threads),
                "progress": check_bool(self.progress, "progress"),
                "eval_batch_size": check_int(self.eval_batch_size, "eval_batch_size", lo=1)}

    # ------------------------------------------------------------------ fit
    def fit(self, X, Y, *, X_valid=None, Y_valid=None) -> Classifier:
        """Fit the label embedding on ``Y``, build the network and train it on ``(X, Y)``.

        Parameters
        ----------
        X : array (n, F), scipy sparse matrix (n, F), or sequence of n str (``text=True``)
            The inputs, one row per sample; float64 is converted to float32. With a
            custom ``backbone``, also arrays of more dimensions (images: (n, C, H, W)).
        Y : scipy sparse (n, L), 0/1 array, list of label-id lists, or list of label-name
            lists
            The label sets. Names build the vocabulary (``classes_``, sorted). A 1-D
            array of ids or names gives each sample one label.
        X_valid, Y_valid : same forms, optional
            Evaluated after every epoch (MAP@100); the best epoch's weights are kept, and
            ``patience`` stops training early.

        Returns
        -------
        self
        """
        s = self._settings()
        if Y is None:
            raise ValueError("Classifier requires y to be passed, but the target y is None "
                             "(fit(X, Y) needs the label sets)")
        if (X_valid is None) != (Y_valid is None):
            raise ValueError("give both X_valid and Y_valid, or neither")
        self._reset()
        text_features = None
        if s["text"]:
            text_features = TextFeatures().fit(texts(X, "X"))
        X = features(X, "X", text_features, images=self.backbone is not None)
        if sp.issparse(X) and self.backbone is None and not s["hidden"]:
            raise ValueError("hidden=() with sparse inputs: give at least one hidden width "
                             "(the sparse first layer), e.g. hidden=(1024,)")
        n = X.shape[0]
        Y, names = as_label_csr(label_sets(Y), "Y", n_samples=n)
        L = Y.shape[1]
        if L < 2:
            raise ValueError(f"Y has {L} label(s); a multi-label model needs at least 2")
        if Y.nnz == 0:
            raise ValueError("Y has no labels at all; every sample's label set is empty")
        if self.recipe is None:  # the default recipe depends on the size of the label set
            s["recipe"] = default_recipe(L, bool(sp.issparse(X)))
        if s["sampled_labels"] and s["recipe"] != "lowrank-softmax":
            raise ValueError(f"sampled_labels applies to recipe 'lowrank-softmax', not "
                             f"{s['recipe']!r}: set recipe='lowrank-softmax' or leave it None")
        valid = None
        if X_valid is not None:
            Xv = features(X_valid, "X_valid", text_features, images=self.backbone is not None)
            check_width(Xv, X.shape[1:], "X_valid")
            Yv, _ = as_label_csr(label_sets(Y_valid), "Y_valid", n_labels=L, label_names=names,
                                 n_samples=Xv.shape[0], build_vocabulary=False)
            valid = (Xv, Yv)

        with threads(s["num_threads"]):
            dim = default_dim(L) if s["dim"] is None else s["dim"]
            emb = fit_embeddings(Y, dim=min(dim, L - 1), seed=s["seed"],
                                 num_threads=s["num_threads"], progress=s["progress"])
            if names is not None:
                emb.label_names = list(names)
            model, architecture = self._build(s, emb, X)
            # The recipe's rate and schedule for this backbone's input kind.
            lr, schedule = RECIPES[s["recipe"]].settings(first_sparse_layer(model) is not None)
            s["lr"] = lr if s["lr"] is None else s["lr"]
            s["schedule"] = schedule if s["schedule"] is None else s["schedule"]
            sampled = (_recipes.default_sampled_labels(L, s["recipe"])  # by the label count
                       if s["sampled_labels"] is None else s["sampled_labels"] or None)
            key = f"map@{min(100, L)}"
            keeper = BestEpoch(key, s["patience"])
            history = torch_fit(model, (X, Y), emb, valid=valid, epochs=s["epochs"],
                                lr=s["lr"], batch_size=s["batch_size"],
                                weight_decay=s["weight_decay"], schedule=s["schedule"],
                                device=s["device"], sampled_labels=sampled,
                                seed=s["seed"], progress=s["progress"],
                                callbacks=[keeper] if valid is not None else ())
            best = len(history)
            if valid is not None and keeper.state is not None:
                model.load_state_dict(keeper.state)
                best = keeper.epoch
            votes = None
            if s["neighbours"] and RECIPES[s["recipe"]].decode == "logits":
                votes = NeighbourVotes.from_model(
                    model, X, Y, k=min(s["neighbours"], n), weight=s["neighbour_weight"],
                    batch_size=s["eval_batch_size"], device=s["device"])
        model.eval()
        self.neighbours_ = votes
        self.model_ = model
        self.label_embedding_ = emb
        self.history_ = history
        self.best_epoch_ = int(best)
        self.n_features_in_ = int(X.shape[1])
        self._input_shape = tuple(int(v) for v in X.shape[1:])
        self.classes_ = np.array(names, dtype=str) if names is not None else np.arange(L)
        self._architecture = architecture
        self._text = text_features
        return self

    def _build(self, s: dict, emb: LabelEmbedding, inputs):
        n_features = int(inputs.shape[1])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s["seed"])
            if self.backbone is None:
                # sparse rows (TF-IDF, bags of features) meet a SparseLinear, never densified
                arch = mlp_architecture(n_features, s["hidden"], s["dropout"],
                                        sparse=sp.issparse(inputs))
                model = build_model(dict(arch, recipe=s["recipe"], n_labels=emb.n_labels), emb)
            else:
                net = copy.deepcopy(self.backbone) if isinstance(self.backbone, nn.Module) \
                    else self.backbone(n_features)
                if not isinstance(net, nn.Module):
                    raise TypeError(f"backbone(n_features) must return an nn.Module, got "
                                    f"{type(net).__name__}")
                arch = {"backbone": "custom", "class": f"{type(net).__module__}."
                        f"{type(net).__qualname__}", "out_features": out_width(net, inputs)}
                model = build_model(dict(arch, recipe=s["recipe"], n_labels=emb.n_labels),
                                    emb, net)
        return model, dict(arch, recipe=s["recipe"], n_labels=emb.n_labels)

    def _reset(self) -> None:
        for name in ("model_", "label_embedding_", "history_", "best_epoch_",
                     "n_features_in_", "classes_", "neighbours_"):
            self.__dict__.pop(name, None)
        self._cache = {}  # the decoder, built by the first predict

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if getattr(self, "model_", None) is None:
            raise _NotFitted(f"this {type(self).__name__} is not fitted yet; call fit(X, Y) "
                             "(or Classifier.load(path)) first")

    def predict_topk(self, X, k: Optional[int] = None):
        """The ``k`` best labels of each sample, by decreasing score.

        Parameters
        ----------
        X : array (n, F), scipy sparse (n, F), or n str (``text=True``)
        k : int, optional
            ``1 <= k <= L``; None: 5, or L for fewer labels.

        Returns
        -------
        indices : ndarray (n, k) int64
            Label ids (columns of ``classes_``).
        scores : ndarray (n, k) float32
            The model's scores: logits for the logit heads, ``p · E_l`` for the paper's.
        """
        self._check_fitted()
        L = len(self.classes_)
        if k is None:
            k = min(5, L)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"k must be an int, got {type(k).__name__}")
        if not 1 <= k <= L:
            raise ValueError(f"k must be in [1, {L}] (the number of labels), got {k}")
        X = self._inputs(X)
        return self._decode(X, int(k))

    def _inputs(self, X):
        X = features(X, "X", self._text, images=len(self._input_shape) > 1)
        check_width(X, self._input_shape, "X")
        return X

    def _decode(self, X, k: int):
        s = self._settings()
        dev = s["device"]
        n = X.shape[0]
        out_i = np.empty((n, k), np.int64)
        out_s = np.empty((n, k), np.float32)
        step = s["eval_batch_size"]
        if getattr(self, "neighbours_", None) is not None:
            step = fused_batch_size(step, len(self.classes_))
        votes = getattr(self, "neighbours_", None)
        with threads(s["num_threads"]), torch.no_grad():
            decoder = self._get_decoder(dev, s["num_threads"])
            sparse_layer = first_sparse_layer(self.model_) is not None
            for a in range(0, n, step):
                x = batch_tensor(X, a, min(n, a + step), dev, sparse_layer)
                if votes is None:
                    idx, sc = decoder(x, int(k))
                else:
                    idx, sc = (t.cpu().numpy() for t in fused_topk(self.model_, votes, x, k))
                out_i[a:a + len(idx)] = idx
                out_s[a:a + len(idx)] = sc
        return out_i, out_s

    def predict(self, X, k: Optional[int] = None) -> np.ndarray:
        """The ``k`` best labels of each sample: an (n, k) array of label names (str), or
        of ids (int64) when the model was trained on ids. ``k`` as for
        :meth:`predict_topk` (None: 5, or L for fewer labels)."""
        idx, _ = self.predict_topk(X, k)
        return self.classes_[idx]

    def score(self, X, Y, *, ks: Sequence[int] = (1, 3, 5), map_k: int = 100,
              metric: Optional[str] = None):
        """Ranking metrics of the predictions against the true label sets ``Y``.

        Parameters
        ----------
        X : inputs, as for :meth:`predict`
        Y : label sets in the model's label space (names from ``classes_``, or ids)
        ks : ranks of precision, recall, nDCG, MAP (clipped to L)
        map_k : int, default 100
            Also report ``map@{map_k}`` (the paper's MAP@100).
        metric : str, optional
            Return only this entry of the report (for example ``"map@100"``) as a float,
            as scikit-learn's model selection expects of ``score``.

        Returns
        -------
        dict or float
            :func:`labelemb.metrics.report` (samples without labels are left out).
        """
        self._check_fitted()
        L = len(self.classes_)
        names = self.label_embedding_.label_names
        X = self._inputs(X)
        n = X.shape[0]
        truth, _ = as_label_csr(label_sets(Y), "Y", n_labels=L, label_names=names, n_samples=n,
                                build_vocabulary=False)
        ks = sorted({min(check_int(k, "ks", lo=1), L) for k in ks} |
                    {min(check_int(map_k, "map_k", lo=1), L)})
        idx, _ = self._decode(X, max(ks))
        report = metrics.report(idx, truth, ks=ks, n_labels=L)
        if metric is None:
            return report
        if metric not in report:
            raise ValueError(f"metric must be one of {sorted(report)}, got {metric!r}")
        return report[metric]

    # ------------------------------------------------------------------ decoding
    def _get_decoder(self, dev: torch.device, num_threads: int) -> ExactDecoder:
        decoder = self._cache.get("decoder")
        if decoder is None or decoder.device != dev:
            self.model_.to(dev).eval()
            decoder = self._cache["decoder"] = ExactDecoder(self.model_,
                                                            self.label_embedding_, dev,
                                                            num_threads)
        decoder.num_threads = num_threads
        return decoder

    # ------------------------------------------------------------------ files
    def save(self, path) -> None:
        """Write the fitted model to one file (see :mod:`labelemb.torch.model_file`).

        The file holds the settings, the label names, the label embedding, the weights,
        the architecture of the default MLP and the text vectoriser (``text=True``);
        it is written atomically and read back without unpickling.
        """
        self._check_fitted()
        params = {k: v for k, v in self.get_params().items() if k != "backbone"}
        params["hidden"] = list(params["hidden"]) if isinstance(params["hidden"], (list, tuple)) \
            else params["hidden"]
        arrays, neighbours = {}, None
        if self._text is not None:
            arrays = {"text.terms": self._text.terms, "text.idf": self._text.idf}
        votes = getattr(self, "neighbours_", None)
        if votes is not None:
            kept, neighbours = votes.arrays()
            arrays.update({f"neighbours.{a}": v for a, v in kept.items()})
        write_model(path, self.model_.cpu(), self.label_embedding_,
                    architecture=self._architecture, settings=params,
                    history=self.history_.epochs,
                    extra={"best_epoch": self.best_epoch_, "n_features": self.n_features_in_,
                           "input_shape": list(self._input_shape),
                           "label_kind": "ids" if self.label_embedding_.label_names is None
                           else "names", "neighbours": neighbours},
                    arrays=arrays)
        self._cache.clear()  # the model moved to the CPU

    @classmethod
    def load(cls, path, backbone: Union[None, nn.Module, Callable[[], nn.Module]] = None
             ) -> Classifier:
        """Read a model written by :meth:`save` (or ``labelemb fit-model``).

        Parameters
        ----------
        path : str or os.PathLike
        backbone : nn.Module or callable returning one, optional
            Required when the model was trained with a custom backbone: a module of the
            same architecture, whose weights are replaced by the saved ones.

        Raises
        ------
        FileNotFoundError, ValueError
            No such file; a truncated, corrupt or newer file (the message names it).
        """
        from .torch import History

        f = read_model(path, backbone)
        settings = dict(f.settings)
        params = cls._get_param_names()
        clf = cls(**{k: v for k, v in settings.items() if k in params and k != "backbone"})
        if isinstance(clf.hidden, list):
            clf.hidden = tuple(clf.hidden)
        clf.model_ = f.model
        clf.label_embedding_ = f.embedding
        clf.history_ = History(f.history, f.architecture.get("recipe"))
        clf.best_epoch_ = int(f.extra.get("best_epoch", len(f.history)))
        clf.n_features_in_ = int(f.extra["n_features"])
        clf._input_shape = tuple(f.extra.get("input_shape", [clf.n_features_in_]))
        names = f.embedding.label_names
        clf.classes_ = np.array(names, dtype=str) if names is not None \
            else np.arange(f.embedding.n_labels)
        clf._architecture = f.architecture
        clf._text = None
        if "text.terms" in f.arrays:
            clf._text = TextFeatures(terms=f.arrays["text.terms"], idf=f.arrays["text.idf"])
        clf.neighbours_ = _load_votes(f, path)
        clf._cache = {}
        return clf

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = {}  # the decoder is rebuilt by the next predict
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = True
        tags.input_tags.string = bool(self.text)
        tags.non_deterministic = False
        return tags


def _load_votes(f, path) -> Optional[NeighbourVotes]:
    """The neighbour votes saved with a model file (None when it has none)."""
    meta = f.extra.get("neighbours")
    if not meta:
        return None
    kept = {k[len("neighbours."):]: v for k, v in f.arrays.items()
            if k.startswith("neighbours.")}
    return NeighbourVotes.from_arrays(kept, meta, str(path))
