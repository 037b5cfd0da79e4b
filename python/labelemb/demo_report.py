"""The report of ``labelemb demo``: its figures, its table, its sample predictions, its curves.

:func:`rank_metrics` scores a top-100 index matrix as the table does (P@1, P@5, nDCG@5,
MAP@100, PSP@5); :func:`time_to_reach` gives each method's training seconds to reach the
best validation figure of the others; :func:`format_table`, :func:`pick_samples` /
:func:`format_samples` and :func:`plot_curves` make what the demo prints and draws.
"""

from __future__ import annotations

import math
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ["METRICS", "TARGET", "format_samples", "format_table", "json_default",
           "load_average", "machine_info", "pick_samples", "plot_curves", "rank_metrics",
           "time_to_reach", "torch_threads"]

#: The figure that chooses each recipe's epoch and defines "the others' best".
TARGET = "map@100"
#: The table's test figures.
METRICS = ("p@1", "p@5", "ndcg@5", "map@100", "psp@5")


def rank_metrics(indices: np.ndarray, Y, label_counts: np.ndarray, n_train: int) -> dict:
    """The table's figures of a top-100 index matrix against the true label rows."""
    from . import metrics

    L = Y.shape[1]
    k5, K = min(5, L), min(100, L, indices.shape[1])
    r = metrics.report(indices[:, :K], Y, ks=sorted({1, k5, K}), n_labels=L,
                       label_counts=label_counts, n_train=max(3, n_train))
    return {"p@1": r["precision@1"], "p@5": r[f"precision@{k5}"], "ndcg@5": r[f"ndcg@{k5}"],
            "map@100": r[f"map@{K}"], "psp@5": r[f"psp@{k5}"]}


def machine_info() -> dict:
    """CPU model, cores, load average and the OpenBLAS variables that change its kernels."""
    cpu = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.lower().startswith("model name")), None)
    except OSError:
        pass
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
           if k in os.environ}
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average": load_average(), "env": env}


def load_average() -> Optional[List[float]]:
    """The 1, 5 and 15 minute load averages (None where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


def time_to_reach(entries: Dict[str, dict], key: str = "valid_curve") -> Dict[str, object]:
    """Per method: the training seconds after which its validation figure first reaches the
    best of the other methods (None when it never does, or has no other to reach).
    ``entries[m][key]`` lists ``(cumulative training seconds, validation figure)``."""
    best = {m: max((v for _, v in e[key]), default=-math.inf) for m, e in entries.items()}
    out: Dict[str, object] = {}
    for m, e in entries.items():
        others = [b for o, b in best.items() if o != m]
        out[m] = next((t for t, v in e[key] if v >= max(others)), None) if others else None
    return out


def _fmt_reach(t, alone: bool) -> str:
    return "-" if alone else "never" if t is None else f"{t:.1f}"


def format_table(results: Dict[str, dict], order: Sequence[str], default: str,
                 n_test: int) -> str:
    """The demo's one table: test figures at the chosen epoch, training and reach times."""
    names = {m: f"{m} (default)" if m == default else m for m in order}
    w = max(22, *(len(s) for s in names.values())) + 2
    head = (f"{'method':<{w}s}" + "".join(f"{c.upper():>8s}" for c in METRICS)
            + f"{'epoch':>7s}{'train s':>9s}  reach s")
    lines = [head, "-" * len(head)]
    for m in order:
        r = results[m]
        ep = "-" if r["chosen_epoch"] is None else f"{r['chosen_epoch']}/{len(r['epochs'])}"
        reach = _fmt_reach(r["time_to_reach"], len(order) == 1)
        lines.append(f"{names[m]:<{w}s}" + "".join(f"{r['test'][c]:8.3f}" for c in METRICS)
                     + f"{ep:>7s}{r['train_time']:9.1f}  {reach}")
    lines += [
        f"Test figures on {n_test:,} test samples, at the epoch with the best validation "
        f"MAP@100 ('epoch': kept/trained).",
        "'train s': training wall seconds on this machine (the recipes' epochs, plus the label "
        "embedding for the recipes that use it; evaluation excluded).",
        "'reach s': training seconds until the validation MAP@100 first reaches the best of "
        "the other rows ('never' within this budget).",
    ]
    return "\n".join(lines)


def pick_samples(ids: Sequence[str], texts: Sequence[str], indices: np.ndarray, Y,
                 label_names: Sequence[str], preferred: Sequence[str], n: int,
                 seed: int) -> List[dict]:
    """``n`` test samples with their text, top 5 (each marked true or not) and true labels:
    those named in ``preferred`` first, then drawn at random. ``ids``, ``texts``,
    ``indices`` (top-k) and ``Y`` describe the same rows."""
    where = {s: j for j, s in enumerate(ids)}
    picks = [where[s] for s in preferred if s in where][:n]
    rng = np.random.default_rng(seed)
    for j in rng.permutation(len(ids)):
        if len(picks) >= n:
            break
        if int(j) not in picks:
            picks.append(int(j))
    out = []
    for j in picks:
        true = set(Y.indices[Y.indptr[j]:Y.indptr[j + 1]].tolist())
        pred = [int(i) for i in indices[j, :5] if i >= 0]
        out.append({"id": ids[j], "text": texts[j],
                    "predicted": [[label_names[i], i in true] for i in pred],
                    "true": sorted(label_names[i] for i in true)})
    return out


def format_samples(samples: List[dict], method: str) -> str:
    """The samples of :func:`pick_samples` as lines of text."""
    lines = [f"A few test samples, top 5 of {method} ('+' marks a true label):"]
    for s in samples:
        text = " ".join(s["text"].split())  # one line, whatever the source's layout
        text = text if len(text) <= 110 else text[:107] + "..."
        lines.append(f"  {s['id']}: {text}")
        lines.append("    predicted: " + ", ".join(("+" if ok else " ") + name
                                                   for name, ok in s["predicted"]))
        true = s["true"][:8] + (["..."] if len(s["true"]) > 8 else [])
        lines.append(f"    true ({len(s['true'])}): " + ", ".join(true))
    return "\n".join(lines)


def plot_curves(results: dict, order: Sequence[str], path: str, title: str, echo,
                default: Optional[str] = None) -> Optional[str]:
    """The validation curves of the recipes and the peers' points (:func:`labelemb.plot.history`);
    None, with a message, without matplotlib."""
    try:
        from .plot import history as plot_history
    except ImportError as e:  # pragma: no cover - matplotlib comes with the torch extra
        echo(f"(no plot: {e})")
        return None
    shown = {m: f"{m} (default)" if m == default else m for m in order}
    runs = {shown[m]: results[m]["epochs"] for m in order if results[m]["kind"] == "recipe"}
    chosen = {shown[m]: results[m]["chosen_epoch"] for m in order
              if results[m]["kind"] == "recipe"}
    points = {m: {"elapsed": results[m]["train_time"], **results[m]["valid"]}
              for m in order if results[m]["kind"] == "peer"}
    try:
        return plot_history(runs, path, metrics=("map@100", "p@5"), chosen=chosen,
                            points=points, title=title)
    except ImportError as e:  # matplotlib missing
        echo(f"(no plot: {e})")
        return None


def torch_threads() -> Optional[int]:
    """torch's CPU thread count, if torch is imported."""
    import sys

    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def json_default(o):
    """numpy scalars and arrays for ``json.dump``."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")
