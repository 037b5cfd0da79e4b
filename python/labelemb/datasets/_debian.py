"""Fetching one Debian binary package with apt and unpacking it (no root needed).

``apt-get download NAME`` puts ``NAME_VERSION_ARCH.deb`` in the working directory from
the mirrors of the local apt lists; ``dpkg-deb -x`` unpacks it anywhere. Loaders call
:func:`fetch_deb` and record the version and checksum of the file they derived data
from.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shlex
import subprocess
from typing import Callable, Optional, Sequence

__all__ = ["fetch_deb", "run_command", "sha256_file"]

Runner = Callable[..., str]


def run_command(cmd: Sequence[str], cwd: Optional[str] = None) -> str:
    """Run ``cmd`` (in ``cwd``) and return its stdout; raise CalledProcessError on failure."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True, errors="replace", cwd=cwd)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, list(cmd), proc.stdout, proc.stderr)
    return proc.stdout


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manual_fetch_commands(package: str, directory: str) -> str:
    """The shell commands that put ``package``'s .deb into ``directory`` by hand."""
    q = shlex.quote(directory)
    return (
        f"    mkdir -p {q} && cd {q}\n"
        "    apt-get update            # as root, or with sudo\n"
        f"    apt-get download {package}"
    )


def fetch_deb(
    package: str, directory: str, *, loader: str, run: Optional[Runner] = None
) -> dict:
    """Find or download ``package``'s .deb in ``directory`` and describe it.

    A ``{package}_*.deb`` already in ``directory`` is used as it is (the newest name if
    several); otherwise ``apt-get download`` runs there.

    Returns
    -------
    dict
        ``path``, ``package``, ``version`` (from ``dpkg-deb -f``), ``sha256``.

    Raises
    ------
    RuntimeError
        When apt or dpkg-deb fail or are missing; the message gives the commands that
        fetch the package by hand and the call to repeat (``loader``).
    """
    run = run or run_command
    os.makedirs(directory, exist_ok=True)

    def error(reason: str) -> RuntimeError:
        return RuntimeError(
            f"{loader}: could not obtain the Debian package {package!r} ({reason}).\n"
            "It needs a Debian/Ubuntu system with apt and access to its mirrors. Run:\n"
            f"{manual_fetch_commands(package, directory)}\n"
            f"then call {loader} again: it uses the {package}_*.deb file found there."
        )

    try:
        found = sorted(glob.glob(os.path.join(glob.escape(directory), f"{package}_*.deb")))
        if not found:
            run(["apt-get", "download", package], cwd=directory)
            found = sorted(glob.glob(os.path.join(glob.escape(directory), f"{package}_*.deb")))
            if not found:
                raise error(f"apt-get download {package} left no .deb file")
        path = found[-1]
        version = run(["dpkg-deb", "-f", path, "Version"]).strip()
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or "").strip().splitlines()[-1:] or [""]
        raise error(f"{shlex.join(exc.cmd)} exited with {exc.returncode}: {detail[0]}") from exc
    except OSError as exc:
        raise error(str(exc)) from exc
    return {"path": path, "package": package, "version": version, "sha256": sha256_file(path)}


def extract_deb(deb: str, dest: str, *, run: Optional[Runner] = None) -> str:
    """Unpack ``deb`` into ``dest`` with ``dpkg-deb -x``; return ``dest``."""
    run = run or run_command
    os.makedirs(dest, exist_ok=True)
    run(["dpkg-deb", "-x", deb, dest])
    return dest
