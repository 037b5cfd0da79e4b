"""``labelemb demo``: the method on a large real label set, against the baseline and the peers.

The default data set is WordNet 3.0's nouns, embedded in the package: each noun synset is
a sample whose text is its lemmas and gloss, and whose labels are all its hypernym
ancestors (about 4,900 labels once the near-root ones are dropped). The demo

1. loads it offline with TF-IDF features fitted on the training split;
2. fits the label embedding on the training label sets and prints the nearest labels of a
   few well-known ones (``dog.n.01 -> canine.n.02, domestic_animal.n.01, ...``);
3. trains one sparse MLP per recipe (make_model's default, ``bce`` and ``paper``) for the
   same epochs, with a validation pass after each epoch, and keeps the weights of the
   epoch with the best validation MAP@100;
4. fits the extreme-classification peers that are installed (:mod:`labelemb.peers`:
   PECOS XR-Linear, Omikuji, napkinXC, popularity) on the same rows and features;
5. prints one table (test P@1, P@5, nDCG@5, MAP@100, PSP@5, training seconds, seconds to
   reach the others' best validation MAP@100) and a few test samples with their
   predicted and true labels; writes ``report.json`` and ``curves.png`` (validation
   curves against epochs and against cumulative training time).

The size of the run (training rows, hidden width, embedding dimension, batch, epochs) is
:data:`BUDGETS`, chosen by measurement so that the whole run takes under 3 minutes on 2
CPU cores; every part of it can be changed from the command line. ``--data openclipart``
runs the image demo (:mod:`labelemb.demo_images`); ``--data debtags`` and ``--data
debian-deps`` the Debian text sets, which need the machine's apt indexes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ._io import atomic_write
from ._recipes import RECIPES
from ._validation import check_choice, check_int
from .demo_images import run_image_demo, shift_flip, small_cnn
from .demo_report import (
    TARGET,
    format_samples,
    format_table,
    json_default,
    load_average,
    machine_info,
    pick_samples,
    plot_curves,
    rank_metrics,
    time_to_reach,
    torch_threads,
)

__all__ = ["BUDGETS", "DATA_SETS", "Budget", "default_recipe", "load_text_data", "run_demo",
           "run_text_demo", "shift_flip", "small_cnn"]

DATA_SETS = ("wordnet", "openclipart", "debtags", "debian-deps")
TEXT_DATA = ("wordnet", "debtags", "debian-deps")
#: Peers tried by default: one per package, and the popularity floor.
DEFAULT_PEERS = ("pecos-b10", "omikuji-parabel", "napkinxc-plt", "popularity")
PEER_TITLES = {"pecos-b10": "PECOS XR-Linear (beam 10)", "pecos-b50": "PECOS XR-Linear (beam 50)",
               "omikuji-parabel": "Omikuji Parabel", "omikuji-bonsai": "Omikuji Bonsai",
               "napkinxc-plt": "napkinXC PLT", "knn": "TF-IDF cosine 10-NN",
               "popularity": "the most frequent training labels"}
REPORT_FORMAT = "labelemb-demo-report"
REPORT_VERSION = 2


@dataclass(frozen=True)
class Budget:
    """The size of a text demo run.

    Attributes
    ----------
    train_rows : int or None
        Training samples used, drawn at random (None: all). Every method, the label
        embedding included, sees the same rows.
    valid_rows, test_rows : int or None
        Validation samples scored after every epoch; test samples in the table.
    hidden : int
        Width of the MLP's one hidden layer (its first layer is sparse).
    dim : int
        Label embedding dimension.
    batch_size : int
    epochs : int
        The same for every recipe.
    """

    train_rows: Optional[int]
    valid_rows: Optional[int]
    test_rows: Optional[int]
    hidden: int
    dim: int
    batch_size: int
    epochs: int

    def describe(self, n_train: int, n_valid: int, n_test: int) -> str:
        return (f"{n_train:,} training rows, {n_valid:,} validation and {n_test:,} test rows; "
                f"MLP hidden width {self.hidden}, embedding dim {self.dim}, batch "
                f"{self.batch_size}, {self.epochs} epoch{'s' if self.epochs != 1 else ''}")


#: Measured on the embedded WordNet set (2 CPU cores): the whole default run in under
#: 3 minutes, progress bars included (see the module's docstring).
BUDGETS: Dict[str, Budget] = {
    name: Budget(train_rows=40_000, valid_rows=3_000, test_rows=8_000, hidden=256, dim=128,
                 batch_size=128, epochs=6)
    for name in TEXT_DATA
}
#: Labels whose neighbours are shown when present (else the most frequent ones).
PROBES = {
    "wordnet": ("dog.n.01", "tree.n.01", "car.n.01", "musical_instrument.n.01",
                "disease.n.01"),
    "debtags": ("implemented-in::python", "use::editing", "works-with::image",
                "game::strategy"),
    "debian-deps": ("python3", "libqt5core5a", "perl", "libgtk-3-0"),
}
#: Test samples shown when present (else drawn at random).
SAMPLES = {"wordnet": ("guitar.n.01", "malaria.n.01", "cactus.n.01")}
N_PROBES, N_NEIGHBORS, N_SAMPLES = 5, 5, 3


def default_recipe(embedding, n_labels: int, sparse: bool = False) -> str:
    """The recipe :func:`labelemb.torch.make_model` builds when none is named, for this
    label embedding and label count, over a backbone for sparse rows (``sparse``, as the
    text demos train) or dense ones: asked of make_model itself at run time."""
    from torch import nn

    from .torch import find_head, make_model, mlp

    backbone = mlp(4, (4,), sparse=True) if sparse else nn.Identity()
    return find_head(make_model(backbone, 4, embedding=embedding,
                                n_labels=n_labels)).recipe


def load_text_data(data: str, *, echo: Callable = print):
    """The :class:`~labelemb.datasets.TextDataset` of a text demo.

    ``"wordnet"``: the embedded copy, labels on at least 5 training samples and on at most
    30% of them (the five near-root labels would make P@1 trivial). ``"debtags"`` and
    ``"debian-deps"`` read the machine's apt indexes (cached after the first run); without
    them a one-line ``OSError`` says what is missing.
    """
    from . import datasets

    check_choice(data, "data", TEXT_DATA)
    if data == "wordnet":
        return datasets.load_wordnet(source="embedded", min_count=5, max_label_fraction=0.3)
    loader = {"debtags": datasets.load_debtags_xmc,
              "debian-deps": lambda: datasets.load_debian_deps(max_label_fraction=0.3)}[data]
    try:
        return loader()
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise OSError(f"--data {data} needs Debian's apt indexes on this machine (apt-get "
                      f"update must work; the data is cached after the first run): "
                      f"{first}") from None


# ----------------------------------------------------------------------------- helpers


def _subsample(n: int, limit: Optional[int], seed: int, keep: Sequence[int] = ()) -> np.ndarray:
    """``limit`` of ``range(n)`` drawn at random (all when None), ``keep`` among them."""
    if limit is None or limit >= n:
        return np.arange(n)
    keep = np.unique(np.asarray(keep, dtype=np.int64))[:limit]
    rest = np.setdiff1d(np.arange(n), keep)
    drawn = np.random.default_rng(seed).choice(rest, size=limit - len(keep), replace=False)
    return np.sort(np.concatenate([keep, drawn]))


class _VotedValidation:
    """A ``fit`` callback, before the best-epoch keeper: the epoch's validation MAP@100 with
    neighbour votes built from that epoch's network (what the default predicts with); the
    network's own figure is kept as ``map@100_network``, the votes' build time as
    ``votes_time``."""

    def __init__(self, train, valid, n_labels: int):
        self.train, self.valid, self.n_labels = train, valid, n_labels

    def __call__(self, history, model) -> bool:
        from . import metrics
        from .torch import predict
        from .torch.neighbours import NeighbourVotes

        rec = history.epochs[-1]
        t = time.perf_counter()
        votes = NeighbourVotes.from_model(model, *self.train)
        rec["votes_time"] = time.perf_counter() - t
        k = min(100, self.n_labels)
        idx, _ = predict(model, self.valid[0], k=k, neighbours=votes)
        rec["map@100_network"] = rec.get(TARGET)
        rec[TARGET] = metrics.report(idx, self.valid[1], ks=[k], n_labels=self.n_labels)[
            f"map@{k}"]
        model.train()
        return False


# ----------------------------------------------------------------------------- methods


def _train_recipe(recipe: str, emb, data: dict, budget: Budget, out_dir: str, *,
                  default: bool, device: str, seed: int, progress: bool) -> dict:
    import torch

    from ._classifier_parts import BestEpoch
    from .torch import fit, make_model, mlp, predict
    from .torch.neighbours import NeighbourVotes

    X, Y = data["train"]
    n_features, n_labels = X.shape[1], Y.shape[1]
    torch.manual_seed(seed)
    backbone = mlp(n_features, (budget.hidden,), sparse=True)
    if default:  # exactly what make_model builds when no recipe is named
        model = make_model(backbone, budget.hidden, embedding=emb, n_labels=n_labels)
    else:
        model = make_model(backbone, budget.hidden, recipe, embedding=emb, n_labels=n_labels)
    keep = BestEpoch(TARGET, None)  # copies the weights after the epoch is timed
    lr = RECIPES[recipe].settings(sparse=True)[0]  # its schedule: fit takes it too
    voted = default and RECIPES[recipe].decode == "logits"
    callbacks = ([_VotedValidation((X, Y), data["valid"], n_labels)] if voted else []) + [keep]
    h = fit(model, (X, Y), emb, valid=data["valid"], epochs=budget.epochs, lr=lr,
            batch_size=budget.batch_size, device=device, seed=seed, progress=progress,
            callbacks=callbacks, recipe=recipe,
            log_path=os.path.join(out_dir, f"train-{recipe}.jsonl"))
    if keep.state is None:  # no finite validation figure: the last epoch is kept
        keep.epoch = h.epochs[-1]["epoch"]
    else:
        model.load_state_dict(keep.state)
    votes = None
    if voted:  # the default predicts with neighbour votes, as labelemb.Classifier does
        votes = NeighbourVotes.from_model(model, X, Y)
    idx, _ = predict(model, data["test"][0], emb, k=min(100, n_labels), neighbours=votes)
    # The label vectors are part of training for the recipes that use them; an epoch's
    # predictor with votes also needs them built
    uses_vectors = RECIPES[recipe].head in ("embedding", "lowrank")
    offset = data["embedding_time"] if uses_vectors else 0.0
    epochs = [dict(e, elapsed=e["elapsed"] + offset + e.get("votes_time", 0.0))
              for e in h.epochs]
    chosen = next(e for e in epochs if e["epoch"] == keep.epoch)
    title = RECIPES[recipe].title + (" + neighbour votes" if votes is not None else "")
    return {"kind": "recipe", "title": title, "lr": lr,
            "train_time": epochs[-1]["elapsed"], "train_time_to_chosen": chosen["elapsed"],
            "embedding_time_included": offset, "chosen_epoch": keep.epoch,
            "neighbour_votes": voted,
            "valid": {k: chosen[k] for k in ("p@1", "p@5", "ndcg@5", "map@100")},
            "valid_curve": [(e["elapsed"], e[TARGET]) for e in epochs],
            "epochs": epochs, "indices": idx}


def _run_peer(name: str, data: dict, threads: int) -> dict:
    from . import peers

    X, Y = data["train"]
    peer = peers.make_peer(name, threads=threads)
    try:
        t = time.perf_counter()
        peer.fit(X, Y)
        train_time = time.perf_counter() - t
        K = min(100, Y.shape[1])
        v_idx, _ = peer.predict_topk(data["valid"][0], K)
        idx, _ = peer.predict_topk(data["test"][0], K)
    finally:
        peer.close()
    valid = rank_metrics(v_idx, data["valid"][1], data["label_counts"], Y.shape[0])
    valid.pop("psp@5")
    return {"kind": "peer", "title": PEER_TITLES.get(name, name), "train_time": train_time,
            "train_time_to_chosen": train_time, "chosen_epoch": None, "valid": valid,
            "valid_curve": [(train_time, valid[TARGET])], "epochs": [], "indices": idx}


# ----------------------------------------------------------------------------- report


def _shown(ids: Sequence[str], data: str) -> List[int]:
    """Rows of the test samples shown by name (those of :data:`SAMPLES` present)."""
    wanted = set(SAMPLES.get(data, ()))
    return [i for i, s in enumerate(ids) if s in wanted][:N_SAMPLES]


# ----------------------------------------------------------------------------- runs


def run_demo(out_dir: str = "labelemb-demo", *, data: str = "wordnet",
             epochs: Optional[int] = None, limit: Optional[int] = None,
             recipes: Optional[Sequence[str]] = None, peers: Optional[Sequence[str]] = None,
             dim: Optional[int] = None, hidden: Optional[int] = None,
             batch_size: Optional[int] = None, train_rows: Optional[int] = None,
             device: str = "auto", threads: int = 0, seed: int = 0, progress: bool = True,
             echo: Callable = print) -> dict:
    """Run the demo on ``data``; returns the report (also ``out_dir/report.json``).

    Parameters
    ----------
    out_dir : str
        Folder for ``report.json``, ``curves.png`` and the training logs.
    data : {"wordnet", "openclipart", "debtags", "debian-deps"}, default "wordnet"
        ``"openclipart"`` runs :func:`labelemb.demo_images.run_image_demo` (which takes
        ``epochs``, ``limit``, ``recipes``, ``dim``, ``device``, ``seed``).
    epochs, dim, hidden, batch_size, train_rows : int, optional
        Replace the parts of the data set's :data:`BUDGETS` entry.
    limit : int, optional
        At most this many training, validation and test samples (a quick look).
    recipes : sequence of str, optional
        Default: make_model's default recipe, then ``bce`` and ``paper``.
    peers : sequence of str, optional
        Names of :data:`labelemb.peers.PEERS`; default :data:`DEFAULT_PEERS` (those whose
        package imports); ``()`` for none.
    device, seed, progress, echo
        Where to train, the seed of every draw, tqdm bars, where to print.
    threads : int, default 0
        CPU threads of torch and of the peers (0: torch's default and every core).
    """
    check_choice(data, "data", DATA_SETS)
    threads = check_int(threads, "threads", lo=0)
    with _with_torch_threads(threads):
        return _run_demo(out_dir, data, epochs, limit, recipes, peers, dim, hidden, batch_size,
                         train_rows, device, threads, seed, progress, echo)


@contextlib.contextmanager
def _with_torch_threads(threads: int):
    """torch's thread count set to ``threads`` (0: left alone) for the block, then restored."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_demo(out_dir, data, epochs, limit, recipes, peers, dim, hidden, batch_size,
              train_rows, device, threads, seed, progress, echo) -> dict:
    if data == "openclipart":
        return run_image_demo(out_dir, epochs=8 if epochs is None else epochs, device=device,
                              limit=limit, recipes=recipes, dim=64 if dim is None else dim,
                              seed=seed, progress=progress, echo=echo)
    budget = BUDGETS[data]
    changes = {k: v for k, v in dict(epochs=epochs, dim=dim, hidden=hidden,
                                      batch_size=batch_size, train_rows=train_rows).items()
               if v is not None}
    for k, v in changes.items():
        check_int(v, k, lo=1)
    if limit is not None:
        limit = check_int(limit, "limit", lo=10)

        def cap(rows: Optional[int]) -> int:
            return limit if rows is None else min(rows, limit)

        changes.update(train_rows=cap(changes.get("train_rows", budget.train_rows)),
                       valid_rows=cap(budget.valid_rows), test_rows=cap(budget.test_rows))
    return run_text_demo(out_dir, data=data, budget=replace(budget, **changes),
                         recipes=recipes, peers=peers, device=device, threads=threads,
                         seed=seed, progress=progress, echo=echo)


def _check_names(recipes, peers) -> None:
    from .peers import PEERS

    for r in recipes or ():
        if r not in RECIPES:
            raise ValueError(f"unknown recipe {r!r}; choose from {', '.join(RECIPES)}")
    if recipes is not None and not recipes:
        raise ValueError("recipes is empty; name at least one recipe")
    for p in peers or ():
        if p not in PEERS:
            raise ValueError(f"unknown peer {p!r}; choose from {', '.join(PEERS)}")


def run_text_demo(out_dir: str = "labelemb-demo", *, data: str = "wordnet",
                  budget: Optional[Budget] = None, recipes: Optional[Sequence[str]] = None,
                  peers: Optional[Sequence[str]] = None, device: str = "auto",
                  threads: int = 0, seed: int = 0, progress: bool = True,
                  echo: Callable = print) -> dict:
    """The text demo with an explicit :class:`Budget` (see :func:`run_demo`)."""
    from . import fit_embeddings
    from .embedding import EmbeddingWarning
    from .peers import available

    t0, c0 = time.perf_counter(), time.process_time()
    machine = machine_info()
    budget = BUDGETS[data] if budget is None else budget
    _check_names(recipes, peers)
    peer_names = available(DEFAULT_PEERS if peers is None else tuple(peers),
                           echo=lambda msg: echo(f"({msg})"))
    os.makedirs(out_dir, exist_ok=True)

    echo(f"Loading {data} (TF-IDF fitted on the training split)...")
    ds = load_text_data(data, echo=echo)
    rows = {"train": _subsample(ds.X_train.shape[0], budget.train_rows, seed),
            "valid": _subsample(ds.X_valid.shape[0], budget.valid_rows, seed + 1),
            "test": _subsample(ds.X_test.shape[0], budget.test_rows, seed + 2,
                               keep=_shown(ds.ids_test, data))}
    part = {"train": (ds.X_train, ds.Y_train), "valid": (ds.X_valid, ds.Y_valid),
            "test": (ds.X_test, ds.Y_test)}
    split = {p: (part[p][0][r], part[p][1][r]) for p, r in rows.items()}
    X, Y = split["train"]
    n = {p: len(r) for p, r in rows.items()}
    label_names = list(ds.label_names)
    echo(f"{ds.meta.get('name') or data}: {ds.n_labels:,} labels, {ds.n_features:,} TF-IDF "
         f"features, {Y.nnz / max(1, n['train']):.2f} labels per sample; {ds.source}.")
    echo(f"Budget: {budget.describe(n['train'], n['valid'], n['test'])} (of "
         f"{ds.X_train.shape[0]:,} / {ds.X_valid.shape[0]:,} / {ds.X_test.shape[0]:,}); "
         f"chosen to run in under 3 minutes on 2 CPU cores.")

    t = time.perf_counter()
    with warnings.catch_warnings():  # labels absent from the drawn rows: counted below
        warnings.simplefilter("ignore", EmbeddingWarning)
        emb = fit_embeddings(Y, dim=budget.dim, seed=seed, progress=False)
    emb_time = time.perf_counter() - t
    emb.label_names = label_names
    counts = np.asarray(Y.sum(axis=0)).ravel()
    unseen = int((counts == 0).sum())
    echo(f"\nLabel embedding ({emb_time:.1f} s): {emb!r}"
         + (f"; {unseen} labels absent from these training rows get zero vectors"
            if unseen else ""))
    column = {name: j for j, name in enumerate(label_names)}
    probes = [p for p in PROBES.get(data, ()) if counts[column.get(p, 0)] > 0
              and p in column][:N_PROBES]  # a label absent from training has no vector
    probes += [label_names[i] for i in np.argsort(-counts, kind="stable")
               if counts[i] > 0 and label_names[i] not in probes][:N_PROBES - len(probes)]
    neighbors = {p: [[name, float(c)] for name, c in emb.neighbors(p, k=N_NEIGHBORS)]
                 for p in probes}
    echo("Nearest labels (cosine of the label vectors):")
    for p, nb in neighbors.items():
        echo(f"  {p:<24s} -> " + ", ".join(f"{name} {c:.3f}" for name, c in nb))

    default = default_recipe(emb, len(label_names), sparse=True)
    recipes = tuple(recipes) if recipes is not None else \
        (default,) + tuple(r for r in ("bce", "paper") if r != default)
    split["embedding_time"] = emb_time
    split["label_counts"] = counts
    results: Dict[str, dict] = {}
    for r in recipes:
        echo(f"\nTraining {r}{' (the default)' if r == default else ''}: {RECIPES[r].title}, "
             f"{budget.epochs} epoch{'s' if budget.epochs != 1 else ''}, "
             f"lr {RECIPES[r].settings(sparse=True)[0]:g}")
        results[r] = _train_recipe(r, emb, split, budget, out_dir, default=r == default,
                                   device=device, seed=seed, progress=progress)
        res = results[r]
        echo(f"  best validation MAP@100 {res['valid'][TARGET]:.3f} at epoch "
             f"{res['chosen_epoch']}, {res['train_time']:.1f} s of training")
    if peer_names:
        echo(f"\nPeers on the same rows and features ({len(peer_names)}):")
    threads = threads or max(1, min(os.cpu_count() or 1, 16))
    for name in peer_names:
        echo(f"  fitting {name}...")
        results[name] = _run_peer(name, split, threads)
        echo(f"  {name}: {results[name]['train_time']:.1f} s, validation MAP@100 "
             f"{results[name]['valid'][TARGET]:.3f}")

    reach = time_to_reach(results)
    for m, res in results.items():
        res["test"] = rank_metrics(res["indices"], split["test"][1], counts, n["train"])
        res["time_to_reach"] = reach[m]
    order = list(recipes) + peer_names
    table = format_table(results, order, default, n["test"])
    echo("\n" + table)
    ids, texts = ([part[i] for i in rows["test"]] for part in (ds.ids_test, ds.texts_test))
    samples = pick_samples(ids, texts, results[recipes[0]]["indices"], split["test"][1],
                           label_names, SAMPLES.get(data, ()), N_SAMPLES, seed)
    echo("\n" + format_samples(samples, recipes[0]))
    png = plot_curves(results, order, os.path.join(out_dir, "curves.png"),
                f"labelemb demo on {data}: validation curves", echo, default)

    for res in results.values():
        res.pop("indices")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    machine["load_average_end"] = load_average()
    machine["torch_threads"] = torch_threads()
    report = {
        "format": REPORT_FORMAT, "format_version": REPORT_VERSION, "data": {
            "name": data, "source": ds.source, "labels": ds.n_labels,
            "features": ds.n_features, "train": n["train"], "valid": n["valid"],
            "test": n["test"], "train_all": int(ds.X_train.shape[0]),
            "valid_all": int(ds.X_valid.shape[0]), "test_all": int(ds.X_test.shape[0])},
        "budget": asdict(budget), "seed": seed, "device": device,
        "default_recipe": default, "order": order, "target": TARGET,
        "embedding": {"dim": int(emb.vectors.shape[1]), "seconds": emb_time,
                      "unseen_labels": unseen, "neighbors": neighbors},
        "results": results, "samples": samples, "table": table, "plot": png,
        "machine": machine, "wall_seconds": wall, "cpu_seconds": cpu,
    }
    path = os.path.join(out_dir, "report.json")
    with atomic_write(path, "w") as f:
        json.dump(report, f, indent=1, default=json_default)
    load = machine["load_average"]
    if load and machine["cores"] and load[0] > machine["cores"]:
        echo(f"\n(The machine was busy with other work: load average {load[0]:.1f} on "
             f"{machine['cores']} cores; every time above is longer than on an idle machine.)")
    echo(f"\nWrote {path}" + (f" and {png}" if png else "") + f". {wall:.0f} s in all "
         f"({cpu:.0f} s of CPU in this process; {machine['cores']} cores"
         + (f", load average {load[0]:.1f} at the start" if load else "") + ").")
    return report


