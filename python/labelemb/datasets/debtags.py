"""Debian package descriptions labelled with their debtags (real multi-label text data).

The data comes from the apt indexes of the machine it runs on (no other download):
``Packages`` records (``apt-cache dumpavail``) carry the ``Tag:`` field and a
``Description-md5``; the English long descriptions come from the ``Translation-en``
index and are joined on that checksum. Binary packages built from one source share
descriptions, so the train/test split keeps every ``Source`` package on one side.

The parsing functions (:func:`parse_deb822`, :func:`parse_translations`,
:func:`join_debtags`, :func:`build_debtags`) are pure Python and work on text, so
they can be tried on a few hand-written records.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import scipy.sparse as sp

from .._io import atomic_write
from . import _debian
from .text import hash01

__all__ = [
    "DebtagsDataset",
    "build_debtags",
    "description_text",
    "group_split",
    "join_debtags",
    "load_debtags",
    "parse_deb822",
    "parse_tags",
    "parse_translations",
    "source_name",
]

CACHE_VERSION = 1
SPLIT_SALT = "labelemb-debtags-split-v1"
TEST_FRACTION = 0.2
APT_LANG_CONF = _debian.APT_LANG_CONF
APT_HELPER = _debian.APT_HELPER


@dataclass
class DebtagsDataset:
    """Package descriptions with their debtags.

    Attributes
    ----------
    texts : list of str, length n
        Synopsis line, a newline, then the long description (paragraph breaks as
        empty lines).
    labels : scipy.sparse.csr_matrix, shape (n, L), float32
        ``labels[i, j] == 1`` when package ``i`` carries tag ``label_names[j]``.
    label_names : list of str, length L
        Sorted tags such as ``"role::program"`` (``facet::value``).
    groups : ndarray of int32, shape (n,)
        Index into ``group_names`` (the Source package).
    group_names : list of str
        Sorted Source package names.
    packages : list of str, length n
        Binary package names (sorted).
    train_index, test_index : ndarray of int64
        Row indices of the two parts; no Source package is on both sides (~80/20).
    meta : dict
        ``index_date`` (newest ``Date:`` of the apt Release files, ISO 8601, or None),
        ``index_dates``, ``built``, counts and the split rule.
    """

    texts: List[str]
    labels: sp.csr_matrix
    label_names: List[str]
    groups: np.ndarray
    group_names: List[str]
    packages: List[str]
    train_index: np.ndarray
    test_index: np.ndarray
    meta: Dict[str, object] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return len(self.texts)

    @property
    def n_labels(self) -> int:
        return len(self.label_names)


# ----------------------------------------------------------------------------- parsing


def parse_deb822(text: str) -> Iterator[Dict[str, str]]:
    """Yield the records of a deb822 text (``Packages``, ``Translation-en``).

    Records are separated by blank lines. A field value is its first line (stripped)
    followed by its continuation lines, each kept verbatim after a ``"\\n"``.

    Raises
    ------
    ValueError
        For a line that is neither ``Name: value`` nor a continuation line (with its
        1-based line number).
    """
    rec: Dict[str, str] = {}
    key = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if rec:
                yield rec
            rec, key = {}, None
        elif line[0] in " \t":
            if key is None:
                raise ValueError(f"line {lineno}: continuation line outside a field")
            rec[key] += "\n" + line
        else:
            name, sep, value = line.partition(":")
            if not sep or not name or " " in name:
                raise ValueError(f"line {lineno}: expected 'Field: value', got {line[:60]!r}")
            key = name
            rec[key] = value.strip()
    if rec:
        yield rec


def description_text(value: str) -> str:
    """Plain text of a deb822 description: synopsis, newline, long description.

    Continuation lines lose their one leading space; a lone ``.`` is an empty line.
    """
    lines = value.split("\n")
    out = [lines[0].strip()]
    for line in lines[1:]:
        body = line[1:] if line[:1] in (" ", "\t") else line
        out.append("" if body.strip() == "." else body.rstrip())
    return "\n".join(out).strip()


def parse_tags(value: str) -> List[str]:
    """Sorted unique tags of a ``Tag:`` field (comma separated, may span lines)."""
    return sorted({t.strip() for t in value.replace("\n", " ").split(",") if t.strip()})


def source_name(record: Dict[str, str]) -> str:
    """Source package of a ``Packages`` record (``Source: name (version)`` or Package)."""
    src = record.get("Source", "").split()
    return src[0] if src else record["Package"]


def parse_translations(text: str) -> Dict[str, str]:
    """Map ``Description-md5`` -> description text from a ``Translation-en`` text."""
    out: Dict[str, str] = {}
    for rec in parse_deb822(text):
        md5 = rec.get("Description-md5")
        desc = rec.get("Description-en")
        if md5 and desc is not None and md5 not in out:
            out[md5] = description_text(desc)
    return out


def join_debtags(packages_text: str, translation_text: str) -> tuple:
    """Join tagged ``Packages`` records with their English long descriptions.

    Returns
    -------
    records : list of dict
        One per tagged package, sorted by package name, with keys ``package``,
        ``source``, ``text`` and ``tags`` (list of str). The first record of a package
        name wins. A package whose ``Description-md5`` is missing from the translations
        falls back to its own multi-line ``Description`` or ``Description-en``.
    stats : dict
        ``tagged`` (tagged package names), ``no_description`` (dropped).
    """
    translations = parse_translations(translation_text)
    seen = set()
    records = []
    no_desc = 0
    for rec in parse_deb822(packages_text):
        name = rec.get("Package")
        if not name or name in seen or "Tag" not in rec:
            continue
        seen.add(name)
        text = translations.get(rec.get("Description-md5", ""))
        if text is None:
            own = rec.get("Description-en") or rec.get("Description") or ""
            text = description_text(own) if "\n" in own else None
        tags = parse_tags(rec["Tag"])
        if not text or not tags:
            no_desc += 1
            continue
        records.append({"package": name, "source": source_name(rec), "text": text, "tags": tags})
    records.sort(key=lambda r: r["package"])
    return records, {"tagged": len(seen), "no_description": no_desc}


def _hash01(name: str, salt: str = SPLIT_SALT) -> float:
    return hash01(name, salt)


def group_split(group_names: Sequence[str], test_fraction: float = TEST_FRACTION) -> np.ndarray:
    """Boolean mask over ``group_names``: True for test groups.

    A group is in test when a salted SHA-256 of its name, read as a number in [0, 1),
    is below ``test_fraction``: deterministic, and a group keeps its side when other
    groups come and go between index versions.
    """
    return np.array([_hash01(g) < test_fraction for g in group_names], dtype=bool)


def build_debtags(
    packages_text: str, translation_text: str, meta: Optional[dict] = None
) -> DebtagsDataset:
    """Build a :class:`DebtagsDataset` from ``Packages`` and ``Translation-en`` text."""
    records, stats = join_debtags(packages_text, translation_text)
    label_names = sorted({t for r in records for t in r["tags"]})
    col = {t: j for j, t in enumerate(label_names)}
    indptr = np.zeros(len(records) + 1, dtype=np.int64)
    indices = []
    for i, r in enumerate(records):
        indices.extend(col[t] for t in r["tags"])
        indptr[i + 1] = len(indices)
    group_names = sorted({r["source"] for r in records})
    gcol = {g: k for k, g in enumerate(group_names)}
    groups = np.array([gcol[r["source"]] for r in records], dtype=np.int32)
    is_test = group_split(group_names)[groups] if len(records) else np.zeros(0, bool)
    out_meta = dict(meta or {})
    out_meta.update(stats)
    return _assemble(
        texts=[r["text"] for r in records],
        packages=[r["package"] for r in records],
        label_indptr=indptr,
        label_indices=np.asarray(indices, dtype=np.int32),
        label_names=label_names,
        groups=groups,
        group_names=group_names,
        is_test=is_test,
        meta=out_meta,
    )


def _assemble(
    *,
    texts,
    packages,
    label_indptr,
    label_indices,
    label_names,
    groups,
    group_names,
    is_test,
    meta,
) -> DebtagsDataset:
    n, n_labels = len(texts), len(label_names)
    labels = sp.csr_matrix(
        (np.ones(len(label_indices), dtype=np.float32), label_indices, label_indptr),
        shape=(n, n_labels),
    )
    is_test = np.asarray(is_test, dtype=bool)
    meta = dict(meta)
    meta.update(
        n_samples=n,
        n_labels=n_labels,
        n_groups=len(group_names),
        labels_per_sample=float(labels.nnz / n) if n else 0.0,
        test_fraction=float(is_test.mean()) if n else 0.0,
        split=f"Source package in test iff sha256('{SPLIT_SALT}:' + source) < {TEST_FRACTION}",
    )
    return DebtagsDataset(
        texts=list(texts),
        labels=labels,
        label_names=list(label_names),
        groups=np.asarray(groups, dtype=np.int32),
        group_names=list(group_names),
        packages=list(packages),
        train_index=np.flatnonzero(~is_test).astype(np.int64),
        test_index=np.flatnonzero(is_test).astype(np.int64),
        meta=meta,
    )


# ----------------------------------------------------------------------- apt access


def _run_command(cmd: Sequence[str]) -> str:
    """Run ``cmd`` and return its stdout; raise on failure. Tests replace this."""
    return _debian.run_command(cmd)


def _manual_commands(cache_dir: str) -> str:
    return _debian.manual_index_commands(cache_dir)


def _apt_error(cache_dir: str, reason: str) -> RuntimeError:
    return RuntimeError(
        f"load_debtags: could not obtain the Debian apt indexes ({reason}).\n"
        "It needs a Debian/Ubuntu system with apt and access to its mirrors. Run these "
        "commands (as root, or with sudo for apt-get update):\n"
        f"{_manual_commands(cache_dir)}\n"
        f"then call load_debtags(cache_dir={cache_dir!r}) again: it uses the files "
        "'Packages' and 'Translation-en' found there."
    )


_index_dates = _debian.index_dates


def _fetch_apt(workdir: str, cache_dir: str) -> tuple:
    """Run apt with a private lists dir; return (Packages text, Translation text, dates)."""
    packages, translation, dates = _debian.fetch_apt_indexes(
        workdir, error=lambda reason: _apt_error(cache_dir, reason), run=_run_command
    )
    if "\nTag:" not in packages and not packages.startswith("Tag:"):
        raise _apt_error(cache_dir, "apt-cache dumpavail printed no package with a Tag field")
    return packages, translation, dates


# ------------------------------------------------------------------------------ cache


def _save_cache(cache_dir: str, ds: DebtagsDataset) -> None:
    is_test = np.zeros(ds.n_samples, dtype=bool)
    is_test[ds.test_index] = True
    doc = {
        "cache_version": CACHE_VERSION,
        "meta": ds.meta,
        "label_names": ds.label_names,
        "group_names": ds.group_names,
        "packages": ds.packages,
        "texts": ds.texts,
    }

    with atomic_write(os.path.join(cache_dir, "debtags.npz")) as fh:
        np.savez_compressed(
            fh,
            label_indptr=ds.labels.indptr.astype(np.int64),
            label_indices=ds.labels.indices.astype(np.int32),
            group=ds.groups,
            is_test=is_test,
        )
    with atomic_write(os.path.join(cache_dir, "debtags.json"), "w") as fh:
        json.dump(doc, fh, ensure_ascii=False)


def _load_cache(cache_dir: str) -> Optional[DebtagsDataset]:
    jpath = os.path.join(cache_dir, "debtags.json")
    npath = os.path.join(cache_dir, "debtags.npz")
    if not (os.path.isfile(jpath) and os.path.isfile(npath)):
        return None
    try:
        with open(jpath, encoding="utf-8") as fh:
            doc = json.load(fh)
        if doc.get("cache_version") != CACHE_VERSION:
            return None
        with np.load(npath) as z:
            arrays = {k: z[k] for k in ("label_indptr", "label_indices", "group", "is_test")}
    except (OSError, ValueError, KeyError):
        return None
    return _assemble(
        texts=doc["texts"],
        packages=doc["packages"],
        label_indptr=arrays["label_indptr"],
        label_indices=arrays["label_indices"],
        label_names=doc["label_names"],
        groups=arrays["group"],
        group_names=doc["group_names"],
        is_test=arrays["is_test"],
        meta=doc["meta"],
    )


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def load_debtags(cache_dir: Optional[str] = None, *, rebuild: bool = False) -> DebtagsDataset:
    """Debian package descriptions with their debtags, split by Source package.

    Parameters
    ----------
    cache_dir : str or path, optional
        Where the parsed data set is cached as ``debtags.npz`` + ``debtags.json``
        (default ``~/.cache/labelemb/debtags``).
    rebuild : bool, default False
        Ignore the cache and re-read the apt indexes (``apt-get update`` included).

    Returns
    -------
    DebtagsDataset
        ``texts`` (n strings), ``labels`` (csr_matrix (n, L) float32), ``label_names``,
        ``groups`` (int32 (n,)), ``group_names``, ``packages``, ``train_index``,
        ``test_index`` (int64) and ``meta`` (``index_date`` and counts). With the
        Debian 12 indexes: ~29,800 packages, ~600 tags, ~3.7 tags per package.

    Raises
    ------
    RuntimeError
        When the apt indexes cannot be obtained; the message lists the commands that
        produce ``Packages`` and ``Translation-en`` in ``cache_dir`` by hand.

    Notes
    -----
    Without a cache, files named ``Packages`` and ``Translation-en`` in ``cache_dir``
    are used when present (unless ``rebuild``); otherwise apt is run with a private
    lists directory under a temporary folder in ``cache_dir``:
    ``apt-get -c apt-lang.conf -o Dir::State::Lists=... update`` (English
    descriptions only), ``apt-helper cat-file *_i18n_Translation-en*`` and
    ``apt-cache dumpavail``. Indexes change at Debian point releases, so counts drift;
    ``meta["index_date"]`` records the index date.
    """
    if cache_dir is None:
        cache_dir = os.path.join(os.path.expanduser("~"), ".cache", "labelemb", "debtags")
    cache_dir = os.fspath(cache_dir)
    os.makedirs(cache_dir, exist_ok=True)
    if not rebuild:
        cached = _load_cache(cache_dir)
        if cached is not None:
            return cached

    pk_path = os.path.join(cache_dir, "Packages")
    tr_path = os.path.join(cache_dir, "Translation-en")
    if not rebuild and os.path.isfile(pk_path) and os.path.isfile(tr_path):
        packages, translation = _read_text(pk_path), _read_text(tr_path)
        dates = _index_dates(os.path.join(cache_dir, "aptlists"))
        origin = "files Packages and Translation-en in cache_dir"
    else:
        workdir = tempfile.mkdtemp(prefix="apt-", dir=cache_dir)
        try:
            packages, translation, dates = _fetch_apt(workdir, cache_dir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        origin = "apt-get update (private lists dir) + apt-helper cat-file + apt-cache dumpavail"

    meta = {
        "source": "Debian apt indexes: Packages (Tag, Source, Description-md5) joined "
        "with Translation-en on Description-md5",
        "origin": origin,
        "index_date": max(dates.values()) if dates else None,
        "index_dates": dates,
        "built": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    try:
        ds = build_debtags(packages, translation, meta)
    except ValueError as exc:
        raise _apt_error(cache_dir, f"could not parse the apt output: {exc}") from exc
    if ds.n_samples == 0:
        raise _apt_error(cache_dir, "no tagged package with a description was found")
    _save_cache(cache_dir, ds)
    return ds
