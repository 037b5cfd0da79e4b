"""Progress bars for the stages of a long job (tqdm when installed and enabled, else none)."""

from __future__ import annotations


class StageBars:
    """One progress bar per stage (tqdm, when installed and enabled), showing its time."""

    def __init__(self, enabled: bool):
        self._tqdm = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            self._tqdm = tqdm

    def stage(self, name: str):
        """A context manager with ``update(n)``: a bar for stage ``name``, or a no-op."""
        if self._tqdm is None:
            return NoBar()
        return self._tqdm(total=1, desc=name, unit="stage",
                          bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}]")


class NoBar:
    """Stands in for a bar when there is none."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass
