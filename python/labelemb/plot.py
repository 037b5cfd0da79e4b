"""Training curves: validation metrics of several runs against epochs and wall time.

Needs matplotlib (the ``torch`` extra); it is imported only when a function is called,
and only its object API is used (no global pyplot state, no display needed).
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Sequence, Union

from ._io import atomic_write

__all__ = ["history"]


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


def history(runs: Mapping[str, object], path: Union[str, os.PathLike],
            metrics: Sequence[str] = ("p@5", "map@100"), *, time_key: str = "elapsed",
            title: str = "", dpi: int = 120) -> str:
    """Draw validation curves of several runs to a PNG.

    One row per metric; the left column plots it against epochs, the right one against
    cumulative training time (``time_key``, seconds), so a faster epoch shows.

    Parameters
    ----------
    runs : mapping name -> History, list of epoch dicts, or path of a ``fit`` JSON lines log
    path : str or path
        The PNG to write (replaced).
    metrics : sequence of str, default ("p@5", "map@100")
        Keys of the epoch records.
    time_key : str, default "elapsed"
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
    >>> plot.history(runs, "/tmp/curves.png", metrics=["p@5"])
    '/tmp/curves.png'
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("labelemb.plot needs matplotlib: pip install matplotlib") from e
    if not runs:
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
    fig = Figure(figsize=(10, 3.2 * len(metrics)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(metrics), 2, squeeze=False)
    for row, m in enumerate(metrics):
        for name, recs in records.items():
            ys = [r[m] for r in recs]
            axes[row, 0].plot([r["epoch"] for r in recs], ys, marker="o", label=name)
            axes[row, 1].plot([r[time_key] for r in recs], ys, marker="o", label=name)
        axes[row, 0].set_xlabel("epoch")
        axes[row, 1].set_xlabel("training time (s)")
        for ax in axes[row]:
            ax.set_ylabel(f"validation {m}")
            ax.grid(alpha=0.3)
    axes[0, 0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = os.fspath(path)
    with atomic_write(path) as f:
        fig.savefig(f, dpi=dpi, format="png")
    return path
