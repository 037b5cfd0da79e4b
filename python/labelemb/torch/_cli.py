"""The work behind ``labelemb train`` and ``labelemb evaluate`` (see labelemb.cli).

Imported only when one of those subcommands runs, so ``labelemb --help`` and the other
subcommands never import torch.

A trained model is saved as one ``torch.save`` file, read back with
``weights_only=True`` (no pickled code): the architecture (an MLP backbone and the head),
the weights, the label vectors (embedding objective), the label names and the history.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import List, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

import labelemb
from labelemb._io import atomic_write

from .._recipes import (
    ALIASES,
    RECIPES,
    default_dim,
    default_recipe,
    default_sampled_labels,
    deprecation_message,
)
from .._validation import check_float, check_int
from .device import resolve_device
from .heads import find_head, make_model, mlp
from .inference import evaluate, predict
from .neighbours import NeighbourVotes
from .train import fit

MODEL_FORMAT = "labelemb-model"
MODEL_VERSION = 1


# ---------------------------------------------------------------- files
def read_features(path: str):
    """Features from ``.npy`` (n x F) or ``.npz`` (its single array, or ``features`` /
    ``X``), dense; a scipy sparse ``.npz`` or an Extreme Classification Repository text
    file (any other name) stays a sparse CSR matrix."""
    if not os.path.isfile(path):
        raise ValueError(f"no such features file: {path!r}")
    from .._npz import load_sparse, members, read_npy, read_npz

    if not path.endswith((".npy", ".npz")):
        from ..formats import read_xc

        return read_xc(path)[0]
    if path.endswith(".npy"):
        x = read_npy(path, "a features array")
    elif path.endswith(".npz"):
        files = members(path, "a features file")
        if "format" in files and "indptr" in files:  # scipy.sparse.save_npz
            x = load_sparse(path, "a sparse features matrix")
            if x.dtype.kind not in "biuf":
                raise ValueError(f"{path}: features must be numbers, got dtype {x.dtype}")
            return x.tocsr()
        else:
            keys = [k for k in ("features", "X") if k in files] or files
            if len(keys) != 1:
                raise ValueError(f"{path} holds arrays {files}; name the features "
                                 "'features' (np.savez(path, features=X))")
            x = read_npz(path, "a features file", keys)[keys[0]]
    else:
        raise ValueError(f"features file {path!r} must end in .npy or .npz")
    if x.ndim < 2:
        raise ValueError(f"{path}: features must have one row per sample (2-D or more), got "
                         f"shape {x.shape}")
    if x.dtype.kind in "biu":  # counts or 0/1 indicators: the model computes in float
        x = x.astype(np.float32)
    elif x.dtype.kind != "f":
        raise ValueError(f"{path}: features must be numbers, got dtype {x.dtype}")
    return x


def read_data(features: str, labels: str, delimiter: str, ids: Optional[bool] = None):
    """``(X, Y, label names)``: :func:`read_features` and :func:`read_labels`, except that
    LABELS naming the same Extreme Classification Repository file as FEATURES takes the
    label ids from it."""
    if not features.endswith((".npy", ".npz")) and os.path.isfile(features) and \
            os.path.isfile(labels) and os.path.samefile(features, labels):
        from ..formats import read_xc

        X, Y = read_xc(features)
        return X, Y, None
    return (read_features(features), *read_labels(labels, delimiter, ids))


def read_labels(path: str, delimiter: str, ids: Optional[bool] = None
                ) -> Tuple[sp.csr_matrix, Optional[List[str]]]:
    """Labels from a CSR ``.npz`` (``scipy.sparse.save_npz``; ids are the columns) or a
    label-list text file (one sample per line)."""
    if not os.path.isfile(path):
        raise ValueError(f"no such labels file: {path!r}")
    if path.endswith(".npz"):
        from .._npz import load_sparse

        return load_sparse(path, "a scipy sparse label matrix"), None
    from ..formats import read_label_list

    return read_label_list(path, delimiter=delimiter, ids=ids)


def to_vocabulary(Y: sp.csr_matrix, names: Optional[List[str]], vocab: Optional[List[str]],
                  n_labels: int, what: str) -> sp.csr_matrix:
    """Columns of ``Y`` (named ``names``, or ids) re-indexed into the model's label space."""
    if names is None:
        if Y.shape[1] > n_labels:
            raise ValueError(f"{what} has label ids up to {Y.shape[1] - 1} but the model has "
                             f"{n_labels} labels")
        if Y.shape[1] < n_labels:
            Y = sp.csr_matrix((Y.data, Y.indices, Y.indptr), shape=(Y.shape[0], n_labels))
        return Y
    if vocab is None:
        raise ValueError(f"{what} holds label names but the model uses integer ids")
    index = {name: i for i, name in enumerate(vocab)}
    cols = np.array([index.get(n, -1) for n in names], dtype=np.int64)
    if (cols < 0).any():
        unknown = [n for n, c in zip(names, cols) if c < 0][:5]
        raise ValueError(f"{what} has {int((cols < 0).sum())} label(s) the model does not "
                         f"know, e.g. {unknown}")
    Y = sp.csr_matrix((Y.data, cols[Y.indices], Y.indptr), shape=(Y.shape[0], n_labels))
    Y.sort_indices()
    return Y


def _hidden(text: str) -> List[int]:
    try:
        sizes = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--hidden takes widths separated by commas, e.g. 512,512; got "
                         f"{text!r}") from None
    if any(s < 1 for s in sizes):
        raise ValueError(f"--hidden widths must be positive, got {text!r}")
    return sizes


def _build(config: dict, vectors: Optional[np.ndarray]):
    # sparse features (a SparseLinear first layer) since format version 1 too: absent = dense
    backbone = mlp(config["in_features"], config["hidden"], dropout=config["dropout"],
                   sparse=bool(config.get("sparse", False)))
    width = config["hidden"][-1] if config["hidden"] else config["in_features"]
    return make_model(backbone, width, config["head"], embedding=vectors,
                      n_labels=config["n_labels"])


def save_model(path: str, model, config: dict, vectors, label_names, history,
               votes: Optional[NeighbourVotes] = None) -> None:
    state = {"format": MODEL_FORMAT, "format_version": MODEL_VERSION, "config": config,
             "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "vectors": torch.from_numpy(vectors) if vectors is not None else None,
             "label_names": list(label_names) if label_names is not None else None,
             "history": history.epochs}
    if votes is not None:  # the training points and label sets, and the fusion's settings
        kept, meta = votes.arrays()
        state["neighbours"] = dict(meta, **{a: torch.from_numpy(v) for a, v in kept.items()})
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with atomic_write(path) as f:
        torch.save(state, f)


def load_model(path: str):
    """(model, config, vectors, label_names) from a file written by ``labelemb train``."""
    return _model_of(_read_state(path))


def _read_state(path: str) -> dict:
    if not os.path.isfile(path):
        raise ValueError(f"no such model file: {path!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a foreign or corrupt file: say so, whatever torch raised
        raise ValueError(f"{path}: cannot read a labelemb model ({type(e).__name__}: {e})"
                         ) from None
    if not isinstance(state, dict) or state.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a model saved by 'labelemb train'")
    if state.get("format_version", 0) > MODEL_VERSION:
        raise ValueError(f"{path} was written by a newer labelemb; upgrade labelemb")
    return state


def _model_of(state: dict):
    vectors = state["vectors"].numpy() if state["vectors"] is not None else None
    model = _build(state["config"], vectors)
    model.load_state_dict(state["state_dict"])
    head = find_head(model)
    if hasattr(head, "prior_initialized"):
        head.prior_initialized = True
    return model, state["config"], vectors, state["label_names"]


def _votes_of(state: dict, path: str) -> Optional[NeighbourVotes]:
    """The neighbour votes kept in the file (None when it has none)."""
    meta = state.get("neighbours")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the neighbour votes are damaged (not a mapping)")
    kept = {a: v.numpy() if isinstance(v, torch.Tensor) else v for a, v in meta.items()}
    return NeighbourVotes.from_arrays(kept, kept, path)


# ---------------------------------------------------------------- commands
def train_command(args) -> int:
    # Cheap checks first: a typo must not cost an embedding fit.
    resolve_device(args.device)
    check_int(args.epochs, "--epochs", lo=1)
    check_int(args.batch_size, "--batch-size", lo=1)
    if args.lr is not None:
        check_float(args.lr, "--lr", lo=0.0, lo_open=True)
    check_float(args.weight_decay, "--weight-decay", lo=0.0)
    check_float(args.dropout, "--dropout", lo=0.0, hi=1.0, hi_open=True)
    check_int(args.neighbours, "--neighbours", lo=0)
    if args.sampled_labels is not None:
        check_int(args.sampled_labels, "--sampled-labels", lo=0)
    if args.dim is not None:
        check_int(args.dim, "--dim", lo=1)
    _hidden(args.hidden)
    X, Y, names = read_data(args.features, args.labels, args.delimiter)
    if X.ndim != 2:
        raise ValueError(f"{args.features}: the command's MLP takes 2-D features (n x F), "
                         f"got shape {X.shape}; for images, call labelemb.torch.fit with "
                         "your own model")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"{args.features} has {X.shape[0]} rows but {args.labels} has "
                         f"{Y.shape[0]} label sets; they must describe the same samples")
    emb = None
    if args.embedding is not None:
        from ..embedding import LabelEmbedding

        emb = LabelEmbedding.load(args.embedding)
        vocab = emb.label_names
        if names is None and vocab is not None:
            raise ValueError(f"{args.labels} holds integer ids but {args.embedding} has label "
                             "names; give the labels by name")
        Y = to_vocabulary(Y, names, vocab, emb.n_labels, args.labels)
        names = vocab
    n = X.shape[0]
    if args.valid_features or args.valid_labels:
        if not (args.valid_features and args.valid_labels):
            raise ValueError("give both --valid-features and --valid-labels")
        Xv, Yv, vnames = read_data(args.valid_features, args.valid_labels, args.delimiter,
                                   ids=None if names is None else False)
        Yv = to_vocabulary(Yv, vnames, names, Y.shape[1], args.valid_labels)
        train, valid = (X, Y), (Xv, Yv)
    elif args.valid_fraction > 0:
        if not 0 < args.valid_fraction < 1:
            raise ValueError(f"--valid-fraction must be in [0, 1), got {args.valid_fraction}")
        order = np.random.default_rng(args.seed).permutation(n)
        n_valid = max(1, int(round(n * args.valid_fraction)))
        if n_valid >= n:
            raise ValueError(f"--valid-fraction {args.valid_fraction} leaves no training "
                             f"sample out of {n}")
        v, t = np.sort(order[:n_valid]), np.sort(order[n_valid:])
        train, valid = (X[t], Y[t]), (X[v], Y[v])
    else:
        train, valid = (X, Y), None
    if args.objective is None:  # the default depends on the size of the label set
        args.objective = default_recipe(int(Y.shape[1]), bool(sp.issparse(X)))
    if args.objective in ALIASES:
        print(f"labelemb: {deprecation_message(args.objective, '--objective')}",
              file=sys.stderr)
    head = ALIASES.get(args.objective, args.objective)
    recipe = RECIPES[head]
    sampled = args.sampled_labels or None  # 0: every label
    if args.sampled_labels is None:  # the default depends on the size of the label set
        sampled = default_sampled_labels(int(Y.shape[1]), head)
    elif sampled is not None and head != "lowrank-softmax":
        raise ValueError(f"--sampled-labels trains a lowrank-softmax model, not {head!r}: "
                         "add --objective lowrank-softmax or leave --sampled-labels out")
    lr, schedule = recipe.settings(sparse=bool(sp.issparse(X)))  # the MLP's first layer
    lr = lr if args.lr is None else args.lr
    schedule = schedule if args.schedule is None else args.schedule
    full = RECIPES[head].head == "logit"  # one output per label, no embedding needed
    # Under torchrun every process runs this; only rank 0 talks and writes the model.
    main_rank = int(os.environ.get("RANK", "0")) == 0
    quiet = args.quiet or not main_rank
    if not full and emb is None:
        say = print if not quiet else (lambda *a, **k: None)
        L = int(Y.shape[1])  # the default is clipped for small label sets, as Classifier's
        dim = min(default_dim(L), max(1, L - 1)) if args.dim is None else args.dim
        say(f"fitting a {dim}-dimensional label embedding on the {train[1].shape[0]} "
            "training label sets ...")
        emb = labelemb.fit_embeddings(train[1], dim=dim, seed=args.seed,
                                      progress=not (args.no_progress or quiet))
        if names is not None:
            emb.label_names = list(names)
    vectors = emb.vectors if (emb is not None and not full) else None
    config = {"in_features": int(X.shape[1]), "hidden": _hidden(args.hidden),
              "dropout": float(args.dropout), "head": head, "n_labels": int(Y.shape[1]),
              "objective": args.objective, "sparse": bool(sp.issparse(X))}
    torch.manual_seed(args.seed)
    model = _build(config, vectors)
    history = fit(model, train, emb if not full else None, valid=valid,
                  epochs=args.epochs, lr=lr, batch_size=args.batch_size,
                  optimizer=args.optimizer, weight_decay=args.weight_decay,
                  schedule=schedule, device=args.device, seed=args.seed,
                  progress=not args.no_progress, checkpoint_dir=args.checkpoint_dir,
                  resume=args.resume, log_path=args.log, sampled_labels=sampled)
    try:
        if main_rank:
            votes = None
            if args.neighbours and recipe.decode == "logits":
                votes = NeighbourVotes.from_model(model, train[0], train[1],
                                                  k=min(args.neighbours, train[1].shape[0]))
            save_model(args.output, model.cpu(), config, vectors, names, history, votes)
            if not quiet:
                last = history.epochs[-1] if history.epochs else {}
                shown = {k: round(v, 4) for k, v in last.items()
                         if k in ("loss", "p@1", "p@5", "ndcg@5", "map@100")}
                print(f"trained {args.objective} model for {len(history)} epochs "
                      f"({sum(history['train_time']):.1f} s): {shown}")
                if votes is not None:
                    print(f"kept the points of {votes.keys.shape[0]} training samples for "
                          f"neighbour votes (k = {votes.k})")
                print(f"saved to {args.output}")
    finally:
        _leave_process_group()
    return 0


def _leave_process_group() -> None:
    """Under torchrun: wait for every rank (rank 0 may still be writing), then tear the
    process group down, so no rank exits with its communication threads still running
    (gloo aborts the process then).

    A gloo barrier can return on one rank while its last message to another is still on
    the way; a rank that closes its connections then makes the other fail inside the
    barrier. So no rank tears down before every rank's barrier has returned, which the
    ranks tell each other through the rendezvous store; rank 0, which may host that
    store, leaves last."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    store, world = _default_store(), dist.get_world_size()
    if store is not None:
        _count_in(store, "labelemb/left", world)  # every barrier has returned
        # the others stop using the store once they have counted in; rank 0 waits for it
        _count_in(store, "labelemb/done", world if dist.get_rank() == 0 else 0)
    dist.destroy_process_group()


def _count_in(store, key: str, wait_for: int, timeout: float = 60.0) -> None:
    """Add one to the store's counter ``key`` and wait (up to ``timeout`` seconds) until
    it reaches ``wait_for``."""
    try:
        seen = store.add(key, 1)
        deadline = time.monotonic() + timeout
        while seen < wait_for and time.monotonic() < deadline:
            time.sleep(0.02)
            seen = store.add(key, 0)
    except Exception:  # the store's host has left: nobody is waiting any more
        return


def _default_store():
    """The default process group's rendezvous store (None if this torch hides it)."""
    try:
        from torch.distributed.distributed_c10d import _get_default_store
        return _get_default_store()
    except Exception:  # pragma: no cover - depends on the torch build
        return None


def evaluate_command(args) -> int:
    resolve_device(args.device)
    state = _read_state(args.model)
    model, config, vectors, vocab = _model_of(state)
    votes = None if args.no_neighbours else _votes_of(state, args.model)
    X, Y, names = read_data(args.features, args.labels, args.delimiter,
                            ids=None if vocab is None else False)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"{args.features} has {X.shape[0]} rows but {args.labels} has "
                         f"{Y.shape[0]} label sets")
    if X.ndim != 2 or X.shape[1] != config["in_features"]:
        raise ValueError(f"{args.features} has shape {X.shape} but the model takes "
                         f"{config['in_features']} features per sample")
    Y = to_vocabulary(Y, names, vocab, config["n_labels"], args.labels)
    try:
        ks = sorted({int(k) for k in args.k.split(",") if k.strip()}) or [1, 3, 5]
    except ValueError:
        raise ValueError(f"-k takes ranks separated by commas, e.g. 1,3,5; got {args.k!r}"
                         ) from None
    dev = resolve_device(args.device)
    report = evaluate(model, (X, Y), vectors, ks=ks, map_k=args.map_k, device=dev,
                      batch_size=args.batch_size, neighbours=votes)
    if args.predictions:
        idx, scores = predict(model, X, vectors, k=min(args.top, config["n_labels"]),
                              device=dev, batch_size=args.batch_size, neighbours=votes)
        lines = []
        for row in idx:
            labs = [vocab[i] if vocab is not None else str(i) for i in row]
            lines.append((args.delimiter or ",").join(labs))
        with atomic_write(args.predictions, "w") as f:
            f.write("\n".join(lines) + "\n")
    if args.json:
        json.dump(report, sys.stdout)
        print()
    else:
        print(f"{args.model}: {config['objective']} model"
              f"{' with neighbour votes' if votes is not None else ''}, "
              f"{config['n_labels']} labels; {report['n_samples']} samples with labels")
        for key, v in report.items():
            if key != "n_samples":
                print(f"  {key:<14s} {v:.4f}")
        if args.predictions:
            print(f"top-{args.top} predictions written to {args.predictions}")
    return 0
