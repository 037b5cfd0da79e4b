"""Recipes for large label sets on sparse TF-IDF inputs: variants measured against the tuned
sigmoid baseline and the extreme-classification peers of ``xmc.py``, on the same splits.

Each run is described by a spec (recipe, lr, seed, epochs, hidden, dim, batch_size and the
variant's options: ``dropout``, ``wide``, ``vec_lr``), trained by ``labelemb.torch.fit`` on
``X_train`` with the validation split scored after every epoch; test figures are those of the
best validation epoch. Runs are cached in ``results/xmc_recipes_<data>.jsonl``.

Data (``DATA``): ``wordnet`` (labels seen at least 5 times, near-root labels on more than 30%
of the samples dropped), ``wordnet-all`` (every label seen in training, same cap),
``debian-deps`` and ``debtags`` (``xmc.py``'s splits), ``debian-deps-all`` (every label seen
in training).

Usage::

    LABELEMB_BENCH=full python benchmarks/xmc_recipes.py explore wordnet
    LABELEMB_BENCH=full python benchmarks/xmc_recipes.py peers wordnet
    LABELEMB_BENCH=full python benchmarks/xmc_recipes.py seeds wordnet
    LABELEMB_BENCH=full python benchmarks/xmc_recipes.py report wordnet
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
from _util import RESULTS, _status, bench_size, read_runs  # noqa: E402

# data name -> (xmc.py split, or the loader and its options)
DATA = {
    "wordnet": ("load_wordnet", {"min_count": 5, "max_label_fraction": 0.3}),
    "wordnet-all": ("load_wordnet", {"min_count": 1, "max_label_fraction": 0.3}),
    "debian-deps": ("xmc", {}),
    "debian-deps-all": ("load_debian_deps", {"min_count": 1}),
    "debtags": ("xmc", {}),
}
BASE = {"epochs": 5, "batch_size": 256, "hidden": 512, "dim": 256}
# threads per run (several runs share the machine's cores)
THREADS = int(os.environ.get("XMC_RECIPES_THREADS", "1"))


# ---------------------------------------------------------------- data
def load(name: str) -> xmc.Split:
    """The split of a data variant (cached as ``.npz``, as ``xmc.load_split`` does)."""
    how, kwargs = DATA[name]
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
    backbone = mlp(F, (spec["hidden"],), dropout=spec.get("dropout", 0.0), sparse=True)
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


def optimizer_for(spec: dict, model):
    """AdamW (lazy rows for the sparse layer); the label vectors at ``vec_lr`` times the
    rate when the spec asks for it."""
    from labelemb.torch.sparse import SparseAdamW

    mult = spec.get("vec_lr")
    vectors = [p for n, p in model.named_parameters() if n.endswith("label_vectors")]
    if not mult or not vectors:
        return "adamw"

    def make(groups, lr):
        out = []
        for g in groups:
            rest = [p for p in g["params"] if all(p is not v for v in vectors)]
            if rest:
                out.append({**g, "params": rest})
        out.append({"params": vectors, "weight_decay": 0.0, "lr": lr * mult})
        return SparseAdamW(out, lr=lr)

    return make


def run_recipe(split: xmc.Split, spec: dict, echo=print) -> dict:
    """Train one spec; test metrics at the best validation epoch, and costs."""
    import warnings

    import torch

    import labelemb
    from labelemb.torch import fit, predict

    torch.set_num_threads(THREADS)
    L = split.Y_train.shape[1]
    base = xmc._reset_peak()
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        emb = labelemb.fit_embeddings(split.Y_train, dim=min(spec["dim"], L - 1), n_labels=L,
                                      seed=spec["seed"], num_threads=THREADS)
    embed_time = time.perf_counter() - t
    model = build(split, spec, emb)
    best = {"map@100": -1.0, "state": None, "epoch": 0}
    tag = spec_name(spec)

    def keep_best(history, model):
        rec = history.epochs[-1]
        echo(f"  {tag} epoch {rec['epoch']} {rec['train_time']:.1f}s "
             f"valid map@100 {rec['map@100']:.4f} p@1 {rec['p@1']:.4f}", flush=True)
        if rec["map@100"] > best["map@100"]:
            best.update({"map@100": rec["map@100"], "epoch": rec["epoch"],
                         "state": copy.deepcopy(model.state_dict())})
        # stop once validation has fallen past the best (patience epochs)
        return rec["epoch"] - best["epoch"] >= spec.get("patience", 1)

    h = fit(model, (split.X_train, split.Y_train), emb, valid=(split.X_valid, split.Y_valid),
            epochs=spec["epochs"], lr=spec["lr"], batch_size=spec["batch_size"], device="cpu",
            seed=spec["seed"], progress=False, callbacks=[keep_best],
            optimizer=optimizer_for(spec, model), weight_decay=spec.get("weight_decay", 0.0))
    model.load_state_dict(best["state"])
    t = time.perf_counter()
    idx, _ = predict(model, split.X_test, emb, k=min(xmc.K, L), device="cpu")
    pred = time.perf_counter() - t
    peak = _status("VmHWM") - base
    epochs = [{k: e.get(k) for k in ("epoch", "loss", "p@1", "p@5", "map@100", "train_time",
                                     "elapsed")} for e in h.epochs]
    return {"method": f"labelemb {tag}", "kind": "labelemb", "recipe": tag,
            "lr": float(spec["lr"]), "seed": int(spec["seed"]), "embed_time": embed_time,
            "train_time": embed_time + epochs[best["epoch"] - 1]["elapsed"],
            "train_time_all_epochs": embed_time + epochs[-1]["elapsed"],
            "s_per_epoch": float(np.median([e["train_time"] for e in epochs])),
            "best_epoch": best["epoch"], "epochs": epochs,
            "predict_ms_per_1000": 1e6 * pred / max(1, split.X_test.shape[0]),
            "peak_mb": peak / 2**20, "valid_map@100": best["map@100"],
            **xmc._test_record(split, idx)}


def spec_name(spec: dict) -> str:
    """The recipe and its options in one word: ``lowrank-softmax+wide+d512+vlr10+do0.3``."""
    parts = [spec["recipe"]]
    if spec.get("wide"):
        parts.append("wide")
    if spec["dim"] != BASE["dim"]:
        parts.append(f"d{spec['dim']}")
    if spec.get("vec_lr"):
        parts.append(f"vlr{spec['vec_lr']:g}")
    if spec.get("dropout"):
        parts.append(f"do{spec['dropout']:g}")
    if spec.get("weight_decay"):
        parts.append(f"wd{spec['weight_decay']:g}")
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
            rec = (xmc.run_peer(split, s["name"]) if s["kind"] == "peer"
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
    "tune": lambda: [spec("bce", 3e-3, epochs=8), spec("lowrank-softmax", 3e-3, epochs=8)],
}


# ---------------------------------------------------------------- cost of a step
def step_times(data: str, recipes: Sequence[str] = ("bce", "lowrank-softmax", "hybrid"),
               steps: int = 20, rounds: int = 3) -> Dict[str, float]:
    """Median seconds per training step (forward, loss, backward, optimizer) of each recipe
    on the same sparse MLP and the same batches of ``data``, recipes interleaved per round
    (the cost of an epoch is ``steps per epoch x`` this)."""
    import warnings

    import torch

    import labelemb
    from labelemb.torch.data import SparseLabels
    from labelemb.torch.optim import make_optimizer
    from labelemb.torch.recipes import RECIPES as TABLE
    from labelemb.torch.recipes import make_loss
    from labelemb.torch.sparse import csr_batch

    torch.set_num_threads(THREADS)
    split = load(data)
    L = split.Y_train.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", labelemb.EmbeddingWarning)
        emb = labelemb.fit_embeddings(split.Y_train, dim=BASE["dim"], n_labels=L,
                                      num_threads=THREADS)
    bs, rng = BASE["batch_size"], np.random.default_rng(0)
    rows = [np.sort(rng.choice(split.X_train.shape[0], bs, replace=False))
            for _ in range(steps)]
    batches = [(csr_batch(split.X_train[r]), SparseLabels.from_scipy(split.Y_train[r]))
               for r in rows]
    models = {r: build(split, spec(r, 1e-3), emb) for r in recipes}
    for m in models.values():
        head = m[1]
        if hasattr(head, "init_prior"):
            head.init_prior(split.counts, split.X_train.shape[0])
    opts = {r: make_optimizer("adamw", m, 1e-3, 0.0) for r, m in models.items()}
    losses = {r: make_loss(TABLE[r]) for r in recipes}
    times: Dict[str, List[float]] = {r: [] for r in recipes}
    for _ in range(rounds):
        for r in recipes:
            t = time.perf_counter()
            for x, y in batches:
                loss, _ = losses[r](models[r](x), y)
                opts[r].zero_grad(set_to_none=True)
                loss.backward()
                opts[r].step()
            times[r].append((time.perf_counter() - t) / steps)
    return {r: float(np.median(v)) for r, v in times.items()}


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
            configs.setdefault(f"{r['recipe']} lr={r['lr']:g} ep={r['spec']['epochs']}",
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
    ap.add_argument("command", choices=("peers", "report", "steps", *PLANS))
    ap.add_argument("data", choices=(*DATA, "all"))
    ap.add_argument("--peers", nargs="+", default=None, help="peers to run (default all)")
    a = ap.parse_args(argv)
    if a.command == "peers":
        run(a.data, xmc.peer_specs(a.peers))
    elif a.command == "steps":
        out = step_times(a.data)
        print(json.dumps({"data": a.data, "load": os.getloadavg()[0], **out}))
        with open(os.path.join(RESULTS, f"xmc_recipes_{bench_size()}_steps.jsonl"), "a",
                  encoding="utf-8") as f:
            f.write(json.dumps({"data": a.data, "threads": THREADS, **out}) + "\n")
    elif a.command == "report":
        print(write_report(DATA if a.data == "all" else [a.data]))
    elif a.command in PLANS:
        run(a.data, PLANS[a.command]())


if __name__ == "__main__":
    main()
