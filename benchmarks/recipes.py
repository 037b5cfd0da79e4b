"""Recipe comparison driver (issues 6 and 7): the paper's recipe, the sigmoid baseline and the
low-rank PMI head on Openclipart images and debtags texts, with ablations.

Every run trains on TRAIN minus a validation split carved out of TRAIN by group (icon set /
source package), is evaluated on that validation split after each epoch (``fit``'s
``valid=``; the learning rate is chosen there) and on TEST (P@1, P@5, nDCG@5, MAP@100,
PSP@5, tail P@5) without the test data ever being used to choose anything. Finished runs are
cached as JSON lines in ``benchmarks/results/recipes_<size>_<dataset>.jsonl`` so reruns skip
them.

Usage (one torch thread per process)::

    python benchmarks/recipes.py tune debtags            # lr grid x {bce, paper, lowrank}
    python benchmarks/recipes.py seeds debtags           # seeds 1, 2 at the tuned lr
    python benchmarks/recipes.py ablate debtags          # embedding / E / loss / 10% ablations
    python benchmarks/recipes.py tune2 debtags           # round 2: dropout 0.5, + softmax recipes
    python benchmarks/recipes.py seeds2 debtags          # round 2: seeds 1, 2 at the tuned lr
    python benchmarks/recipes.py explore2 debtags        # softmax recipes without dropout
    python benchmarks/recipes.py seeds3 debtags          # ... and their seeds 1, 2
    python benchmarks/recipes.py seeds5 openclipart      # seeds 3, 4 (no dropout) of all seven
    python benchmarks/recipes.py ablate2 debtags         # eigenvalue power, which="LM"
    python benchmarks/recipes.py unseen debtags          # + test label sets never seen whole
    python benchmarks/recipes.py augment openclipart     # flips and shifts, 12 epochs, lr grid
    python benchmarks/recipes.py seeds6 openclipart      # ... and its seeds 1, 2
    python benchmarks/recipes.py baselines               # TF-IDF 10-NN and popularity (debtags)
    python benchmarks/recipes.py report                  # tables (markdown) and the plots
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from typing import Dict, List, Optional

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _util import read_runs  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
LRS = (3e-3, 1e-3, 1e-2)  # the grid, in the order it is run
MAIN = ("bce", "paper", "lowrank")
# The second round: every backbone with dropout 0.5 on its output features, and the
# softmax and hybrid (sigmoid + softmax) cross-entropy recipes (full-rank and low-rank
# heads) next to the three above.
V2 = {"dropout": 0.5}
NEW_OBJECTIVES = ("softmax", "lowrank-softmax", "hybrid", "lowrank-hybrid")
MAIN2 = ("bce", "paper", "lowrank") + NEW_OBJECTIVES
# Images with augmentation (random flips and shifts of each training batch) and twice the
# epochs: without it the small CNN overfits the training icon sets after 3-4 epochs.
V4 = {"augment": True, "epochs": 12}
MAIN4 = ("bce", "paper", "lowrank", "hybrid", "lowrank-hybrid")
TAIL = 20  # a label is "tail" when seen fewer than this many times in training
VALID_FRACTION = 0.15
# Per dataset: epochs, batch size, embedding dimension (the same for every recipe).
SETTINGS = {"debtags": {"epochs": 12, "batch_size": 256, "dim": 64},
            "openclipart": {"epochs": 6, "batch_size": 64, "dim": 64}}
TINY = {"debtags": {"epochs": 2, "batch_size": 128, "dim": 16, "n": 1500, "svd": 32},
        "openclipart": {"epochs": 1, "batch_size": 64, "dim": 16, "n": 300}}


def size() -> str:
    return os.environ.get("LABELEMB_BENCH", "small")


def settings(dataset: str) -> dict:
    s = dict(SETTINGS[dataset])
    if size() != "full":
        s.update(TINY[dataset])
    return s


# ---------------------------------------------------------------- data
def _group_valid(groups: np.ndarray, train_index: np.ndarray, seed: int = 12345):
    """Split ``train_index`` by group: (fit rows, validation rows)."""
    g = groups[train_index]
    uniq = np.unique(g)
    rng = np.random.default_rng(seed)
    val_groups = rng.choice(uniq, size=max(1, int(round(VALID_FRACTION * len(uniq)))),
                            replace=False)
    is_val = np.isin(g, val_groups)
    return train_index[~is_val], train_index[is_val]


def _lsa_features(texts, fit_rows: np.ndarray, n_components: int, cache: Optional[str],
                  rows: Optional[np.ndarray] = None):
    """TF-IDF (sublinear, min_df 2, 20k terms) -> truncated SVD -> unit rows, scaled so that
    each coordinate has unit mean square; fitted on ``fit_rows`` only."""
    if cache and os.path.exists(cache):
        return np.load(cache)
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = np.asarray(texts, dtype=object)
    rows = np.arange(len(texts)) if rows is None else rows
    vec = TfidfVectorizer(sublinear_tf=True, min_df=2, max_features=20000, dtype=np.float32)
    vec.fit(texts[fit_rows])
    svd = TruncatedSVD(n_components, algorithm="randomized", n_iter=4, random_state=0)
    svd.fit(vec.transform(texts[fit_rows]))
    X = np.zeros((len(texts), n_components), dtype=np.float32)  # rows not asked for: zeros
    X[rows] = svd.transform(vec.transform(texts[rows]))
    X[rows] /= np.maximum(np.linalg.norm(X[rows], axis=1, keepdims=True), 1e-12)
    X[rows] *= np.sqrt(n_components)
    if cache:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        np.save(cache, X)
    return X


def load(dataset: str) -> dict:
    """Inputs and labels of the fit / validation / test rows, and the backbone factory."""
    s = settings(dataset)
    tiny = size() != "full"
    if dataset == "debtags":
        from labelemb.datasets import load_debtags

        d = load_debtags()
        tr, te = np.asarray(d.train_index), np.asarray(d.test_index)
        if tiny:
            rng = np.random.default_rng(0)
            tr = np.sort(rng.choice(tr, min(s["n"], len(tr)), replace=False))
            te = np.sort(rng.choice(te, min(s["n"] // 3, len(te)), replace=False))
        fit_rows, val_rows = _group_valid(np.asarray(d.groups), tr)
        n_comp = s.get("svd", 256)
        cache = None if tiny else os.path.join(
            os.environ.get("LABELEMB_BENCH_CACHE", "/tmp/labelemb-bench"),
            f"debtags_lsa{n_comp}_{len(d.texts)}.npy")
        X = _lsa_features(d.texts, tr, n_comp, cache, np.concatenate([tr, te]) if tiny else None)
        Y = d.labels.tocsr()

        def backbone(dropout=0.0, augment=False):
            from labelemb.torch import mlp
            if augment:
                raise ValueError("augment applies to images (openclipart) only")
            return mlp(n_comp, [512], dropout=dropout), 512
    elif dataset == "openclipart":
        from labelemb.datasets import load_openclipart

        d = load_openclipart(as_float=True)
        tr, te = np.asarray(d.train_index), np.asarray(d.test_index)
        if tiny:
            rng = np.random.default_rng(0)
            tr = np.sort(rng.choice(tr, s["n"], replace=False))
            te = np.sort(rng.choice(te, s["n"] // 3, replace=False))
        fit_rows, val_rows = _group_valid(np.asarray(d.groups), tr)
        X, Y = d.images, d.labels.tocsr()

        def backbone(dropout=0.0, augment=False):
            from labelemb.demo import small_cnn
            return small_cnn(16, 256, dropout=dropout, augment=augment), 256
    else:
        raise ValueError(f"dataset must be 'debtags' or 'openclipart', got {dataset!r}")
    return {"X": X, "Y": Y, "fit": fit_rows, "val": val_rows, "test": te,
            "backbone": backbone, "settings": s}


def _unseen_sets(Y_test: sp.csr_matrix, Y_fit: sp.csr_matrix) -> np.ndarray:
    """Rows of ``Y_test`` whose label set (non-empty) is not the label set of any fit row."""
    def sets(Y):
        Y = Y.tocsr()
        Y.sort_indices()
        return [Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tobytes() for i in range(Y.shape[0])]

    seen = set(sets(Y_fit))
    return np.flatnonzero([s not in seen and len(s) > 0 for s in sets(Y_test)])


def _subset(rows: np.ndarray, frac: float, seed: int = 0) -> np.ndarray:
    if frac >= 1.0:
        return rows
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, max(2, int(round(frac * len(rows)))), replace=False))


# ---------------------------------------------------------------- metrics
def test_metrics(scores: np.ndarray, Y: sp.csr_matrix, counts: np.ndarray, n_train: int,
                 prefix: str = "test_") -> Dict[str, float]:
    """P@1, P@5, nDCG@5, MAP@100, PSP@5 and tail P@5 of a full score matrix (n, L)."""
    import torch

    from labelemb import metrics

    L = scores.shape[1]
    K = min(100, L)
    idx = torch.topk(torch.from_numpy(scores), K, dim=1)[1].numpy()
    r = metrics.report(idx, Y, ks=(1, 5, K), label_counts=counts, n_train=n_train,
                       n_labels=L)
    out = {"p@1": r["precision@1"], "p@5": r["precision@5"], "ndcg@5": r["ndcg@5"],
           "map@100": r[f"map@{K}"],
           "psp@5": metrics.psp_at_k(idx[:, :5], Y, 5, counts, n_train, n_labels=L)}
    tail = np.flatnonzero(counts < TAIL)
    if len(tail) >= 5:
        tidx = torch.topk(torch.from_numpy(np.ascontiguousarray(scores[:, tail])), 5,
                          dim=1)[1].numpy()
        Yt = Y[:, tail].tocsr()
        out["tail_p@5"] = (metrics.precision_at_k(tidx, Yt, 5, n_labels=len(tail))
                           if Yt.nnz else float("nan"))
    return {prefix + k: float(v) for k, v in out.items()}


def _scores(model, X, recipe: str, vectors: np.ndarray, bias: bool = True,
            batch: int = 1024) -> np.ndarray:
    """Full label scores as each recipe decodes: nearest labels (paper) or logits."""
    import torch

    model.eval()
    parts = []
    with torch.no_grad():
        for i in range(0, len(X), batch):
            out = model(torch.as_tensor(X[i:i + batch]))
            if recipe == "paper":
                out = out @ torch.from_numpy(vectors).t()
            elif not bias:
                out = out - model[1].bias
            parts.append(out.float().numpy())
    model.train()
    return np.concatenate(parts)


# ---------------------------------------------------------------- one run
def config(dataset: str, recipe: str, lr: float, seed: int = 0, *, pmi: str = "ppmi",
           alpha: float = 1.0, dim: Optional[int] = None, init: str = "pmi",
           learn_vectors: bool = True, frac: float = 1.0, epochs: Optional[int] = None,
           schedule: str = "constant", weight_decay: float = 0.0,
           residual: bool = False, dropout: float = 0.0, power: float = 0.5,
           which: str = "LA", unseen: bool = False, augment: bool = False) -> dict:
    s = settings(dataset)
    extra = {}  # non-default training options only, so earlier runs keep their cache keys
    if schedule != "constant":
        extra["schedule"] = schedule
    if weight_decay:
        extra["weight_decay"] = float(weight_decay)
    if residual:
        extra["residual"] = True
    if dropout:
        extra["dropout"] = float(dropout)
    if power != 0.5:
        extra["power"] = float(power)
    if which != "LA":
        extra["which"] = which
    if augment:  # random flips and shifts of the training images
        extra["augment"] = True
    if unseen:  # also report the test rows whose label set the fit rows never had
        extra["unseen"] = True
    return {**extra, "dataset": dataset, "recipe": recipe, "lr": float(lr), "seed": int(seed),
            "pmi": pmi, "alpha": float(alpha), "dim": int(dim or s["dim"]), "init": init,
            "learn_vectors": bool(learn_vectors) if recipe.startswith("lowrank") else None,
            "frac": float(frac), "epochs": int(epochs or s["epochs"]),
            "batch_size": s["batch_size"], "size": size()}


def key(cfg: dict) -> str:
    return hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(dataset: str, directory: str = RESULTS) -> str:
    return os.path.join(directory, f"recipes_{size()}_{dataset}.jsonl")


def finished(dataset: str, directory: str = RESULTS) -> Dict[str, dict]:
    return read_runs(cache_path(dataset, directory))


def run(cfg: dict, data: Optional[dict] = None, directory: str = RESULTS,
        echo=print) -> List[dict]:
    """Train one configuration; per-epoch records (validation metrics from ``fit``, test
    metrics ``test_*``, ``elapsed`` training seconds). Cached: a finished run is read back."""
    import torch

    import labelemb
    from labelemb.torch import RECIPES, fit, make_model

    k = key(cfg)
    done = finished(cfg["dataset"], directory)
    if k in done:
        return done[k]["records"]
    data = data or load(cfg["dataset"])
    X, Y = data["X"], data["Y"]
    fit_rows = _subset(data["fit"], cfg["frac"], seed=0)
    Yf = Y[fit_rows]
    counts = np.asarray(Yf.sum(axis=0)).ravel()
    with warnings.catch_warnings():  # labels absent from the (small) fit rows: zero vectors
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        emb = labelemb.fit_embeddings(Yf, dim=cfg["dim"], n_labels=Y.shape[1],
                                      pmi=cfg["pmi"], alpha=cfg["alpha"], seed=cfg["seed"],
                                      power=cfg.get("power", 0.5),
                                      which=cfg.get("which", "LA"), num_threads=1)
    vectors = emb.vectors
    if cfg["init"] == "random":
        rng = np.random.default_rng(cfg["seed"] + 1000)
        vectors = rng.standard_normal(vectors.shape).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    torch.manual_seed(cfg["seed"])
    net, width = data["backbone"](cfg.get("dropout", 0.0), cfg.get("augment", False))
    kw = {}
    lowrank = cfg["recipe"].startswith("lowrank")
    if lowrank:
        kw["learn_vectors"] = cfg["learn_vectors"]
        if cfg.get("residual"):
            kw["residual"] = True
    full = RECIPES[cfg["recipe"]].head == "logit"  # one output per label
    model = make_model(net, width, cfg["recipe"], embedding=emb if full else vectors,
                       n_labels=Y.shape[1], **kw)
    Xte, Yte = X[data["test"]], Y[data["test"]]
    unseen = _unseen_sets(Yte, Yf) if cfg.get("unseen") else None

    def on_epoch(history, model):
        rec = history.epochs[-1]
        t = time.perf_counter()
        vec = vectors if not lowrank else model[1].label_vectors.detach().numpy()
        sc = _scores(model, Xte, cfg["recipe"], vec)
        rec.update(test_metrics(sc, Yte, counts, len(fit_rows)))
        if unseen is not None and len(unseen):  # label sets never seen whole in the fit rows
            rec.update(test_metrics(sc[unseen], Yte[unseen], counts, len(fit_rows),
                                    prefix="test_unseen_"))
        if lowrank:  # decoding without the prior biases
            rec.update(test_metrics(_scores(model, Xte, "lowrank", vec, bias=False), Yte,
                                    counts, len(fit_rows), prefix="test_nobias_"))
            rec["scale"] = float(model[1].scale.detach())
        rec["test_eval_time"] = time.perf_counter() - t
        echo(f"  epoch {rec['epoch']:2d} {rec['elapsed']:7.1f}s val map {rec['map@100']:.4f}"
             f" test p@1 {rec['test_p@1']:.3f} p@5 {rec['test_p@5']:.3f} map "
             f"{rec['test_map@100']:.4f} psp@5 {rec['test_psp@5']:.3f} tail "
             f"{rec.get('test_tail_p@5', float('nan')):.3f}")
        return False

    echo(f"{cfg['dataset']} {cfg['recipe']} lr={cfg['lr']:g} seed={cfg['seed']} "
         f"{ {k: v for k, v in cfg.items() if k not in ('dataset', 'recipe', 'lr', 'seed')} }")
    h = fit(model, (X[fit_rows], Yf), None, valid=(X[data["val"]], Y[data["val"]]),
            epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch_size"], device="cpu",
            schedule=cfg.get("schedule", "constant"), weight_decay=cfg.get("weight_decay", 0.0),
            seed=cfg["seed"], progress=False, recipe=cfg["recipe"], callbacks=[on_epoch])
    records = [dict(e) for e in h.epochs]
    os.makedirs(directory, exist_ok=True)
    line = json.dumps({"key": k, "config": cfg, "records": records}) + "\n"
    fd = os.open(cache_path(cfg["dataset"], directory), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return records


# ---------------------------------------------------------------- plans
def best_val(records: List[dict], metric: str = "map@100") -> float:
    return max(r[metric] for r in records)


def tuned_lr(dataset: str, recipe: str, directory: str = RESULTS, **variant) -> Optional[float]:
    """The grid lr with the best validation MAP@100 (seed 0) of a recipe (and variant:
    config options such as ``dropout=0.5``), or None before tuning."""
    done = finished(dataset, directory)
    best = None
    for lr in LRS:
        r = done.get(key(config(dataset, recipe, lr, 0, **variant)))
        if r is not None and (best is None or best_val(r["records"]) > best[0]):
            best = (best_val(r["records"]), lr)
    return None if best is None else best[1]


def plan(what: str, dataset: str, directory: str = RESULTS) -> List[dict]:
    if what == "tune":
        return [config(dataset, r, lr) for lr in LRS for r in MAIN]
    if what == "seeds":
        lr = {r: tuned_lr(dataset, r, directory) for r in MAIN}
        return [config(dataset, r, lr[r], s) for s in (1, 2) for r in MAIN if lr[r]]
    if what == "ablate":
        lr = {r: tuned_lr(dataset, r, directory) for r in MAIN}
        if None in lr.values():
            raise SystemExit("run 'tune' first")
        lo, pa = lr["lowrank"], lr["paper"]
        cfgs = [config(dataset, "lowrank", lo, learn_vectors=False),  # E fixed
                config(dataset, "lowrank", lo, init="random", learn_vectors=False),
                config(dataset, "lowrank", lo, init="random"),
                # small training sets (10% of the fit rows), each recipe at its tuned lr
                *[config(dataset, r, lr[r], frac=0.1) for r in MAIN],
                config(dataset, "paper", pa, pmi="pmi"),
                config(dataset, "paper", pa, alpha=0.75),
                config(dataset, "lowrank", lo, alpha=0.75),
                config(dataset, "lowrank", lo, dim=32),
                config(dataset, "lowrank", lo, dim=128),
                config(dataset, "paper", pa, dim=128)]
        return cfgs
    if what == "tune2":
        return [config(dataset, r, lr, **V2) for lr in LRS for r in MAIN2]
    if what == "seeds2":
        lr = {r: tuned_lr(dataset, r, directory, **V2) for r in MAIN2}
        return [config(dataset, r, lr[r], s, **V2) for s in (1, 2) for r in MAIN2 if lr[r]]
    if what == "explore2":  # the softmax recipes on the round-1 backbones (no dropout)
        return [config(dataset, r, lr) for lr in LRS for r in NEW_OBJECTIVES]
    if what == "seeds3":  # seeds 1, 2 of explore2's recipes at their tuned lr
        lr = {r: tuned_lr(dataset, r, directory) for r in NEW_OBJECTIVES}
        return [config(dataset, r, lr[r], s) for s in (1, 2) for r in NEW_OBJECTIVES if lr[r]]
    if what == "augment":  # openclipart: lr grid of MAIN4 with augmentation, 12 epochs
        return [config(dataset, r, lr, **V4) for lr in LRS for r in MAIN4]
    if what == "seeds6":  # seeds 1, 2 of the augment plan at the tuned lr
        lr = {r: tuned_lr(dataset, r, directory, **V4) for r in MAIN4}
        return [config(dataset, r, lr[r], s, **V4) for s in (1, 2) for r in MAIN4 if lr[r]]
    if what == "seeds5":  # seeds 3, 4 of every recipe without dropout, at its tuned lr
        lr = {r: tuned_lr(dataset, r, directory) for r in MAIN2}
        return [config(dataset, r, lr[r], s) for s in (3, 4) for r in MAIN2 if lr[r]]
    if what == "unseen":  # seeds 0-2 of every recipe, scored on unseen label sets too
        lr = {r: tuned_lr(dataset, r, directory) for r in MAIN2}
        return [config(dataset, r, lr[r], s, unseen=True) for s in (0, 1, 2) for r in MAIN2
                if lr[r]]
    if what == "ablate2":  # the eigendecomposition: eigenvalue power, and "LM" vs "LA"
        lr = {r: tuned_lr(dataset, r, directory) for r in ("paper", "lowrank")}
        if None in lr.values():
            raise SystemExit("run 'tune' first")
        return [config(dataset, r, lr[r], **opt) for r in ("lowrank", "paper")
                for opt in ({"power": 0.0}, {"power": 1.0}, {"which": "LM"})]
    if what == "explore":  # training schedule: every recipe gets the same lr grid again
        return [config(dataset, r, lr, **opt) for opt in ({"schedule": "cosine"},)
                for lr in LRS for r in ("bce", "lowrank")] + \
            [config(dataset, "lowrank", lr, residual=True, **opt)
             for opt in ({}, {"schedule": "cosine"}) for lr in LRS] + \
            [config(dataset, r, lr, weight_decay=wd) for wd in (0.05, 0.2)
             for r, lr in (("bce", 1e-3), ("lowrank", 3e-3), ("lowrank", 1e-3))] + \
            [config(dataset, "lowrank", lr, dim=256) for lr in (1e-3, 3e-3)]
    raise ValueError(what)


def main(argv=None) -> None:
    import torch

    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["tune", "seeds", "ablate", "explore", "explore2", "seeds3",
                                     "tune2", "seeds2", "seeds5", "ablate2", "unseen", "augment",
                                     "seeds6", "baselines",
                                     "report"])
    p.add_argument("datasets", nargs="*", default=["debtags", "openclipart"])
    p.add_argument("--only", default=None, help="run only configs whose recipe is this")
    p.add_argument("--shard", default="0/1",
                   help="i/n: run only every n-th config from the i-th (parallel processes)")
    a = p.parse_args(argv)
    if a.what == "baselines":
        print(json.dumps(text_baselines(), indent=1))
        return
    if a.what == "report":
        print(write_report(a.datasets))
        return
    shard, n_shards = (int(x) for x in a.shard.split("/"))
    for ds in a.datasets:
        data = None
        for i, cfg in enumerate(plan(a.what, ds)):
            if a.only and cfg["recipe"] != a.only or i % n_shards != shard:
                continue
            if key(cfg) in finished(ds):
                continue
            data = data or load(ds)
            t = time.perf_counter()
            run(cfg, data)
            print(f"  done in {time.perf_counter() - t:.0f} s", flush=True)


# ---------------------------------------------------------------- report
METRICS = ("p@1", "p@5", "ndcg@5", "map@100", "psp@5", "tail_p@5")


def _mean_curve(runs: List[List[dict]]) -> List[dict]:
    """Per-epoch mean over seeds of every numeric field (epochs common to all runs)."""
    n = min(len(r) for r in runs)
    out = []
    for e in range(n):
        rec = {}
        for k in runs[0][e]:
            vals = [r[e][k] for r in runs if isinstance(r[e].get(k), (int, float))]
            if len(vals) == len(runs):
                rec[k] = float(np.mean(vals))
        out.append(rec)
    return out


def _at_best_val(records: List[dict]) -> dict:
    """The record of the epoch with the best validation MAP@100 (test never chooses)."""
    return max(records, key=lambda r: r["map@100"])


def _time_to(records: List[dict], metric: str, value: float) -> Optional[float]:
    for r in records:
        if r[metric] >= value - 1e-12:
            return r["elapsed"]
    return None


def _fmt(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def _label(cfg: dict, base: dict) -> str:
    diff = [f"{k}={cfg[k]}" for k in ("pmi", "alpha", "dim", "init", "learn_vectors", "frac")
            if cfg[k] != base[k] and not (k == "learn_vectors" and cfg[k] is None)]
    diff += [f"{k}={cfg[k]}" for k in ("schedule", "weight_decay", "residual", "dropout",
                                       "power", "which") if k in cfg]
    return cfg["recipe"] + (" (" + ", ".join(diff) + ")" if diff else "")


def _comparison(lines: List[str], ds: str, done: dict, recipes_: tuple, variant: dict,
                directory: str, seeds: tuple = (0, 1, 2)) -> dict:
    """Appends the lr grid, the seed-averaged comparison and the per-epoch table of
    ``recipes_`` (with the config options ``variant``) to ``lines``; returns the curves and
    the tuned learning rates."""
    lrs = {r: tuned_lr(ds, r, directory, **variant) for r in recipes_}
    # learning-rate grid
    lines.append("Validation MAP@100 (best epoch, seed 0) per learning rate:\n")
    lines.append("| recipe | " + " | ".join(f"lr {g:g}" for g in sorted(LRS)) +
                 " | chosen |")
    lines.append("|---" * (len(LRS) + 2) + "|")
    for r in recipes_:
        cells = []
        for g in sorted(LRS):
            run_ = done.get(key(config(ds, r, g, 0, **variant)))
            cells.append(_fmt(best_val(run_["records"]), 4) if run_ else "-")
        lines.append(f"| {r} | " + " | ".join(cells) + f" | {lrs[r]} |")
    # main comparison
    curves = {}
    for r in recipes_:
        if lrs[r] is None:
            continue
        runs_ = [done[key(config(ds, r, lrs[r], s, **variant))]["records"] for s in seeds
                 if key(config(ds, r, lrs[r], s, **variant)) in done]
        curves[r] = (_mean_curve(runs_), len(runs_), runs_)
    if not curves:
        return curves, lrs
    lines.append("\nTest metrics at the epoch of best validation MAP@100, mean over "
                 "seeds (± std); s/epoch = median training seconds per epoch; "
                 "best MAP = best test MAP@100 over the epochs of the mean curve; "
                 "time to bce best = training seconds until the mean curve reaches the "
                 "bce curve's best MAP@100:\n")
    lines.append("| recipe | lr | seeds | " + " | ".join(METRICS) +
                 " | best MAP | s/epoch | time to own best | time to bce best |")
    lines.append("|---" * (len(METRICS) + 7) + "|")
    bce_best = max(e["test_map@100"] for e in curves["bce"][0]) if "bce" in curves else None
    for r, (curve, n, runs_) in curves.items():
        picks = [_at_best_val(x) for x in runs_]
        cells = []
        for m in METRICS:
            v = [p.get("test_" + m, float("nan")) for p in picks]
            cells.append(_fmt(np.mean(v)) + (f" ± {np.std(v):.3f}" if n > 1 else ""))
        best = max(e["test_map@100"] for e in curve)
        spe = float(np.median([e["train_time"] for x in runs_ for e in x]))
        own = _time_to(curve, "test_map@100", best)
        tb = _time_to(curve, "test_map@100", bce_best) if bce_best else None
        lines.append(f"| {r} | {lrs[r]:g} | {n} | " + " | ".join(cells) +
                     f" | {best:.4f} | {spe:.2f} | {_fmt(own, 1)} s | {_fmt(tb, 1)} s |")
    lines.append("\nPer epoch (mean over seeds; test MAP@100 / P@5 / PSP@5 / tail P@5, "
                 "cumulative training seconds):\n")
    lines.append("| epoch | " + " | ".join(curves) + " |")
    lines.append("|---" * (len(curves) + 1) + "|")
    for e in range(max(len(c[0]) for c in curves.values())):
        cells = []
        for curve, _, _ in curves.values():
            if e < len(curve):
                x = curve[e]
                cells.append(f"{x['test_map@100']:.4f} / {x['test_p@5']:.3f} / "
                             f"{x['test_psp@5']:.3f} / {x.get('test_tail_p@5', np.nan):.3f}"
                             f" ({x['elapsed']:.0f} s)")
            else:
                cells.append("-")
        lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    return curves, lrs


def _paired_to_bce(lines: List[str], curves: dict) -> None:
    """Per-seed test MAP@100 (at the best validation epoch) of each recipe in ``curves``
    (as ``_comparison`` returns them) and its mean difference to bce, seed by seed."""
    picks = {r: [_at_best_val(x)["test_map@100"] for x in c[2]] for r, c in curves.items()}
    if "bce" not in picks or len(picks["bce"]) < 2:
        return
    b = np.array(picks["bce"])
    lines.append(f"\nPer seed (test MAP@100 at the best validation epoch; {len(b)} seeds) "
                 "and the mean paired difference to bce:\n")
    lines.append("| recipe | per seed | mean | minus bce (mean ± std) | seeds above bce |")
    lines.append("|---|---|---|---|---|")
    for r, v in picks.items():
        v = np.array(v)
        paired = r != "bce" and len(v) == len(b)
        diff = v - b if paired else None
        lines.append(f"| {r} | " + " / ".join(f"{x:.4f}" for x in v) + f" | {v.mean():.4f} | "
                     + (f"{diff.mean():+.4f} ± {diff.std():.4f} | "
                        f"{int((diff > 0).sum())} of {len(v)}" if paired else "- | -") + " |")


def _unseen_table(lines: List[str], ds: str, done: dict, directory: str) -> None:
    """Test figures on the label sets never seen whole in training (``unseen`` plan)."""
    rows = []
    for r in MAIN2:
        lr = tuned_lr(ds, r, directory)
        if lr is None:
            continue
        runs_ = [done[k]["records"] for k in (key(config(ds, r, lr, s, unseen=True))
                                              for s in (0, 1, 2)) if k in done]
        if runs_:
            rows.append((r, lr, runs_))
    if not rows:
        return
    n_rows = {len(x) for _, _, x in rows}
    lines.append("\n#### Label sets never seen whole in training (no dropout)\n")
    lines.append("Test rows whose label set is not the label set of any fit row, against "
                 "all test rows; test metrics at the best validation epoch, mean over "
                 f"{'/'.join(str(n) for n in sorted(n_rows))} seeds (± std of MAP@100):\n")
    cols = ("p@1", "p@5", "map@100", "psp@5")
    lines.append("| recipe | lr | " + " | ".join(f"unseen {c}" for c in cols) +
                 " | all MAP@100 |")
    lines.append("|---" * (len(cols) + 3) + "|")
    for r, lr, runs_ in rows:
        picks = [_at_best_val(x) for x in runs_]
        cells = []
        for c in cols:
            v = [p.get("test_unseen_" + c, float("nan")) for p in picks]
            cells.append(_fmt(np.mean(v)) + (f" ± {np.std(v):.3f}" if c == "map@100" and
                                              len(v) > 1 else ""))
        lines.append(f"| {r} | {lr:g} | " + " | ".join(cells) +
                     f" | {np.mean([p['test_map@100'] for p in picks]):.3f} |")


def write_report(datasets=("debtags", "openclipart"), directory: str = RESULTS) -> str:
    """Markdown tables of the finished runs and the MAP@100-vs-time plots; returns the text
    (also written to ``recipes_<size>_report.md``)."""
    lines = []
    for ds in datasets:
        done = finished(ds, directory)
        if not done:
            continue
        lines.append(f"### {ds}\n")
        curves, lrs = _comparison(lines, ds, done, MAIN, {}, directory)
        if not curves:
            continue
        curves2, lrs2 = {}, {}
        if any(key(config(ds, r, g, 0, **V2)) in done for r in MAIN2 for g in LRS):
            lines.append("\n#### Round 2: dropout 0.5 on every backbone's features; "
                         "softmax cross-entropy recipes\n")
            curves2, lrs2 = _comparison(lines, ds, done, MAIN2, V2, directory)
        curves5 = {}
        if any(key(config(ds, r, g, 3)) in done for r in MAIN2 for g in LRS):
            lines.append("\n#### Five seeds, no dropout: all seven recipes\n")
            lines.append("Seeds 0-2 of bce / paper / lowrank come from round 1, of the "
                         "softmax and hybrid recipes from `explore2` / `seeds3`, seeds 3 "
                         "and 4 of all seven from `seeds5`, run in other sittings: the "
                         "times compare within a recipe, not across.\n")
            curves5, _ = _comparison(lines, ds, done, MAIN2, {}, directory,
                                     seeds=(0, 1, 2, 3, 4))
            _paired_to_bce(lines, curves5)
        _unseen_table(lines, ds, done, directory)
        if any(key(config(ds, r, g, 0, **V4)) in done for r in MAIN4 for g in LRS):
            lines.append("\n#### Images with augmentation (random flips and shifts), "
                         "12 epochs\n")
            curves4, _ = _comparison(lines, ds, done, MAIN4, V4, directory)
            _paired_to_bce(lines, curves4)
        # ablations: every other seed-0 run
        main_keys = {key(config(ds, r, g, s)) for r in MAIN for g in LRS for s in (0, 1, 2)} | \
            {key(config(ds, r, g, s, **V2)) for r in MAIN2 for g in LRS for s in (0, 1, 2)} | \
            {key(config(ds, r, g, s)) for r in MAIN2 for g in LRS for s in range(5)} | \
            {key(config(ds, r, g, s, unseen=True))
             for r in MAIN2 for g in LRS for s in range(5)} | \
            {key(config(ds, r, g, s, **V4)) for r in MAIN4 for g in LRS for s in range(3)}
        abl = [v for k, v in done.items() if k not in main_keys]
        ref = [done[key(config(ds, r, lrs[r]))] for r in MAIN if lrs[r] is not None]
        if abl:
            lines.append("\nAblations (seed 0; test metrics at the best-validation epoch; "
                         "ep1 = test MAP@100 after the first epoch):\n")
            lines.append("| run | lr | val MAP | " + " | ".join(METRICS) + " | ep1 MAP |"
                         " s/epoch |")
            lines.append("|---" * (len(METRICS) + 5) + "|")
            base = config(ds, "bce", 1e-3)
            for v in ref + sorted(abl, key=lambda v: (v["config"]["frac"],
                                                       v["config"]["recipe"])):
                cfg, recs = v["config"], v["records"]
                p = _at_best_val(recs)
                if cfg["recipe"] == "lowrank" and cfg["frac"] == 1.0 and v in ref:
                    q = {m: p.get("test_nobias_" + m) for m in METRICS}
                    nob = " | ".join(_fmt(q[m]) for m in METRICS)
                lines.append(f"| {_label(cfg, base)} | {cfg['lr']:g} | "
                             f"{p['map@100']:.4f} | " +
                             " | ".join(_fmt(p.get("test_" + m)) for m in METRICS) +
                             f" | {recs[0]['test_map@100']:.4f} | "
                             f"{np.median([e['train_time'] for e in recs]):.2f} |")
            if any(v["config"]["recipe"] == "lowrank" for v in ref):
                lines.append(f"| lowrank, decoded without the biases | | | {nob} | | |")
        png = os.path.join(directory, f"recipes_{size()}_{ds}.png")
        try:
            from labelemb import plot
            plot.history({f"{r} (lr {lrs[r]:g})": c[0] for r, c in curves.items()}, png,
                         metrics=("test_map@100", "test_p@5", "test_tail_p@5"),
                         title=f"{ds}: test metrics (mean over seeds) vs training time")
            lines.append(f"\n![{ds}](results/{os.path.basename(png)})\n")
            if curves2:
                png2 = os.path.join(directory, f"recipes_{size()}_{ds}_round2.png")
                plot.history({f"{r} (lr {lrs2[r]:g})": c[0] for r, c in curves2.items()},
                             png2, metrics=("test_map@100", "test_p@5", "test_tail_p@5"),
                             title=f"{ds}, dropout 0.5: test metrics (mean over seeds) vs "
                                   "training time")
                lines.append(f"\n![{ds}, round 2](results/{os.path.basename(png2)})\n")
        except ImportError:
            pass
        lines.append("")
    path = os.path.join(directory, f"recipes_{size()}_report.md")
    os.makedirs(directory, exist_ok=True)
    text = "\n".join(lines)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return text


# ---------------------------------------------------------------- text baselines
def text_baselines(k_nn: int = 10) -> dict:
    """TF-IDF cosine 10-NN and popularity on debtags (test split), trained on the whole TRAIN
    and on the fit rows the models see."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from labelemb.datasets import load_debtags

    d = load_debtags()
    data = load("debtags")
    Y = data["Y"]
    te = data["test"]
    out = {}
    for name, rows in (("train", np.concatenate([data["fit"], data["val"]])),
                       ("fit", data["fit"])):
        rows = np.sort(rows)
        counts = np.asarray(Y[rows].sum(axis=0)).ravel()
        texts = np.asarray(d.texts, dtype=object)
        vec = TfidfVectorizer(sublinear_tf=True, min_df=2, max_features=20000,
                              dtype=np.float32).fit(texts[rows])
        A, B = vec.transform(texts[rows]), vec.transform(texts[te])
        Yr = Y[rows].tocsr()
        t = time.perf_counter()
        parts = []
        for i in range(0, B.shape[0], 1000):
            S = (B[i:i + 1000] @ A.T).toarray()
            nn = np.argpartition(-S, k_nn, axis=1)[:, :k_nn]
            w = np.take_along_axis(S, nn, axis=1)
            W = sp.csr_matrix((w.ravel(), nn.ravel(), np.arange(0, w.size + 1, k_nn)),
                              shape=(S.shape[0], len(rows)))
            parts.append((W @ Yr).toarray() + 1e-6 * counts / counts.max())  # ties: popular
        knn = np.concatenate(parts).astype(np.float32)
        out[f"knn10_{name}"] = test_metrics(knn, Y[te], counts, len(rows), prefix="")
        out[f"knn10_{name}"]["seconds"] = time.perf_counter() - t
        pop = np.tile(counts.astype(np.float32), (len(te), 1))
        out[f"popularity_{name}"] = test_metrics(pop, Y[te], counts, len(rows), prefix="")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"recipes_{size()}_debtags_baselines.json"), "w") as f:
        json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
