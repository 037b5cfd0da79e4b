"""The record of a training run: per-epoch metrics (:class:`History`) and their JSON lines
log, written one whole line at a time so that a crash never leaves half a record."""

from __future__ import annotations

import json
import math
import os
from typing import List, Optional

from .._io import atomic_write

__all__ = ["History", "JsonlLog"]


class History:
    """Per-epoch records of a training run.

    Attributes
    ----------
    epochs : list of dict
        One dict per epoch: ``epoch`` (1-based), ``loss`` (mean train loss), validation
        metrics ``p@1``, ``p@5``, ``ndcg@5``, ``map@100`` (k clipped to the number of
        labels), ``train_time`` and ``eval_time`` (seconds), ``elapsed`` (cumulative
        training seconds), ``lr``, ``steps``.

    Examples
    --------
    >>> h = History([{"epoch": 1, "p@5": 0.2}, {"epoch": 2, "p@5": 0.3}])
    >>> h["p@5"], h.epochs_to_reach("p@5", 0.25)
    ([0.2, 0.3], 2)
    """

    def __init__(self, epochs: Optional[List[dict]] = None, recipe: Optional[str] = None):
        self.epochs: List[dict] = list(epochs or [])
        self.recipe = recipe

    def __len__(self) -> int:
        return len(self.epochs)

    def __getitem__(self, key: str) -> list:
        return [e.get(key) for e in self.epochs]

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        return f"History(recipe={self.recipe!r}, epochs={len(self)}, last={last})"

    def best(self, key: str) -> float:
        """Largest value of ``key`` over the epochs (NaN when none)."""
        vals = [v for v in self[key] if v is not None and not math.isnan(v)]
        return max(vals) if vals else float("nan")

    def epochs_to_reach(self, key: str, value: float) -> Optional[int]:
        """First epoch (1-based) whose ``key`` is >= ``value``, or None."""
        for e in self.epochs:
            v = e.get(key)
            if v is not None and v >= value:
                return int(e["epoch"])
        return None

    def to_json(self) -> str:
        return json.dumps({"recipe": self.recipe, "epochs": self.epochs})

    @classmethod
    def from_json(cls, text: str) -> History:
        d = json.loads(text)
        return cls(d["epochs"], d.get("recipe"))

    @classmethod
    def load(cls, path) -> History:
        """From a JSON lines log written by ``fit`` (one epoch per line)."""
        with open(path, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return cls(rows, rows[0].get("recipe") if rows else None)


class JsonlLog:
    """Append-only JSON lines: each record is one ``write`` of a whole line, then flushed."""

    def __init__(self, path: Optional[str], history: History, fresh: bool):
        self.path = path
        if path is None:
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # A fresh run starts an empty log; a resumed one rewrites the checkpoint's history
        # (dropping lines of epochs after the checkpoint), atomically.
        lines = "" if fresh else "".join(self._line(e) for e in history.epochs)
        with atomic_write(path) as f:
            f.write(lines.encode())

    @staticmethod
    def _line(record: dict) -> str:
        return json.dumps(record) + "\n"

    def append(self, record: dict) -> None:
        if self.path is None:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, self._line(record).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
