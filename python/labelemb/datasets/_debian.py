"""Debian data through apt: the package indexes, or one binary package, with no root.

* :func:`fetch_apt_indexes`: ``apt-get update`` into a private lists directory (English
  descriptions only), then ``Translation-en`` (``apt-helper cat-file``) and the
  ``Packages`` records (``apt-cache dumpavail``), with the date of the indexes.
* :func:`fetch_deb`: ``apt-get download NAME`` puts ``NAME_VERSION_ARCH.deb`` in a
  folder from the mirrors of the local apt lists; ``dpkg-deb -x`` unpacks it anywhere.

Loaders record the index date, or the version and checksum of the .deb, they derived
their data from.
"""

from __future__ import annotations

import datetime as _dt
import glob
import hashlib
import os
import shlex
import subprocess
from email.utils import parsedate_to_datetime
from typing import Callable, Dict, Optional, Sequence, Tuple

__all__ = [
    "extract_deb",
    "fetch_apt_indexes",
    "fetch_deb",
    "index_dates",
    "manual_index_commands",
    "run_command",
    "sha256_file",
]

APT_LANG_CONF = '#clear Acquire::Languages;\nAcquire::Languages { "en"; };\n'
APT_HELPER = "/usr/lib/apt/apt-helper"

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


# ------------------------------------------------------------------------- apt indexes


def manual_index_commands(cache_dir: str) -> str:
    """The shell commands that write ``Packages`` and ``Translation-en`` into ``cache_dir``."""
    q = shlex.quote(cache_dir)
    return "\n".join(
        [
            f"    mkdir -p {q} && cd {q}",
            "    printf '#clear Acquire::Languages;\\nAcquire::Languages { \"en\"; };\\n'"
            " > apt-lang.conf",
            "    mkdir -p aptlists/partial aptcache/archives/partial",
            "    apt-get -c apt-lang.conf -o Dir::State::Lists=$PWD/aptlists"
            " -o Dir::Cache=$PWD/aptcache update",
            f"    {APT_HELPER} cat-file aptlists/*_i18n_Translation-en* > Translation-en",
            "    apt-cache -o Dir::State::Lists=$PWD/aptlists -o Dir::Cache=$PWD/aptcache"
            " dumpavail > Packages",
        ]
    )


def index_dates(lists_dir: str) -> Dict[str, str]:
    """``Date:`` of each apt ``*Release`` file in ``lists_dir`` (ISO 8601, UTC)."""
    dates = {}
    for path in sorted(glob.glob(os.path.join(lists_dir, "*Release"))):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                head = [line for _, line in zip(range(100), fh)]  # Date is near the top
            for line in head:
                if line.startswith("Date:"):
                    when = parsedate_to_datetime(line[5:].strip())
                    dates[os.path.basename(path)] = when.astimezone(_dt.timezone.utc).strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    )
                    break
        except (OSError, ValueError, TypeError):
            continue
    return dates


def fetch_apt_indexes(
    workdir: str, *, error: Callable[[str], Exception], run: Optional[Runner] = None
) -> Tuple[str, str, Dict[str, str]]:
    """Run apt with a private lists directory under ``workdir``.

    Returns
    -------
    (packages, translation, dates)
        The ``apt-cache dumpavail`` text, the ``Translation-en`` text and
        :func:`index_dates` of the fetched lists.

    Raises
    ------
    Exception
        ``error(reason)`` when a command fails or is missing, or no ``Translation-en``
        index was fetched.
    """
    run = run or run_command
    lists = os.path.join(workdir, "aptlists")
    apt_cache = os.path.join(workdir, "aptcache")
    os.makedirs(os.path.join(lists, "partial"), exist_ok=True)
    os.makedirs(os.path.join(apt_cache, "archives", "partial"), exist_ok=True)
    conf = os.path.join(workdir, "apt-lang.conf")
    with open(conf, "w") as fh:
        fh.write(APT_LANG_CONF)
    opts = ["-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={apt_cache}"]
    try:
        run(["apt-get", "-c", conf, *opts, "update"])
        files = sorted(
            p for p in glob.glob(os.path.join(lists, "*_i18n_Translation-en*")) if os.path.isfile(p)
        )
        if not files:
            raise error("apt-get update fetched no Translation-en index")
        translation = run([APT_HELPER, "cat-file", *files])
        packages = run(["apt-cache", *opts, "dumpavail"])
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or "").strip().splitlines()[-1:] or [""]
        raise error(f"{shlex.join(exc.cmd)} exited with {exc.returncode}: {detail[0]}") from exc
    except OSError as exc:
        raise error(str(exc)) from exc
    return packages, translation, index_dates(lists)
