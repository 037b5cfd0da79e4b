"""Training curves: validation metrics of several runs against epochs and training time.

Needs matplotlib (the ``torch`` extra); it is imported only when a function is called,
and only its object API is used (no global pyplot state, no display needed).
"""

from __future__ import annotations

import json
import math
import os
from typing import Mapping, Optional, Sequence, Union

from ._io import atomic_write

__all__ = ["check_monotone_time", "history"]


def _records(run) -> list:
    """Epoch records from a History, a list of dicts, or a JSON lines log path."""
    if hasattr(run, "epochs"):
        return list(run.epochs)
    if isinstance(run, (str, os.PathLike)):
        with open(run, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    if isinstance(run, (list, tuple)) and all(isinstance(r, dict) for r in run):
        return list(run)
    raise TypeError(f"each run must be a History, a list of epoch dicts or a JSON lines log "
                    f"path, got {type(run).__name__}")


def check_monotone_time(records: Sequence[dict], time_key: str = "elapsed",
                        name: str = "run") -> None:
    """Raise ``ValueError`` unless ``time_key`` never decreases from one epoch to the next.

    The time axis of :func:`history` is cumulative training time; a value that goes back
    (a per-epoch time, or one with evaluation inside that was reset) would draw a zigzag.
    """
    times = [r[time_key] for r in records]
    for a, b in zip(times, times[1:]):
        if not (isinstance(b, (int, float)) and b >= a):
            raise ValueError(f"run {name!r}: {time_key!r} goes from {a!r} to {b!r}; the time "
                             f"axis needs cumulative training seconds (History's 'elapsed')")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def history(runs: Mapping[str, object], path: Union[str, os.PathLike],
            metrics: Sequence[str] = ("p@5", "map@100"), *, time_key: str = "elapsed",
            chosen: Optional[Mapping[str, int]] = None,
            points: Optional[Mapping[str, Mapping[str, float]]] = None,
            title: str = "", dpi: int = 120) -> str:
    """Draw validation curves of several runs to a PNG.

    One row per metric; the left column plots it against epochs, the right one against
    cumulative training time (``time_key``, seconds; evaluation time is not in it), so a
    faster epoch shows.

    Parameters
    ----------
    runs : mapping name -> History, list of epoch dicts, or path of a ``fit`` JSON lines log
    path : str or path
        The PNG to write (replaced).
    metrics : sequence of str, default ("p@5", "map@100")
        Keys of the epoch records.
    time_key : str, default "elapsed"
        Cumulative training seconds; it must never decrease along a run.
    chosen : mapping name -> epoch, optional
        The epoch kept for each run (best validation figure): drawn as a star.
    points : mapping name -> {metric: value, time_key: seconds}, optional
        Methods trained once rather than by epochs (the extreme-classification peers):
        a marker at their training time on the right, a dotted level on the left.
    title : str, optional
    dpi : int, default 120

    Returns
    -------
    str : the path written.

    Examples
    --------
    >>> from labelemb import plot
    >>> runs = {"embedding": [{"epoch": 1, "elapsed": 1.0, "p@5": 0.3}],
    ...         "bce": [{"epoch": 1, "elapsed": 3.0, "p@5": 0.35}]}
    >>> plot.history(runs, "/tmp/curves.png", metrics=["p@5"],
    ...              points={"knn": {"elapsed": 0.5, "p@5": 0.4}})
    '/tmp/curves.png'
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("labelemb.plot needs matplotlib: pip install matplotlib") from e
    if not runs and not points:
        raise ValueError("runs is empty; pass at least one run")
    records = {str(name): _records(run) for name, run in runs.items()}
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics is empty; name at least one metric, e.g. 'p@5'")
    for name, recs in records.items():
        for m in metrics + ["epoch", time_key]:
            if recs and any(m not in r for r in recs):
                have = sorted(recs[0])
                raise ValueError(f"run {name!r} has no metric {m!r} in its records (it has "
                                 f"{have}); was it trained with valid=?")
        check_monotone_time(recs, time_key, name)
    points = {str(k): dict(v) for k, v in (points or {}).items()}
    for name, p in points.items():
        if not _finite(p.get(time_key)):
            raise ValueError(f"point {name!r} needs a finite {time_key!r} (training seconds)")
    chosen = dict(chosen or {})

    fig = Figure(figsize=(11, 3.4 * len(metrics)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(metrics), 2, squeeze=False)
    colors = {name: f"C{i % 10}" for i, name in enumerate(list(records) + list(points))}
    for row, m in enumerate(metrics):
        left, right = axes[row]
        for name, recs in records.items():
            ys = [r[m] for r in recs]
            kw = dict(color=colors[name], marker="o", markersize=3, linewidth=1.5)
            left.plot([r["epoch"] for r in recs], ys, label=name, **kw)
            right.plot([r[time_key] for r in recs], ys, label=name, **kw)
            best = [r for r in recs if r["epoch"] == chosen.get(name)]
            for r in best:
                star = dict(color=colors[name], marker="*", markersize=13, zorder=5,
                            markeredgecolor="black", markeredgewidth=0.5)
                left.plot([r["epoch"]], [r[m]], **star)
                right.plot([r[time_key]], [r[m]], **star)
        for name, p in points.items():
            if not _finite(p.get(m)):
                continue
            left.axhline(p[m], color=colors[name], linestyle=":", linewidth=1.2, label=name)
            right.plot([p[time_key]], [p[m]], color=colors[name], marker="D", markersize=6,
                       linestyle="none", label=name)
        left.set_xlabel("epoch")
        right.set_xlabel("cumulative training time (s, evaluation excluded)")
        if any(records.values()):
            epochs = sorted({r["epoch"] for recs in records.values() for r in recs})
            if len(epochs) <= 20:
                left.set_xticks(epochs)
        for ax in (left, right):
            ax.set_ylabel(f"validation {m.upper() if '@' in m else m}")
            ax.grid(alpha=0.3)
    axes[0, 1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    note = "star: the epoch kept" if chosen else ""
    if points:
        note += ("; " if note else "") + "dotted / diamond: methods trained in one go"
    if title or note:
        fig.suptitle("\n".join(t for t in (title, note) if t), fontsize="medium")
    fig.tight_layout()
    path = os.fspath(path)
    with atomic_write(path) as f:
        fig.savefig(f, dpi=dpi, format="png")
    return path
