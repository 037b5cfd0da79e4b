"""Recipes for large label sets on sparse TF-IDF inputs: variants measured against the tuned
sigmoid baseline and the extreme-classification peers of ``xmc.py``, on the same splits.

Each run is described by a spec (recipe, lr, seed, epochs, hidden, dim, batch_size and the
variant's options: ``schedule`` ("cosine"), ``warmup``, ``dropout``, ``weight_decay``,
``wide`` (a sparse linear path beside the MLP), ``vec_lr`` / ``first_lr`` (rate multipliers
of the label vectors / the sparse first layer), ``soft`` (PMI soft targets),
``neighbours`` with ``nb_t`` and ``nb_w`` (neighbour votes at prediction: k, temperature,
weight), ``threads``), trained by ``labelemb.torch.fit`` on ``X_train`` with the
validation split scored after every epoch (fused with the votes when the spec has them);
test figures are those of the best validation epoch. Runs are cached in
``results/xmc_recipes_<size>_<data>.jsonl``.

Data (``DATA``): ``wordnet`` (labels seen at least 5 times, near-root labels on more than 30%
of the samples dropped), ``wordnet-all`` (every label seen in training, same cap),
``debian-deps`` and ``debtags`` (``xmc.py``'s splits), ``debian-deps-all`` (every label seen
in training), ``wordnet-lsa`` and ``debian-deps-lsa`` (dense inputs: 256 LSA components).

Usage::

    LABELEMB_BENCH=full python benchmarks/xmc_recipes.py explore wordnet
    LABELEMB_BENCH=full python benchmarks/xmc_recipes.py try wordnet --spec \
        '{"recipe": "lowrank-softmax", "lr": 0.002, "hidden": 2048, "epochs": 6, \
          "schedule": "cosine", "patience": 20, "neighbours": 50, "nb_t": 0.05}'
    LABELEMB_BENCH=full python benchmarks/xmc_recipes.py peers wordnet [--tag idle]
    LABELEMB_BENCH=full python benchmarks/xmc_recipes.py steps wordnet --hidden 2048
    LABELEMB_BENCH=full python benchmarks/xmc_recipes.py report all
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import xmc  # noqa: E402
from _util import RESULTS, bench_size, read_runs  # noqa: E402

# data name -> (xmc.py split, or the loader and its options)
DATA = {
    "wordnet": ("load_wordnet", {"min_count": 5, "max_label_fraction": 0.3}),
    "wordnet-all": ("load_wordnet", {"min_count": 1, "max_label_fraction": 0.3}),
    "debian-deps": ("xmc", {}),
    "debian-deps-all": ("load_debian_deps", {"min_count": 1}),
    "debtags": ("xmc", {}),
    # dense inputs: the rows of the set above projected on 256 LSA components of the
    # training TF-IDF (TruncatedSVD), L2-normalised
    "wordnet-lsa": ("lsa", {"base": "wordnet", "components": 256}),
    "debian-deps-lsa": ("lsa", {"base": "debian-deps", "components": 256}),
    "debian-deps-all-lsa": ("lsa", {"base": "debian-deps-all", "components": 256}),
}
BASE = {"epochs": 5, "batch_size": 256, "hidden": 512, "dim": 256}
# threads per run (several runs share the machine's cores)
THREADS = int(os.environ.get("XMC_RECIPES_THREADS", "1"))


# ---------------------------------------------------------------- data
def load(name: str) -> xmc.Split:
    """The split of a data variant (cached as ``.npz``, as ``xmc.load_split`` does)."""
    how, kwargs = DATA[name]
    if how == "lsa":
        return load_lsa(name, **kwargs)
    if how == "xmc" or bench_size() != "full":
        return xmc.load_split(name.replace("-all", ""))
    root = os.environ.get("LABELEMB_BENCH_CACHE", "/tmp/labelemb-bench")
    cache = os.path.join(root, "xmc_recipes", name)
    meta_path = os.path.join(cache, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        return xmc.Split(name, meta, **{p: sp.load_npz(os.path.join(cache, p + ".npz"))
                                        for p in xmc.Split.PARTS})
    import labelemb.datasets as ds

    d = getattr(ds, how)(**kwargs)
    parts = {p: getattr(d, p) for p in xmc.Split.PARTS}
    meta = {"source": getattr(d, "source", name), "loader": how, **kwargs}
    os.makedirs(cache, exist_ok=True)
    for p in xmc.Split.PARTS:
        tmp = os.path.join(cache, f".{p}.{os.getpid()}.npz")
        sp.save_npz(tmp, sp.csr_matrix(parts[p], dtype=np.float32))
        os.replace(tmp, os.path.join(cache, p + ".npz"))
    with open(meta_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(meta, f)
    os.replace(meta_path + ".tmp", meta_path)
    return xmc.Split(name, meta, **parts)


def load_lsa(name: str, base: str, components: int) -> xmc.Split:
    """``base`` with dense inputs: LSA of the training TF-IDF, rows L2-normalised."""
    split = load(base)
    root = os.environ.get("LABELEMB_BENCH_CACHE", "/tmp/labelemb-bench")
    path = os.path.join(root, "xmc_recipes", f"{name}-{bench_size()}.npz")
    xs = ("X_train", "X_valid", "X_test")
    if os.path.exists(path):
        with np.load(path) as z:
            dense = {p: z[p] for p in xs}
    else:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.preprocessing import normalize

        k = min(components, split.X_train.shape[1] - 1)
        svd = TruncatedSVD(k, algorithm="randomized", n_iter=4, random_state=0)
        svd.fit(split.X_train)
        dense = {p: normalize(svd.transform(getattr(split, p))).astype(np.float32)
                 for p in xs}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + f".{os.getpid()}.npz"
        np.savez(tmp, **dense)
        os.replace(tmp, path)
    for p in xs:
        setattr(split, p, dense[p])
    split.name = name
    return split


# ---------------------------------------------------------------- one run
def build(split: xmc.Split, spec: dict, emb):
    """The model of ``spec``: a sparse MLP (optionally with a linear path beside it) and the
    recipe's head."""
    import torch
    from torch import nn

    from labelemb.torch import make_model, mlp
    from labelemb.torch.sparse import SparseLinear

    torch.manual_seed(spec["seed"])
    L, F = split.Y_train.shape[1], split.X_train.shape[1]
    backbone = mlp(F, (spec["hidden"],), dropout=spec.get("dropout", 0.0),
                   sparse=sp.issparse(split.X_train))
    if spec.get("wide"):
        class WideDeep(nn.Module):
            def __init__(self):
                super().__init__()
                self.deep = backbone
                self.wide = SparseLinear(F, spec["hidden"], bias=False, sparse_grad=True)

            def forward(self, x):
                return self.deep(x) + self.wide(x)

        backbone = WideDeep()
    return make_model(backbone, spec["hidden"], spec["recipe"], embedding=emb, n_labels=L,
                      **spec.get("head", {}))


def soft_target_loss(emb, alpha: float, neighbours: int = 10, temperature: float = 0.1):
    """Softmax cross-entropy against each row's label set spread to the labels' PMI
    neighbours: ``(1 - alpha)`` on the set (uniform), ``alpha`` on each label's
    ``neighbours`` nearest label vectors (weights: softmax of cosine / ``temperature``)."""
    import torch

    from labelemb.torch.losses import sparse_softmax_cross_entropy

    E = torch.from_numpy(np.ascontiguousarray(emb.vectors, dtype=np.float32))
    E = torch.nn.functional.normalize(E, dim=1)
    sim = E @ E.t()
    sim.fill_diagonal_(-np.inf)
    top, nbr = sim.topk(neighbours, dim=1)
    w = torch.softmax(top / temperature, dim=1)

    def loss(out, y):
        z = out.float()
        base = sparse_softmax_cross_entropy(z, y)
        rows = y.row_ids()
        lengths = y.lengths.to(z.device).clamp_min(1).to(z.dtype)
        valid = (y.lengths > 0).sum().clamp_min(1)
        spread = (z[rows[:, None], nbr[y.indices]] * w[y.indices]).sum(1)
        lse = torch.logsumexp(z, dim=1)
        soft = (lse[rows] - spread).div(lengths[rows]).sum() / valid
        return (1 - alpha) * base + alpha * soft, valid

    return loss


def optimizer_for(spec: dict, model):
    """AdamW (lazy rows for the sparse layer); the label vectors at ``vec_lr`` times the
    rate, the sparse first layer at ``first_lr`` times the rate, when the spec asks."""
    from labelemb.torch.sparse import SparseAdamW, SparseLinear

    special = []  # (parameters, rate multiplier, weight decay or None)
    if spec.get("vec_lr"):
        special.append(([p for n, p in model.named_parameters()
                         if n.endswith("label_vectors")], spec["vec_lr"], 0.0))
    if spec.get("first_lr"):
        special.append(([p for m in model.modules() if isinstance(m, SparseLinear)
                         for p in m.parameters()], spec["first_lr"], None))
    special = [s for s in special if s[0]]
    if not special:
        return "adamw"
    ids = {id(p) for params, _, _ in special for p in params}

    def make(groups, lr):
        out = []
        for g in groups:
            rest = [p for p in g["params"] if id(p) not in ids]
            if rest:
                out.append({**g, "params": rest})
            for params, mult, wd in special:
                mine = [p for p in g["params"] if any(p is q for q in params)]
                if mine:
                    out.append({**g, "params": mine, "lr": lr * mult,
                                **({} if wd is None else {"weight_decay": wd})})
        return SparseAdamW(out, lr=lr)

    return make


def run_recipe(split: xmc.Split, spec: dict, echo=print) -> dict:
    """Train one spec; test metrics at the best validation epoch, and costs."""
    import warnings

    import torch

    import labelemb
    from labelemb.torch import fit, predict

    threads = spec.get("threads", THREADS)
    torch.set_num_threads(threads)
    L = split.Y_train.shape[1]
    base = xmc._reset_peak()
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        emb = labelemb.fit_embeddings(split.Y_train, dim=min(spec["dim"], L - 1), n_labels=L,
                                      seed=spec["seed"], num_threads=threads)
    embed_time = time.perf_counter() - t
    model = build(split, spec, emb)
    import labelemb.torch.train as train_module

    recipe_loss = train_module.make_loss  # put back after this run
    if spec.get("soft"):
        soft = soft_target_loss(emb, spec["soft"], spec.get("soft_k", 10),
                                spec.get("soft_t", 0.1))
        train_module.make_loss = lambda recipe, targets=None: soft
    best = {"map@100": -1.0, "state": None, "epoch": 0}
    tag = spec_name(spec)

    def fused_valid(model):
        """Neighbour votes of this epoch's model and the fused validation MAP@100."""
        from labelemb.torch.neighbours import NeighbourVotes

        t = time.perf_counter()
        votes = NeighbourVotes.from_model(
            model, split.X_train, split.Y_train, k=spec["neighbours"],
            temperature=spec.get("nb_t", 0.1), weight=spec.get("nb_w", 0.5))
        spent = time.perf_counter() - t
        vidx, _ = predict(model, split.X_valid, emb, k=min(xmc.K, L), device="cpu",
                          neighbours=votes)
        return votes, spent, xmc.score(vidx, split.Y_valid, split.counts,
                                       split.X_train.shape[0])["map@100"]

    def keep_best(history, model):
        rec = history.epochs[-1]
        value = rec["map@100"]
        if spec.get("neighbours"):
            rec["map@100_model_only"] = value
            _, rec["votes_time"], value = fused_valid(model)
            rec["map@100"] = value  # what the predictor reaches (reach times use it)
            model.train()
        echo(f"  {tag} epoch {rec['epoch']} {rec['train_time']:.1f}s "
             f"valid map@100 {value:.4f} p@1 {rec['p@1']:.4f}", flush=True)
        if value > best["map@100"]:
            best.update({"map@100": value, "epoch": rec["epoch"],
                         "state": copy.deepcopy(model.state_dict())})
        # stop once validation has fallen past the best (patience epochs)
        return rec["epoch"] - best["epoch"] >= spec.get("patience", 1)

    try:
        h = fit(model, (split.X_train, split.Y_train), emb,
                valid=(split.X_valid, split.Y_valid), epochs=spec["epochs"], lr=spec["lr"],
                batch_size=spec["batch_size"], device="cpu", seed=spec["seed"],
                progress=False, callbacks=[keep_best], optimizer=optimizer_for(spec, model),
                weight_decay=spec.get("weight_decay", 0.0),
                schedule=spec.get("schedule", "constant"), warmup_steps=spec.get("warmup", 0),
                sampled_labels=spec.get("sampled"))
    finally:  # the soft-target loss must not outlive its run (later fits in this process)
        train_module.make_loss = recipe_loss
    model.load_state_dict(best["state"])
    votes, votes_time, extra = None, 0.0, {}
    if spec.get("neighbours"):
        votes, votes_time, _ = fused_valid(model)
        # the model alone, for the record
        idx, _ = predict(model, split.X_test, emb, k=min(xmc.K, L), device="cpu")
        extra = {"model_only": xmc._test_record(split, idx)}
    t = time.perf_counter()
    idx, _ = predict(model, split.X_test, emb, k=min(xmc.K, L), device="cpu",
                     neighbours=votes)
    pred = time.perf_counter() - t
    peak = xmc._peak_since(base)
    epochs = [{k: e.get(k) for k in ("epoch", "loss", "p@1", "p@5", "map@100", "train_time",
                                     "elapsed", "votes_time", "map@100_model_only")}
              for e in h.epochs]
    return {"method": f"labelemb {tag}", "kind": "labelemb", "recipe": tag,
            "lr": float(spec["lr"]), "seed": int(spec["seed"]), "embed_time": embed_time,
            "train_time": embed_time + epochs[best["epoch"] - 1]["elapsed"] + votes_time,
            "train_time_all_epochs": embed_time + epochs[-1]["elapsed"] + votes_time,
            "votes_time": votes_time, **extra,
            "s_per_epoch": float(np.median([e["train_time"] for e in epochs])),
            "best_epoch": best["epoch"], "epochs": epochs,
            "predict_ms_per_1000": 1e6 * pred / max(1, split.X_test.shape[0]),
            "peak_mb": peak / 2**20, "valid_map@100": best["map@100"],
            **xmc._test_record(split, idx)}


# A run's options in its name, in this order: (option, value that adds no tag, its tag).
_TAGS = (("wide", None, lambda v: "wide"), ("dim", BASE["dim"], lambda v: f"d{v}"),
         ("vec_lr", None, lambda v: f"vlr{v:g}"), ("first_lr", None, lambda v: f"flr{v:g}"),
         ("dropout", None, lambda v: f"do{v:g}"), ("weight_decay", None, lambda v: f"wd{v:g}"),
         ("soft", None, lambda v: f"soft{v:g}"), ("neighbours", None, lambda v: f"nb{v}"),
         ("schedule", "constant", str), ("hidden", BASE["hidden"], lambda v: f"h{v}"),
         ("sampled", None, lambda v: f"sampled{v}"), ("variant", None, lambda v: v.split()[0]))


def spec_name(spec: dict) -> str:
    """The recipe and its options in one word: ``lowrank-softmax+wide+d512+vlr10+do0.3``."""
    parts = [spec["recipe"]]
    for key, plain, tag in _TAGS:
        value = spec.get(key, plain)
        if value and value != plain:
            parts.append(tag(value))
    for k, v in sorted(spec.get("head", {}).items()):
        parts.append(f"{k}{v}")
    return "+".join(parts)


def spec(recipe: str, lr: float, seed: int = 0, **options) -> dict:
    s = {"kind": "labelemb", "recipe": recipe, "lr": float(lr), "seed": int(seed), **BASE}
    s.update(options)
    return s


# ---------------------------------------------------------------- runs and their cache
def run(data: str, specs: Sequence[dict], directory: str = RESULTS) -> List[dict]:
    """Each spec once (finished runs read back from ``results/xmc_recipes_<data>.jsonl``)."""
    out, split = [], None
    path = os.path.join(directory, f"xmc_recipes_{bench_size()}_{data}.jsonl")
    for s in specs:
        key = xmc.spec_key(data, s)
        done = _finished(path)
        if key in done:
            out.append(done[key])
            continue
        split = split or load(data)
        what = s.get("name") or f"{spec_name(s)} lr={s['lr']:g} seed={s['seed']}"
        print(f"{data}: {what} ...", flush=True)
        load_before = os.getloadavg()[0]
        try:
            rec = (xmc.run_peer(_sparse_inputs(split), s["name"]) if s["kind"] == "peer"
                   else run_recipe(split, s))
        except Exception as e:  # noqa: BLE001 (one failure must not stop the table)
            print(f"  failed: {type(e).__name__}: {e}", flush=True)
            continue
        print(f"  valid map@100 {rec['valid_map@100']:.4f} test {rec['test_map@100']:.4f}, "
              f"train {rec['train_time']:.1f}s", flush=True)
        rec.update({"key": key, "spec": s, "data": data, "size": bench_size(),
                    "load_before": load_before, "load_after": os.getloadavg()[0]})
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        out.append(rec)
    return out


def _sparse_inputs(split: xmc.Split) -> xmc.Split:
    """``split`` with CSR inputs (the peers take scipy sparse rows only)."""
    if sp.issparse(split.X_train):
        return split
    out = copy.copy(split)
    for p in ("X_train", "X_valid", "X_test"):
        setattr(out, p, sp.csr_matrix(getattr(split, p)))
    return out


def _finished(path: str) -> Dict[str, dict]:
    return read_runs(path)


PLANS = {
    "explore": lambda: [spec("bce", 1e-3), spec("lowrank-softmax", 1e-3),
                        spec("softmax", 1e-3), spec("hybrid", 1e-3),
                        spec("lowrank-hybrid", 1e-3), spec("lowrank", 3e-3),
                        spec("bce", 3e-3)],
    "explore2": lambda: [spec("lowrank-softmax", 1e-3, vec_lr=10),
                         spec("lowrank-softmax", 1e-3, wide=True),
                         spec("softmax", 1e-3, wide=True),
                         spec("lowrank-hybrid", 1e-3, wide=True),
                         spec("lowrank-softmax", 3e-3)],
    "seeds-bce": lambda: [spec("bce", 3e-3, seed, epochs=8) for seed in (1, 2)],
    "seeds-lsm": lambda: [spec("lowrank-softmax", 1e-3, seed) for seed in (1, 2)],
    "debtags": lambda: [spec(r, lr, seed, epochs=8) for seed in (0, 1, 2)
                        for r, lr in (("bce", 1e-3), ("lowrank-softmax", 1e-3),
                                      ("hybrid", 1e-3))] + [spec("bce", 3e-3, epochs=8)],
    "debtags2": lambda: [spec("bce", 3e-3, seed, epochs=8) for seed in (1, 2)] +
    [spec("hybrid", 3e-3, epochs=8)],
    "hybrid-s1": lambda: [spec("hybrid", 3e-3, 1, epochs=8)],
    "hybrid-s2": lambda: [spec("hybrid", 3e-3, 2, epochs=8)],
    "full": lambda: [spec("lowrank-softmax", 1e-3, epochs=3), spec("bce", 3e-3, epochs=3)],
    "hybrids": lambda: [spec("lowrank-hybrid", 1e-3), spec("hybrid", 3e-3, epochs=8)],
    "cos": lambda: [spec("lowrank-softmax", 2e-3, epochs=6, schedule="cosine", patience=6)],
    "tune": lambda: [spec("bce", 3e-3, epochs=8), spec("lowrank-softmax", 3e-3, epochs=8)],
}


# ---------------------------------------------------------------- cost of a step
def step_times(data: str, recipes: Sequence[str] = ("bce", "lowrank-softmax", "hybrid"),
               steps: int = 20, rounds: int = 3, hidden: int = BASE["hidden"],
               dim: int = BASE["dim"], sampled: Sequence[int] = ()) -> Dict[str, float]:
    """Median seconds per training step (forward, loss, backward, optimizer) of each recipe
    on the same sparse MLP and the same batches of ``data``, recipes interleaved per round
    (the cost of an epoch is ``steps per epoch x`` this). ``sampled``: also
    ``lowrank-softmax`` scoring that many labels per step (``fit(sampled_labels=)``)."""
    import warnings

    import torch

    import labelemb
    from labelemb.torch.data import SparseLabels
    from labelemb.torch.optim import make_optimizer
    from labelemb.torch.recipes import RECIPES as TABLE
    from labelemb.torch.recipes import make_loss
    from labelemb.torch.sampling import LabelSampler
    from labelemb.torch.sparse import SparseAdamW, csr_batch

    torch.set_num_threads(THREADS)
    split = load(data)
    L = split.Y_train.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        emb = labelemb.fit_embeddings(split.Y_train, dim=dim, n_labels=L,
                                      num_threads=THREADS)
    bs, rng = BASE["batch_size"], np.random.default_rng(0)
    rows = [np.sort(rng.choice(split.X_train.shape[0], bs, replace=False))
            for _ in range(steps)]
    batches = [(csr_batch(split.X_train[r]), SparseLabels.from_scipy(split.Y_train[r]))
               for r in rows]
    configs = {r: r for r in recipes}
    configs.update({f"lowrank-softmax+sampled{c}": "lowrank-softmax" for c in sampled})
    samplers = {f"lowrank-softmax+sampled{c}": LabelSampler(L, c) for c in sampled}
    models = {name: build(split, spec(r, 1e-3, hidden=hidden, dim=dim), emb)
              for name, r in configs.items()}
    for m in models.values():
        head = m[1]
        if hasattr(head, "init_prior"):
            head.init_prior(split.counts, split.X_train.shape[0])
    opts = {name: make_optimizer("adamw", m, 1e-3, 0.0) for name, m in models.items()}
    losses = {name: make_loss(TABLE[r]) for name, r in configs.items()}
    times: Dict[str, List[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name in configs:
            model, sampler = models[name], samplers.get(name)
            t = time.perf_counter()
            for x, y in batches:
                if sampler is not None:  # as fit does it
                    ids, offsets, y = sampler(y)
                    model[1].sample = (ids, offsets, isinstance(opts[name], SparseAdamW))
                loss, _ = losses[name](model(x), y)
                opts[name].zero_grad(set_to_none=True)
                loss.backward()
                opts[name].step()
            times[name].append((time.perf_counter() - t) / steps)
    return {name: float(np.median(v)) for name, v in times.items()}


# ---------------------------------------------------------------- report
def _records(data: str, directory: str = RESULTS) -> List[dict]:
    path = os.path.join(directory, f"xmc_recipes_{bench_size()}_{data}.jsonl")
    return list(_finished(path).values())


def _xmc_peers(data: str, directory: str = RESULTS) -> List[dict]:
    """The peers of ``xmc.py``'s table on the same split (debian-deps, debtags)."""
    if DATA[data][0] != "xmc":
        return []
    return [r for r in xmc.finished(data, directory).values()
            if r.get("kind") == "peer" and "error" not in r]


def summary(data: str, directory: str = RESULTS) -> dict:
    """Per configuration (recipe, options, lr): the seeds' test figures at their best
    validation epochs, mean and standard deviation; the peers; the best peer by validation
    MAP@100 and the seconds each configuration needs to reach it."""
    recs = _records(data, directory)
    peers = {r["method"]: r for r in _xmc_peers(data, directory)}
    peers.update({r["method"]: r for r in recs if r["kind"] == "peer"})
    configs: Dict[str, List[dict]] = {}
    for r in recs:
        if r["kind"] == "labelemb":
            configs.setdefault(f"{spec_name(r['spec'])} lr={r['lr']:g} ep={r['spec']['epochs']}",
                               []).append(r)
    trained = [p for p in peers.values() if p["method"] != "popularity"]
    best_peer = max(trained, key=lambda p: p["valid_map@100"]) if trained else None
    rows = []
    for name, runs in configs.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        row = {"config": name, "seeds": [r["seed"] for r in runs],
               "best_epochs": [r["best_epoch"] for r in runs],
               "epochs_run": [len(r["epochs"]) for r in runs],
               "s_per_epoch": float(np.median([r["s_per_epoch"] for r in runs])),
               "train_time": float(np.median([r["train_time"] for r in runs]))}
        for m in xmc.METRICS:
            v = np.array([r["test_" + m] for r in runs])
            row[m], row[m + "_std"] = float(v.mean()), float(v.std(ddof=1) if len(v) > 1 else 0)
        row["test_map@100_seeds"] = [r["test_map@100"] for r in runs]
        row["valid_map@100"] = float(np.mean([r["valid_map@100"] for r in runs]))
        if best_peer is not None:
            reach = [xmc._reach_time(r, best_peer["valid_map@100"]) for r in runs]
            row["to_best_peer"] = None if any(t is None for t in reach) else \
                float(np.median(reach))
        rows.append(row)
    rows.sort(key=lambda r: -r["map@100"])
    return {"data": data, "rows": rows, "peers": sorted(peers.values(),
                                                         key=lambda p: -p["test_map@100"]),
            "best_peer": best_peer["method"] if best_peer else None}


def markdown(sm: dict) -> str:
    lines = [f"### {sm['data']}", "",
             "| method | seeds | MAP@100 (mean ± std) | P@1 | P@5 | PSP@5 | tail P@5 | "
             "best epoch / run | s / epoch | train s | s to best peer |", "|---" * 11 + "|"]
    for r in sm["rows"]:
        reach = r.get("to_best_peer")
        lines.append(
            f"| {r['config']} | {len(r['seeds'])} | {r['map@100']:.4f} ± "
            f"{r['map@100_std']:.4f} | {r['p@1']:.4f} | {r['p@5']:.4f} | {r['psp@5']:.4f} | "
            f"{r['tail_p@5']:.4f} | {'/'.join(map(str, r['best_epochs']))} of "
            f"{'/'.join(map(str, r['epochs_run']))} | {r['s_per_epoch']:.0f} | "
            f"{r['train_time']:.0f} | {'not reached' if reach is None else f'{reach:.0f}'} |")
    for p in sm["peers"]:
        lines.append(f"| {p['method']} (peer) | 1 | {p['test_map@100']:.4f} | "
                     f"{p['test_p@1']:.4f} | {p['test_p@5']:.4f} | {p['test_psp@5']:.4f} | "
                     f"{p['test_tail_p@5']:.4f} | - | - | {p['train_time']:.0f} | - |")
    return "\n".join(lines) + "\n"


def write_report(datas: Sequence[str], directory: str = RESULTS) -> str:
    text = "\n".join(markdown(summary(d, directory)) for d in datas)
    with open(os.path.join(directory, f"xmc_recipes_{bench_size()}_report.md"), "w",
              encoding="utf-8") as f:
        f.write(text)
    return text


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("peers", "report", "steps", "try", *PLANS))
    ap.add_argument("data", choices=(*DATA, "all"))
    ap.add_argument("--peers", nargs="+", default=None, help="peers to run (default all)")
    ap.add_argument("--hidden", type=int, default=BASE["hidden"],
                    help="with 'steps': the MLP's width")
    ap.add_argument("--dim", type=int, default=BASE["dim"],
                    help="with 'steps': the label vectors' dimension")
    ap.add_argument("--sampled", type=int, nargs="*", default=(),
                    help="with 'steps': also lowrank-softmax scoring this many labels a step")
    ap.add_argument("--recipes", nargs="+", default=("bce", "lowrank-softmax", "hybrid"),
                    help="with 'steps': the recipes timed")
    ap.add_argument("--tag", default=None,
                    help="with 'peers': run them again under this tag (e.g. 'idle')")
    ap.add_argument("--spec", action="append", default=[],
                    help="with 'try': a JSON spec, e.g. '{\"recipe\": \"bce\", \"lr\": 0.003}'"
                         " (recipe, lr, seed and any option of spec(); repeatable)")
    a = ap.parse_args(argv)
    if a.command == "peers":
        specs = xmc.peer_specs(a.peers)
        if a.tag:  # a new run of the same peers (a later run replaces the earlier)
            specs = [dict(s, tag=a.tag) for s in specs]
        run(a.data, specs)
    elif a.command == "steps":
        out = step_times(a.data, a.recipes, hidden=a.hidden, dim=a.dim, sampled=a.sampled)
        print(json.dumps({"data": a.data, "load": os.getloadavg()[0], **out}))
        with open(os.path.join(RESULTS, f"xmc_recipes_{bench_size()}_steps.jsonl"), "a",
                  encoding="utf-8") as f:
            f.write(json.dumps({"data": a.data, "threads": THREADS, "hidden": a.hidden,
                                "dim": a.dim, "load": os.getloadavg()[0], **out}) + "\n")
    elif a.command == "report":
        print(write_report(DATA if a.data == "all" else [a.data]))
    elif a.command == "try":
        specs = [json.loads(t) for t in a.spec]
        run(a.data, [spec(d.pop("recipe"), d.pop("lr"), d.pop("seed", 0), **d) for d in specs])
    elif a.command in PLANS:
        run(a.data, PLANS[a.command]())


if __name__ == "__main__":
    main()
