"""Debian binary packages labelled with the packages they depend on (a large real label set).

A sample is a binary package of the apt indexes of the machine: its input text is its
description (synopsis and long description, from ``Translation-en`` joined on
``Description-md5`` as for debtags), its labels are the names in its ``Depends``,
``Pre-Depends`` and ``Recommends`` fields: the first alternative of each entry, with
version constraints (``(>= 2.34)``), architecture qualifiers (``:any``) and
restrictions (``[amd64]``, ``<!nocheck>``) dropped. Binaries of one source package
share their descriptions and much of their dependencies, so the split keeps each
``Source`` package on one side.

The parsing functions (:func:`dependency_names`, :func:`join_dependencies`,
:func:`build_debian_deps`) work on text and can be tried on hand-written records.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import tempfile
from typing import Dict, List, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from . import _debian
from .debtags import description_text, parse_deb822, parse_translations, source_name
from .text import (
    LabelledTexts,
    TextDataset,
    check_text_options,
    load_corpus,
    make_text_dataset,
    save_corpus,
)

__all__ = [
    "DEPENDENCY_FIELDS",
    "build_debian_deps",
    "debian_deps_corpus",
    "dependency_names",
    "join_dependencies",
    "load_debian_deps",
]

DEPENDENCY_FIELDS = ("Depends", "Pre-Depends", "Recommends")
SPLIT_SALT = "labelemb-debian-deps-split-v1"
CACHE_NAME = "debian_deps"
_QUALIFIERS = re.compile(r"\([^)]*\)|\[[^\]]*\]|<[^>]*>")


def dependency_names(record: Dict[str, str]) -> List[str]:
    """Sorted unique package names a ``Packages`` record depends on or recommends.

    Each comma-separated entry of ``Depends``, ``Pre-Depends`` and ``Recommends``
    contributes its first alternative (before ``|``), without its version constraint,
    architecture restriction, build profile or ``:arch`` qualifier.
    """
    names = set()
    for key in DEPENDENCY_FIELDS:
        for entry in record.get(key, "").replace("\n", " ").split(","):
            first = _QUALIFIERS.sub(" ", entry.split("|", 1)[0]).split()
            if first:
                names.add(first[0].split(":", 1)[0])
    return sorted(names)


def join_dependencies(packages_text: str, translation_text: str) -> Tuple[list, dict]:
    """Join ``Packages`` records that have dependencies with their English descriptions.

    Returns
    -------
    records : list of dict
        One per package with at least one dependency and a long description, sorted by
        package name: ``package``, ``source``, ``text``, ``deps`` (list of str). The first
        record of a package name wins. Without a ``Translation-en`` entry for its
        ``Description-md5``, a record's own multi-line ``Description`` is used.
    stats : dict
        ``packages`` (distinct names), ``with_dependency``, ``no_description`` (dropped).
    """
    translations = parse_translations(translation_text)
    seen = set()
    records = []
    with_deps = no_desc = 0
    for rec in parse_deb822(packages_text):
        name = rec.get("Package")
        if not name or name in seen:
            continue
        seen.add(name)
        deps = dependency_names(rec)
        if not deps:
            continue
        with_deps += 1
        text = translations.get(rec.get("Description-md5", ""))
        if text is None:
            own = rec.get("Description-en") or rec.get("Description") or ""
            text = description_text(own) if "\n" in own else None
        if not text:
            no_desc += 1
            continue
        records.append({"package": name, "source": source_name(rec), "text": text, "deps": deps})
    records.sort(key=lambda r: r["package"])
    return records, {"packages": len(seen), "with_dependency": with_deps,
                     "no_description": no_desc}


def build_debian_deps(
    packages_text: str, translation_text: str, source: str = "Debian apt indexes",
    meta: Optional[dict] = None,
) -> LabelledTexts:
    """All packages with dependencies as a :class:`~labelemb.datasets.text.LabelledTexts`.

    ``label_names`` are the sorted dependency names; ``groups`` index the sorted
    ``Source`` package names; ``ids`` are the binary package names.
    """
    records, stats = join_dependencies(packages_text, translation_text)
    label_names = sorted({d for r in records for d in r["deps"]})
    col = {d: j for j, d in enumerate(label_names)}
    indptr = np.zeros(len(records) + 1, dtype=np.int64)
    indices: List[int] = []
    for i, r in enumerate(records):
        indices.extend(col[d] for d in r["deps"])
        indptr[i + 1] = len(indices)
    labels = sp.csr_matrix(
        (np.ones(len(indices), dtype=np.float32), np.asarray(indices, dtype=np.int32), indptr),
        shape=(len(records), len(label_names)),
    )
    group_names = sorted({r["source"] for r in records})
    gcol = {g: k for k, g in enumerate(group_names)}
    out_meta = dict(meta or {})
    out_meta.update(stats)
    return LabelledTexts(
        texts=[r["text"] for r in records],
        labels=labels,
        label_names=label_names,
        ids=[r["package"] for r in records],
        groups=np.array([gcol[r["source"]] for r in records], dtype=np.int32),
        group_names=group_names,
        source=source,
        meta=out_meta,
    )


def _apt_error(cache_dir: str, reason: str) -> RuntimeError:
    return RuntimeError(
        f"load_debian_deps: could not obtain the Debian apt indexes ({reason}).\n"
        "It needs a Debian/Ubuntu system with apt and access to its mirrors. Run these "
        "commands (as root, or with sudo for apt-get update):\n"
        f"{_debian.manual_index_commands(cache_dir)}\n"
        f"then call load_debian_deps(cache_dir={cache_dir!r}) again: it uses the files "
        "'Packages' and 'Translation-en' found there."
    )


def debian_deps_corpus(cache_dir: Optional[str] = None, *, rebuild: bool = False
                       ) -> LabelledTexts:
    """All packages with their full dependency label set, unsplit (see load_debian_deps)."""
    if cache_dir is None:
        cache_dir = os.path.join(os.path.expanduser("~"), ".cache", "labelemb", "debian-deps")
    cache_dir = os.fspath(cache_dir)
    os.makedirs(cache_dir, exist_ok=True)
    if not rebuild:
        cached = load_corpus(cache_dir, CACHE_NAME)
        if cached is not None:
            return cached

    pk_path = os.path.join(cache_dir, "Packages")
    tr_path = os.path.join(cache_dir, "Translation-en")
    if not rebuild and os.path.isfile(pk_path) and os.path.isfile(tr_path):
        with open(pk_path, encoding="utf-8", errors="replace") as fh:
            packages = fh.read()
        with open(tr_path, encoding="utf-8", errors="replace") as fh:
            translation = fh.read()
        dates = _debian.index_dates(os.path.join(cache_dir, "aptlists"))
        origin = "files Packages and Translation-en in cache_dir"
    else:
        workdir = tempfile.mkdtemp(prefix="apt-", dir=cache_dir)
        try:
            packages, translation, dates = _debian.fetch_apt_indexes(
                workdir, error=lambda reason: _apt_error(cache_dir, reason),
                run=_debian.run_command,
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        origin = "apt-get update (private lists dir) + apt-helper cat-file + apt-cache dumpavail"
    index_date = max(dates.values()) if dates else None
    meta = {
        "origin": origin,
        "index_date": index_date,
        "index_dates": dates,
        "built": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    source = f"Debian apt indexes of {index_date or 'unknown date'} (Packages + Translation-en)"
    try:
        corpus = build_debian_deps(packages, translation, source, meta)
    except ValueError as exc:
        raise _apt_error(cache_dir, f"could not parse the apt output: {exc}") from exc
    if corpus.n_samples == 0:
        raise _apt_error(cache_dir, "no package with a dependency and a description was found")
    save_corpus(cache_dir, CACHE_NAME, corpus)
    return corpus


def load_debian_deps(
    cache_dir: Optional[str] = None,
    *,
    min_count: int = 5,
    max_label_fraction: Optional[float] = None,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    tfidf: Optional[dict] = None,
    rebuild: bool = False,
) -> TextDataset:
    """Debian packages -> the packages they depend on, with TF-IDF features of their text.

    Parameters
    ----------
    cache_dir : str or path, optional
        Where the parsed data are cached (``debian_deps.npz`` + ``debian_deps.json``,
        written atomically, with the date of the apt indexes); default
        ``~/.cache/labelemb/debian-deps``. Files ``Packages`` and ``Translation-en``
        found there are used instead of running apt.
    min_count : int, default 5
        Keep the labels carried by at least this many training samples; ``1`` keeps every
        label seen in training, ``0`` the whole label set.
    max_label_fraction : float in (0, 1], optional
        Also drop the labels on more than this fraction of the training samples
        (``libc6`` is on about half of them).
    valid_fraction : float in [0, 1), default 0.1
        Share of the non-test samples, as whole Source packages, in the validation part.
    test_fraction : float in [0, 1), default 0.2
        Share of the samples, as whole Source packages, in the test part.
    tfidf : dict, optional
        ``TfidfVectorizer`` options replacing the defaults (see
        :data:`labelemb.datasets.text.TFIDF_DEFAULTS`); fitted on the training texts only.
    rebuild : bool, default False
        Ignore the cache and run apt again (``apt-get update`` into a private lists
        directory, ``apt-helper cat-file``, ``apt-cache dumpavail``).

    Returns
    -------
    TextDataset
        With the Debian 12 indexes: ~57,000 packages with a dependency and a
        description, ~41,500 distinct dependencies, ~5.3 per package; with the
        defaults ~37,600 / 3,600 / 10,400 train / validation / test packages, ~5,900
        labels, ~30,000 TF-IDF features.

    Raises
    ------
    RuntimeError
        When the apt indexes cannot be obtained; the message lists the commands that
        write ``Packages`` and ``Translation-en`` into ``cache_dir`` by hand.
    """
    check_text_options(min_count, max_label_fraction, valid_fraction, test_fraction, tfidf)
    corpus = debian_deps_corpus(cache_dir, rebuild=rebuild)
    return make_text_dataset(
        corpus,
        min_count=min_count,
        max_label_fraction=max_label_fraction,
        valid_fraction=valid_fraction,
        test_fraction=test_fraction,
        salt=SPLIT_SALT,
        tfidf=tfidf,
        name="Debian packages -> dependencies",
    )
