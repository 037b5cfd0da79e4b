"""Atomic file writes: a reader sees the old file or the new one, never a part of either.

Every file labelemb writes (embeddings, label files, checkpoints, caches, reports, plots)
goes through :func:`atomic_write`, so that an error, a full disk or Ctrl-C in the middle
of a long job leaves the previous file whole and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import IO, Iterator, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb", *, encoding: Optional[str] = None,
                 newline: Optional[str] = None) -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; replace ``path`` with it on success.

    The temporary file (``.<name>.<random>.tmp`` in the same directory, so that the final
    rename stays on one file system) is flushed and fsynced, then renamed over ``path``
    (``os.replace``: atomic on POSIX and Windows), and the directory is fsynced so the
    rename survives a crash. On any exception in the block, KeyboardInterrupt included,
    the temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace. Its directory must exist.
    mode : {"wb", "w"}
        Binary, or text (``encoding`` defaults to UTF-8 then).
    encoding, newline : str, optional
        As for :func:`open`, text mode only.

    Yields
    ------
    file object
        Write to it; do not close it (a wrapper that closes it on exit, such as
        ``io.TextIOWrapper``, must be detached or not be used).

    Examples
    --------
    >>> import json, os, tempfile
    >>> from labelemb._io import atomic_write
    >>> path = os.path.join(tempfile.mkdtemp(), "report.json")
    >>> with atomic_write(path, "w") as f:
    ...     json.dump({"ok": True}, f)
    >>> os.listdir(os.path.dirname(path))
    ['report.json']
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    if mode == "wb" and (encoding is not None or newline is not None):
        raise ValueError("encoding and newline apply to text mode ('w') only")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temp(directory, os.path.basename(path))
    try:
        try:
            f = os.fdopen(fd, mode, encoding=(encoding or "utf-8") if mode == "w" else None,
                          newline=newline)
        except BaseException:
            os.close(fd)
            raise
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _create_temp(directory: str, name: str):
    """(fd, path) of a new file in ``directory``, created with mode 0o666 less the umask
    (the permissions ``open`` would give ``path``; the umask is never changed, which
    would race with other threads)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file for {name!r} in {directory!r}")


def _fsync_dir(directory: str) -> None:
    """Persist a rename in ``directory`` (POSIX; a no-op where directories cannot be opened)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
