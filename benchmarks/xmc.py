"""labelemb's recipes against the extreme-classification tools, on the same split and features.

One table per data set: popularity, TF-IDF cosine 10-NN, PECOS XR-Linear (beam 10, 50),
Omikuji (Parabel, Bonsai), napkinXC PLT (``labelemb.peers``) and every labelemb recipe on an
MLP over the same sparse TF-IDF rows, all scored by ``labelemb.metrics`` on their top-100
lists of the same test rows (benchmarks/README.md, "Extreme classification", gives the
protocol in full).

* Every method trains on ``X_train``. Recipes: lr chosen per recipe from ``LRS`` by the
  best validation MAP@100; test figures at the best validation epoch (weights kept in
  memory then); test data never chooses anything.
* Tail labels: the bottom half by training count (count <= the median); tail P@5 scores,
  in each top-100 list, the first five tail labels against the sample's tail labels.
* Costs: training time (recipes: embedding + epochs up to the best one), prediction time
  per 1,000 test rows, peak memory (``VmHWM`` rise above the loaded data; one fresh
  process per method in full mode), the load average beside each.
* Time to reach the other's best, on validation for both sides: the recipe's embedding +
  training seconds to its first epoch at the best peer's validation MAP@100; the peer's
  training time if its validation MAP@100 is at the recipe's best, else not reached.

Usage (2 threads for every method)::

    python benchmarks/xmc.py peers wordnet           # every peer (fast)
    python benchmarks/xmc.py recipes wordnet         # lr grid of every recipe
    python benchmarks/xmc.py report wordnet          # results/xmc_wordnet.{json,md}
    python benchmarks/xmc.py all debtags --recipes bce lowrank --lrs 0.001 --epochs 4

Runs are cached in ``results/xmc_<size>_<data>.jsonl`` (reruns skip finished ones).
``LABELEMB_BENCH=small`` (the default) runs a few thousand rows in one process.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _peers  # noqa: E402
from _util import RESULTS, _status, bench_size, machine, read_runs  # noqa: E402

RECIPES = ("bce", "lowrank", "hybrid", "lowrank-hybrid", "softmax", "lowrank-softmax",
           "paper")
LRS = (1e-3, 3e-3)
# Each recipe's lr of best validation MAP@100 on debtags (results/recipes_full_report.md),
# run first: with little time, every recipe has its likely lr before any has two.
FIRST_LR = {"bce": 1e-3, "softmax": 1e-3, "hybrid": 1e-3, "lowrank": 3e-3,
            "lowrank-softmax": 3e-3, "lowrank-hybrid": 3e-3, "paper": 3e-3}
THREADS = 2
K = 100
# Per data set in full mode: epochs, batch size, hidden width, embedding dimension.
FULL = {"epochs": 4, "batch_size": 256, "hidden": 512, "dim": 256}
SMALL = {"epochs": 1, "batch_size": 32, "hidden": 256, "dim": 32,
         "n_train": 3000, "n_valid": 600, "n_test": 1000}
DATASETS = ("synthetic", "debtags", "wordnet", "debian-deps")
METRICS = ("p@1", "p@5", "ndcg@5", "map@100", "psp@5", "tail_p@5")


def settings() -> dict:
    return dict(FULL) if bench_size() == "full" else dict(SMALL)


# ---------------------------------------------------------------- data
class Split:
    """``X_*`` (CSR float32 TF-IDF rows) and ``Y_*`` (binary CSR) of train, valid and test."""

    PARTS = ("X_train", "Y_train", "X_valid", "Y_valid", "X_test", "Y_test")

    def __init__(self, name: str, meta: dict, **parts):
        self.name, self.meta = name, meta
        for p in self.PARTS:
            setattr(self, p, sp.csr_matrix(parts[p], dtype=np.float32))

    @property
    def counts(self) -> np.ndarray:
        return np.asarray(self.Y_train.sum(axis=0)).ravel()

    def describe(self) -> str:
        return (f"{self.name}: {self.X_train.shape[0]:,} train / {self.X_valid.shape[0]:,} "
                f"valid / {self.X_test.shape[0]:,} test, {self.Y_train.shape[1]:,} labels "
                f"({self.Y_train.nnz / max(1, self.Y_train.shape[0]):.2f} per training row), "
                f"{self.X_train.shape[1]:,} TF-IDF features "
                f"({self.X_train.nnz / max(1, self.X_train.shape[0]):.1f} non-zeros per row)")


def synthetic_text(n: int = 6000, n_labels: int = 400, n_features: int = 5000,
                   seed: int = 0) -> dict:
    """Topic-structured labels (``make_topic_labels``) with bag-of-words rows: each label
    and each topic owns a few words; a sample draws words of its labels, of its topics and
    of the whole vocabulary (noise), weighted by TF-IDF fitted on the training rows."""
    from sklearn.feature_extraction.text import TfidfTransformer

    import labelemb

    rng = np.random.default_rng(seed)
    d = labelemb.make_topic_labels(n, n_labels, seed=seed)
    label_words = rng.integers(0, n_features, size=(n_labels, 4))
    topic_words = rng.integers(0, n_features, size=(d.topics.shape[1], 8))
    rows, cols = [], []
    for i in range(n):
        labs = d.labels.indices[d.labels.indptr[i]:d.labels.indptr[i + 1]]
        tops = d.topics.indices[d.topics.indptr[i]:d.topics.indptr[i + 1]]
        words = [label_words[labs, rng.integers(0, 4, len(labs))],
                 topic_words[np.repeat(tops, 3), rng.integers(0, 8, 3 * len(tops))],
                 rng.integers(0, n_features, 4)]
        keep = rng.random(len(labs)) < 0.7  # a label is not always named in the text
        words[0] = words[0][keep]
        w = np.concatenate(words)
        rows.append(np.full(len(w), i))
        cols.append(w)
    counts = sp.csr_matrix((np.ones(sum(map(len, cols)), np.float32),
                            (np.concatenate(rows), np.concatenate(cols))),
                           shape=(n, n_features))
    counts.sum_duplicates()
    perm = rng.permutation(n)
    te, va, tr = perm[:n // 6], perm[n // 6:n // 3], perm[n // 3:]
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts[tr])
    X = tfidf.transform(counts).astype(np.float32)
    Y = d.labels.tocsr()
    return {"X_train": X[tr], "Y_train": Y[tr], "X_valid": X[va], "Y_valid": Y[va],
            "X_test": X[te], "Y_test": Y[te],
            "meta": {"source": f"synthetic: make_topic_labels({n}, {n_labels}, seed={seed}) "
                               f"with bags of words over {n_features} terms"}}


# The loader of each real set and the options given to it. WordNet: labels seen at least
# 5 times and carried by at most 30% of the training samples (the near-root hypernyms,
# "entity" and the like, are on nearly every sample and would be most of every top 5).
LOADERS = {"wordnet": ("load_wordnet", {"min_count": 5, "max_label_fraction": 0.3}),
           "debian-deps": ("load_debian_deps", {}), "debtags": ("load_debtags_xmc", {})}


def _load_real(name: str):
    """The ``labelemb.datasets`` loader's train / valid / test form of a real set."""
    import labelemb.datasets as ds

    fn, options = LOADERS[name]
    if not hasattr(ds, fn):
        raise RuntimeError(f"labelemb.datasets has no {fn}() in this version")
    return getattr(ds, fn)(**options)


def _subsample(parts: dict, seed: int = 0) -> dict:
    s, rng = settings(), np.random.default_rng(seed)
    out = dict(parts)
    for part, n in (("train", s["n_train"]), ("valid", s["n_valid"]), ("test", s["n_test"])):
        X = parts["X_" + part]
        if X.shape[0] > n:
            rows = np.sort(rng.choice(X.shape[0], n, replace=False))
            out["X_" + part], out["Y_" + part] = X[rows], parts["Y_" + part][rows]
    return out


def _options(name: str) -> dict:
    return LOADERS.get(name, (None, {}))[1]


def _cache_dir(name: str) -> str:
    root = os.environ.get("LABELEMB_BENCH_CACHE", "/tmp/labelemb-bench")
    tag = "".join(f"_{k}{v}" for k, v in sorted(_options(name).items()))
    return os.path.join(root, "xmc", f"{name}{tag}_{bench_size()}")


def load_split(name: str) -> Split:
    """The split of a data set (cached as ``.npz`` so that worker processes load it fast)."""
    if name not in DATASETS:
        raise ValueError(f"data must be one of {', '.join(DATASETS)}, got {name!r}")
    cache = _cache_dir(name)
    meta_path = os.path.join(cache, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        parts = {p: sp.load_npz(os.path.join(cache, p + ".npz")) for p in Split.PARTS}
        return Split(name, meta, **parts)
    if name == "synthetic":
        parts = synthetic_text() if bench_size() == "full" else synthetic_text(2400, 150, 2000)
        meta = parts.pop("meta")
    else:
        d = _load_real(name)
        parts = {p: getattr(d, p) for p in Split.PARTS}
        meta = {"source": getattr(d, "source", name),
                **{k: v for k, v in dict(getattr(d, "meta", {}) or {}).items()
                   if isinstance(v, (str, int, float, bool))}}
    if bench_size() != "full":
        parts = _subsample(parts)
    os.makedirs(cache, exist_ok=True)
    for p in Split.PARTS:  # each file atomically; meta.json last marks the cache complete
        tmp = os.path.join(cache, f".{p}.{os.getpid()}.npz")
        sp.save_npz(tmp, sp.csr_matrix(parts[p], dtype=np.float32))
        os.replace(tmp, os.path.join(cache, p + ".npz"))
    tmp = meta_path + f".{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(meta, f)
    os.replace(tmp, meta_path)
    return Split(name, meta, **parts)


# ---------------------------------------------------------------- metrics
def tail_labels(counts: np.ndarray) -> np.ndarray:
    """The bottom half of the labels by training count (count <= the median count)."""
    return np.flatnonzero(counts <= np.median(counts))


def tail_topk(indices: np.ndarray, tail: np.ndarray, n_labels: int, k: int = 5) -> np.ndarray:
    """Each row's tail labels in their ranked order, the first ``k``, as ids into ``tail``
    (-1 pads rows with fewer)."""
    pos = np.full(n_labels + 1, -1, dtype=np.int64)  # slot n_labels: the -1 padding
    pos[tail] = np.arange(len(tail))
    mapped = pos[np.where(indices >= 0, indices, n_labels)]
    order = np.argsort(mapped < 0, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(mapped, order, axis=1)


def score(indices: np.ndarray, Y: sp.csr_matrix, counts: np.ndarray,
          n_train: int) -> Dict[str, float]:
    """The table's metrics of top-100 lists against the true label sets."""
    from labelemb import metrics

    L = Y.shape[1]
    k = min(K, L, indices.shape[1])
    r = metrics.report(indices[:, :k], Y, ks=sorted({1, 5, k}), n_labels=L)
    out = {"p@1": r["precision@1"], "p@5": r["precision@5"], "ndcg@5": r["ndcg@5"],
           "map@100": r[f"map@{k}"],
           "psp@5": metrics.psp_at_k(indices[:, :5], Y, 5, counts, n_train, n_labels=L)}
    tail = tail_labels(counts)
    Yt = Y[:, tail].tocsr()
    out["tail_p@5"] = (metrics.precision_at_k(tail_topk(indices, tail, L), Yt, 5,
                                              n_labels=len(tail)) if Yt.nnz else float("nan"))
    return {m: float(v) for m, v in out.items()}


# ---------------------------------------------------------------- one method
def _peak_since(base: int) -> int:
    """Bytes of the resident-set high-water mark above ``base`` (0 when the kernel's
    per-CPU counters put the mark a few pages below the resident size read at reset)."""
    return max(0, _status("VmHWM") - base)


def _reset_peak() -> int:
    """Reset the resident-set high-water mark; the resident bytes now."""
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


def _test_record(split: Split, indices: np.ndarray) -> Dict[str, float]:
    return {"test_" + m: v for m, v in score(indices, split.Y_test, split.counts,
                                              split.X_train.shape[0]).items()}


def run_peer(split: Split, name: str) -> dict:
    """Fit one peer on the training rows; its test metrics, validation MAP@100 and costs."""
    peer = _peers.make_peer(name, THREADS)
    base = _reset_peak()
    t = time.perf_counter()
    peer.fit(split.X_train, split.Y_train)
    train = time.perf_counter() - t
    t = time.perf_counter()
    idx, _ = peer.predict_topk(split.X_test, K)
    pred = time.perf_counter() - t
    peak = _peak_since(base)
    vidx, _ = peer.predict_topk(split.X_valid, K)
    peer.close()
    valid = score(vidx, split.Y_valid, split.counts, split.X_train.shape[0])
    return {"method": name, "kind": "peer", "train_time": train,
            "prep_time": float(getattr(peer, "prep_time_", 0.0)),
            "predict_ms_per_1000": 1e6 * pred / max(1, split.X_test.shape[0]),
            "peak_mb": peak / 2**20, "valid_map@100": valid["map@100"],
            **_test_record(split, idx)}


def _backbone(n_features: int, hidden: int):
    """``SparseLinear -> ReLU``: the TF-IDF rows reach the first layer as sparse batches,
    whose weight gradient holds only the rows of the columns a batch uses (fit trains it
    with its lazy-row AdamW)."""
    from torch import nn

    from labelemb.torch.sparse import SparseLinear

    return nn.Sequential(SparseLinear(n_features, hidden, sparse_grad=True), nn.ReLU())


def run_recipe(split: Split, spec: dict, echo=print) -> dict:
    """Train one labelemb recipe (``spec``: recipe, lr, seed, epochs, hidden, dim,
    batch_size); test metrics at the best validation epoch, and costs."""
    import warnings

    import torch

    import labelemb
    from labelemb.torch import fit, make_model, predict

    recipe, lr, seed = spec["recipe"], spec["lr"], spec["seed"]
    torch.set_num_threads(THREADS)
    L = split.Y_train.shape[1]
    base = _reset_peak()
    t = time.perf_counter()
    with warnings.catch_warnings():  # labels absent from the training rows: zero vectors
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        emb = labelemb.fit_embeddings(split.Y_train, dim=min(spec["dim"], L - 1), n_labels=L,
                                      seed=seed, num_threads=THREADS)
    embed_time = time.perf_counter() - t
    torch.manual_seed(seed)
    model = make_model(_backbone(split.X_train.shape[1], spec["hidden"]), spec["hidden"],
                       recipe, embedding=emb, n_labels=L)
    best = {"map@100": -1.0, "state": None, "epoch": 0}

    def keep_best(history, model):
        rec = history.epochs[-1]
        echo(f"  {recipe} lr={lr:g} epoch {rec['epoch']} {rec['elapsed']:.1f}s "
             f"valid map@100 {rec['map@100']:.4f}")
        if rec["map@100"] > best["map@100"]:
            best.update({"map@100": rec["map@100"], "epoch": rec["epoch"],
                         "state": copy.deepcopy(model.state_dict())})
        return False

    h = fit(model, (split.X_train, split.Y_train), emb, valid=(split.X_valid, split.Y_valid),
            epochs=spec["epochs"], lr=lr, batch_size=spec["batch_size"], device="cpu",
            seed=seed, progress=False, callbacks=[keep_best],
            schedule="constant")  # this table's protocol: constant rates, tuned on a grid
    model.load_state_dict(best["state"])
    t = time.perf_counter()
    idx, _ = predict(model, split.X_test, emb, k=min(K, L), device="cpu")
    pred = time.perf_counter() - t
    peak = _peak_since(base)
    epochs = [{k: e.get(k) for k in ("epoch", "loss", "p@1", "p@5", "map@100", "train_time",
                                     "elapsed")} for e in h.epochs]
    at_best = epochs[best["epoch"] - 1]["elapsed"]
    return {"method": f"labelemb {recipe}", "kind": "labelemb", "recipe": recipe,
            "lr": float(lr), "seed": int(seed), "embed_time": embed_time,
            "train_time": embed_time + at_best,
            "train_time_all_epochs": embed_time + epochs[-1]["elapsed"],
            "best_epoch": best["epoch"], "epochs": epochs,
            "predict_ms_per_1000": 1e6 * pred / max(1, split.X_test.shape[0]),
            "peak_mb": peak / 2**20, "valid_map@100": best["map@100"],
            **_test_record(split, idx)}


def run_spec(split: Split, spec: dict, echo=print) -> dict:
    if spec["kind"] == "peer":
        return run_peer(split, spec["name"])
    return run_recipe(split, spec, echo=echo)


# ---------------------------------------------------------------- runs and their cache
def spec_key(data: str, spec: dict) -> str:
    cfg = {"data": data, "size": bench_size(), "spec": spec}
    if _options(data):
        cfg["options"] = _options(data)
    return hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(data: str, directory: str) -> str:
    return os.path.join(directory, f"xmc_{bench_size()}_{data}.jsonl")


def finished(data: str, directory: str) -> Dict[str, dict]:
    return read_runs(cache_path(data, directory))


def _append(data: str, directory: str, record: dict) -> None:
    os.makedirs(directory, exist_ok=True)
    fd = os.open(cache_path(data, directory), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


def _isolated(data: str, spec: dict, timeout: float) -> dict:
    """``run_spec`` in a fresh Python process (its own memory peak, no leftovers)."""
    import tempfile

    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS),
               MKL_NUM_THREADS=str(THREADS))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "worker", data,
                               json.dumps(spec), out], env=env, timeout=timeout,
                              stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0 or not os.path.exists(out):
            tail = proc.stderr.strip().splitlines()[-3:]
            raise RuntimeError(f"exit status {proc.returncode}: {' | '.join(tail)}")
        with open(out, encoding="utf-8") as f:
            return json.load(f)


def run(data: str, specs: Sequence[dict], directory: str = RESULTS, *, isolate=None,
        timeout: float = 7200, echo=print) -> List[dict]:
    """Run each spec once (finished runs are read back from the cache); the records.

    A method that fails (a peer that crashes, a package that breaks) is recorded with its
    error and retried on the next call, never raised."""
    isolate = bench_size() == "full" if isolate is None else isolate
    split = None
    out = []
    for spec in specs:
        key = spec_key(data, spec)
        done = finished(data, directory)
        if key in done and "error" not in done[key]:
            out.append(done[key])
            continue
        what = spec.get("name") or f"{spec['recipe']} lr={spec['lr']:g}"
        echo(f"{data}: {what} ...")
        load = os.getloadavg()[0]  # other jobs on the machine show in the timings
        try:
            if isolate:
                load_split(data)  # built once, in this process
                rec = _isolated(data, spec, timeout)
            else:
                split = split or load_split(data)
                rec = run_spec(split, spec, echo=echo)
        except Exception as e:  # noqa: BLE001 (one method failing must not stop the table)
            rec = {"method": what, "error": f"{type(e).__name__}: {e}"}
            echo(f"  failed: {rec['error']}")
        else:
            echo(f"  test map@100 {rec['test_map@100']:.4f}, train {rec['train_time']:.1f}s, "
                 f"{rec['predict_ms_per_1000']:.0f} ms / 1000, {rec['peak_mb']:.0f} MB")
        rec.update({"key": key, "spec": spec, "data": data, "size": bench_size(),
                    "load_before": load, "load_after": os.getloadavg()[0]})
        _append(data, directory, rec)
        out.append(rec)
    return out


def peer_specs(names: Optional[Sequence[str]] = None, echo=print) -> List[dict]:
    return [{"kind": "peer", "name": n}
            for n in _peers.available(names or _peers.PEERS, echo=echo)]


def recipe_specs(recipes: Sequence[str] = RECIPES, lrs: Sequence[float] = LRS, seed: int = 0,
                 **overrides) -> List[dict]:
    """One run per recipe and learning rate; ``overrides`` replace the size's settings
    (epochs, hidden, dim, batch_size)."""
    s = settings()
    s.update({k: int(v) for k, v in overrides.items() if v is not None})
    fixed = {k: s[k] for k in ("epochs", "hidden", "dim", "batch_size")}
    order = {r: sorted(map(float, lrs), key=lambda lr: lr != FIRST_LR.get(r)) for r in recipes}
    return [{"kind": "labelemb", "recipe": r, "lr": order[r][i], "seed": int(seed), **fixed}
            for i in range(len(lrs)) for r in recipes]


# ---------------------------------------------------------------- report
def _reach_time(recipe_row: dict, target: float) -> Optional[float]:
    """Embedding time + training seconds of the first epoch whose validation MAP@100
    reaches ``target`` (None: never within the epochs run); with neighbour votes, plus the
    seconds to build that epoch's votes."""
    for e in recipe_row["epochs"]:
        if e["map@100"] >= target:
            return recipe_row["embed_time"] + e["elapsed"] + (e.get("votes_time") or 0.0)
    return None


def summarize(data: str, directory: str = RESULTS) -> dict:
    """The table's rows (each peer; each recipe at its lr of best validation MAP@100), the
    failures, and the best recipe against the best peer."""
    done = list(finished(data, directory).values())
    peers = [r for r in done if r.get("kind") == "peer"]
    chosen: Dict[str, dict] = {}
    for r in done:
        if r.get("kind") == "labelemb" and r.get("seed", 0) == 0:
            c = chosen.get(r["recipe"])
            if c is None or r["valid_map@100"] > c["valid_map@100"]:
                chosen[r["recipe"]] = r
    recipes = [chosen[r] for r in RECIPES if r in chosen] + \
        [v for k, v in chosen.items() if k not in RECIPES]
    ok = {r["method"] for r in peers + recipes}
    failed = [r for r in done if "error" in r and r["method"] not in ok]
    out = {"data": data, "size": bench_size(), "rows": peers + recipes, "failed": failed,
           "grid": {r: sorted({x["lr"] for x in done if x.get("recipe") == r})
                    for r in chosen}}
    trained = [p for p in peers if p["method"] != "popularity"]
    if trained and recipes:
        bp = max(trained, key=lambda r: r["valid_map@100"])
        br = max(recipes, key=lambda r: r["valid_map@100"])
        for r in recipes:
            r["to_best_peer"] = _reach_time(r, bp["valid_map@100"])
        out["head_to_head"] = {
            "best_recipe": br["method"], "best_peer": bp["method"],
            "recipe_test_map@100": br["test_map@100"], "peer_test_map@100": bp["test_map@100"],
            "ratio": br["test_map@100"] / bp["test_map@100"],
            "recipe_train_time": br["train_time"], "peer_train_time": bp["train_time"],
            "recipe_to_peer_best": _reach_time(br, bp["valid_map@100"]),
            "peer_to_recipe_best": (bp["train_time"]
                                    if bp["valid_map@100"] >= br["valid_map@100"] else None)}
    return out


def _secs(x: Optional[float]) -> str:
    return "not reached" if x is None else f"{x:.1f} s"


def markdown(summary: dict, split: Optional[Split] = None) -> str:
    s = summary
    lines = [f"### {s['data']} ({s['size']} mode)", ""]
    if split is not None:
        lines += [split.describe() + ".", ""]
    lines += ["| method | P@1 | P@5 | nDCG@5 | MAP@100 | PSP@5 | tail P@5 | train s | "
              "predict ms / 1k | peak MB | load | notes |", "|---|" + "---|" * 11]
    for r in s["rows"]:
        note = ""
        if r["kind"] == "labelemb":
            grid = "/".join(f"{x:g}" for x in s["grid"].get(r["recipe"], [r["lr"]]))
            note = (f"lr {r['lr']:g} (of {grid}), best epoch {r['best_epoch']}/{len(r['epochs'])} "
                    f"({r['train_time_all_epochs']:.0f} s all epochs), embedding "
                    f"{r['embed_time']:.1f} s; reaches the best peer: "
                    f"{_secs(r.get('to_best_peer'))}")
        elif r.get("prep_time"):
            note = f"+ {r['prep_time']:.1f} s writing its input file"
        lines.append(f"| {r['method']} | " + " | ".join(
            f"{r['test_' + m]:.4f}" for m in METRICS) +
            f" | {r['train_time']:.1f} | {r['predict_ms_per_1000']:.0f} | {r['peak_mb']:.0f} | "
            f"{r.get('load_before', float('nan')):.1f} | {note} |")
    for r in s["failed"]:
        lines.append(f"| {r['method']} | failed: {r['error']} |" + " |" * 11)
    h = s.get("head_to_head")
    if h:
        lines += ["", f"Best labelemb recipe ({h['best_recipe']}) against the best peer "
                  f"({h['best_peer']}), both chosen on validation MAP@100: test MAP@100 "
                  f"**{h['recipe_test_map@100']:.4f}** vs **{h['peer_test_map@100']:.4f}** "
                  f"({h['ratio']:.3f}x); training {h['recipe_train_time']:.1f} s vs "
                  f"{h['peer_train_time']:.1f} s. Time to reach the other's best validation "
                  f"MAP@100: the recipe {_secs(h['recipe_to_peer_best'])}, the peer "
                  f"{_secs(h['peer_to_recipe_best'])}."]
    return "\n".join(lines) + "\n"


def write_report(data: str, directory: str = RESULTS) -> str:
    """``xmc_<data>.json`` (every record, the machine, the versions) and ``xmc_<data>.md``."""
    import platform

    summary = summarize(data, directory)
    try:
        split = load_split(data)
    except Exception:  # noqa: BLE001 (the table stands without the description)
        split = None
    text = markdown(summary, split)
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    versions = ", ".join(f"{k} {v}" for k, v in _peers.versions().items())
    header = (f"Machine: {machine()}; {THREADS} threads per method; numpy {np.__version__}, "
              f"torch {torch_version}, {versions}"
              f"; {', '.join(f'{k}={v}' for k, v in env.items() if v)}.\n\n")
    tag = "" if bench_size() == "full" else f"{bench_size()}_"
    with open(os.path.join(directory, f"xmc_{tag}{data}.md"), "w", encoding="utf-8") as f:
        f.write(header + text)
    with open(os.path.join(directory, f"xmc_{tag}{data}.json"), "w", encoding="utf-8") as f:
        json.dump({**summary, "machine": machine(), "python": platform.python_version(),
                   "torch": torch_version, "versions": _peers.versions(), "env": env,
                   "settings": settings(), "split": split.describe() if split else None,
                   "meta": split.meta if split else None}, f, indent=1, default=float)
    return header + text


# ---------------------------------------------------------------- command line
def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("peers", "recipes", "report", "all", "worker"))
    ap.add_argument("data", choices=DATASETS)
    ap.add_argument("spec", nargs="?", help=argparse.SUPPRESS)
    ap.add_argument("out", nargs="?", help=argparse.SUPPRESS)
    ap.add_argument("--peers", nargs="+", choices=_peers.PEERS, default=None)
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES))
    ap.add_argument("--lrs", nargs="+", type=float, default=list(LRS))
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--hidden", type=int, default=None)
    ap.add_argument("--directory", default=RESULTS)
    ap.add_argument("--in-process", action="store_true", help="no worker process per method")
    a = ap.parse_args(argv)
    if a.command == "worker":  # one method in this process; its record to a JSON file
        rec = run_spec(load_split(a.data), json.loads(a.spec))
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(rec, f)
        return
    isolate = False if a.in_process else None
    if a.command in ("peers", "all"):
        run(a.data, peer_specs(a.peers), a.directory, isolate=isolate)
    if a.command in ("recipes", "all"):
        run(a.data, recipe_specs(a.recipes, a.lrs, epochs=a.epochs, hidden=a.hidden), a.directory,
            isolate=isolate)
    if a.command in ("report", "all"):
        print(write_report(a.data, a.directory))


if __name__ == "__main__":
    main()
