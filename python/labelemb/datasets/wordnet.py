"""WordNet 3.0 nouns labelled with all their hypernym ancestors (a large real label set).

Each noun synset of WordNet 3.0 is a sample: its input text is its lemmas and its gloss
(``"dog, domestic dog, Canis familiaris: a member of the genus Canis ..."``), its labels
are every synset above it through hypernym (``@``) and instance-hypernym (``@i``) links,
the transitive closure (``dog.n.01`` carries ``canine.n.02``, ``carnivore.n.01``, ...,
``entity.n.01``). Labels are named as NLTK names synsets: first lemma, ``n``, and the
sense number of the synset for that lemma in ``index.noun``.

Synsets that share a lemma (``bank.n.01`` and ``bank.n.02``, or two synsets listing
``hot dog``) are near-duplicates in their text, so they form one group (union-find over
lower-cased lemmas) and a group never spans two parts of the split.

Sources: a derived copy of ``data.noun``/``index.noun`` embedded in the package
(``data/wordnet30.npz``, no network needed, built by ``scripts/build_wordnet.py``), or
the Debian package ``wordnet-base`` fetched with ``apt-get download`` and cached. The
WordNet 3.0 licence notice travels with the data (``data/wordnet30-LICENSE.txt``).
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import subprocess
import tempfile
import zipfile
from importlib import resources
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

from .._io import atomic_write
from .._validation import check_choice
from . import _debian
from .text import LabelledTexts, TextDataset, check_text_options, make_text_dataset

__all__ = [
    "build_wordnet",
    "corpus_from_arrays",
    "hypernym_closure",
    "lemma_groups",
    "load_wordnet",
    "parse_data_noun",
    "parse_index_noun",
    "read_wordnet_file",
    "wordnet_corpus",
    "write_wordnet_file",
]

PACKAGE = "wordnet-base"
DATA_FILE = "wordnet30.npz"
LICENSE_FILE = "wordnet30-LICENSE.txt"
WORDNET_DIR = os.path.join("usr", "share", "wordnet")
SPLIT_SALT = "labelemb-wordnet-split-v1"
FORMAT_VERSION = "1"
HYPERNYM_POINTERS = ("@", "@i")
_META_KEYS = (
    "format_version",
    "source_package",
    "source_version",
    "source_sha256",
    "upstream",
    "license",
    "build_date",
    "build_command",
)
_BLOBS = ("ids", "names", "lemmas", "glosses")
_embedded: Dict[str, object] = {}


# ----------------------------------------------------------------------------- parsing


def parse_data_noun(text: str) -> Iterator[Tuple[str, List[str], List[str], str]]:
    """Yield ``(offset, lemmas, hypernym offsets, gloss)`` per synset of ``data.noun``.

    Licence lines (starting with two spaces) are skipped. A line is ``offset lex_filenum
    ss_type w_cnt (word lex_id){w_cnt} p_cnt (symbol offset pos source/target){p_cnt}
    | gloss``, with ``w_cnt`` in hexadecimal; the hypernyms are the ``@`` and ``@i``
    pointers to nouns.

    Raises
    ------
    ValueError
        For a malformed line (with its 1-based line number).
    """
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("  "):
            continue
        head, _, gloss = line.partition("|")
        f = head.split()
        try:
            n_words = int(f[3], 16)
            lemmas = [f[4 + 2 * i] for i in range(n_words)]
            at = 4 + 2 * n_words
            n_ptr = int(f[at])
            ptrs = f[at + 1 : at + 1 + 4 * n_ptr]
            if len(ptrs) != 4 * n_ptr or not lemmas or not f[0].isdigit():
                raise IndexError
        except (IndexError, ValueError):
            raise ValueError(f"data.noun line {lineno}: malformed synset {line[:60]!r}") from None
        parents = [
            ptrs[4 * k + 1]
            for k in range(n_ptr)
            if ptrs[4 * k] in HYPERNYM_POINTERS and ptrs[4 * k + 2] == "n"
        ]
        yield f[0], lemmas, parents, gloss.strip()


def parse_index_noun(text: str) -> Dict[str, List[str]]:
    """Map lemma -> synset offsets in sense order, from ``index.noun``.

    A line is ``lemma pos synset_cnt p_cnt (symbol){p_cnt} sense_cnt tagsense_cnt
    (offset){synset_cnt}``; the offsets are its last ``synset_cnt`` fields.
    """
    out: Dict[str, List[str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("  "):
            continue
        f = line.split()
        try:
            count = int(f[2])
        except (IndexError, ValueError):
            continue
        if count > 0 and len(f) >= 4 + count:
            out[f[0]] = f[len(f) - count :]
    return out


def synset_names(
    offsets: Sequence[str], lemmas: Sequence[List[str]], index: Optional[Dict[str, List[str]]]
) -> List[str]:
    """NLTK-style names ``lemma.n.NN`` (sense number of the synset for its first lemma).

    Without an index entry for the lemma the name is ``lemma.n.OFFSET``.
    """
    names = []
    for off, words in zip(offsets, lemmas):
        lemma = words[0].lower()
        senses = (index or {}).get(lemma, [])
        names.append(f"{lemma}.n.{senses.index(off) + 1:02d}" if off in senses
                     else f"{lemma}.n.{off}")
    return names


def hypernym_closure(parents: sp.csr_matrix) -> sp.csr_matrix:
    """All ancestors: the transitive closure of a binary (n, n) parent matrix.

    ``parents[i, p] == 1`` when ``p`` is a direct hypernym of ``i``; the result has a one
    at ``(i, a)`` for every ``a`` reachable from ``i`` by one or more links. Adds the
    newly reached ancestors one level at a time (as many products as the hierarchy is
    deep).

    Raises
    ------
    ValueError
        When the links contain a cycle.
    """
    a = sp.csr_matrix(parents, dtype=np.float32)
    a.data[:] = 1
    reach = a.copy()
    frontier = a
    for _ in range(a.shape[0] + 1):
        step = frontier @ a
        step.data[:] = 1
        grown = reach + step
        grown.data[:] = 1
        if grown.nnz == reach.nnz:
            break
        frontier = grown - reach
        frontier.eliminate_zeros()
        reach = grown
    reach.sort_indices()
    on_cycle = np.flatnonzero(reach.diagonal())
    if len(on_cycle):
        raise ValueError(f"the hypernym links contain a cycle through synset {on_cycle[0]}")
    return reach


def lemma_groups(lemmas: Sequence[List[str]]) -> Tuple[np.ndarray, List[str]]:
    """Group synsets that share a lower-cased lemma, transitively (union-find).

    Returns ``groups`` (int32 index per synset) and ``group_names`` (each group named by
    its alphabetically first lemma; sorted).
    """
    parent = list(range(len(lemmas)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first: Dict[str, int] = {}
    for i, words in enumerate(lemmas):
        for w in words:
            j = first.setdefault(w.lower(), i)
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(len(lemmas))], dtype=np.int64)
    label: Dict[int, str] = {}
    for i, words in enumerate(lemmas):
        best = min(w.lower() for w in words)
        r = int(roots[i])
        if r not in label or best < label[r]:
            label[r] = best
    group_names = sorted(label.values())
    col = {g: k for k, g in enumerate(group_names)}
    groups = np.array([col[label[int(r)]] for r in roots], dtype=np.int32)
    return groups, group_names


# ------------------------------------------------------------------- stored arrays


def _blob(strings: Sequence[str]) -> np.ndarray:
    return np.frombuffer("\n".join(strings).encode("utf-8"), dtype=np.uint8)


def _unblob(arr: np.ndarray) -> List[str]:
    text = arr.tobytes().decode("utf-8")
    return text.split("\n") if text else []


def build_wordnet(
    data_noun_text: str, index_noun_text: Optional[str] = None, meta: Optional[dict] = None
) -> Dict[str, np.ndarray]:
    """Parse ``data.noun`` (and ``index.noun`` for the names) into the stored arrays.

    Returns
    -------
    dict of ndarray
        ``ids`` (offsets), ``names``, ``lemmas`` (tab separated per synset) and
        ``glosses`` as UTF-8 blobs (one line per synset), ``parent_indptr`` /
        ``parent_indices`` (int32 CSR of the direct ``@``/``@i`` hypernyms, as synset
        rows) and the ``meta`` entries as 0-d strings. This is the content of
        ``wordnet30.npz``; :func:`corpus_from_arrays` turns it into samples and labels.
    """
    records = list(parse_data_noun(data_noun_text))
    offsets = [r[0] for r in records]
    row = {off: i for i, off in enumerate(offsets)}
    if len(row) != len(offsets):
        raise ValueError("data.noun lists a synset offset twice")
    indptr = [0]
    indices: List[int] = []
    for off, _, parents, _ in records:
        for p in parents:
            if p not in row:
                raise ValueError(f"synset {off} points to a hypernym {p} missing from data.noun")
            indices.append(row[p])
        indptr.append(len(indices))
    index = parse_index_noun(index_noun_text) if index_noun_text else None
    lemmas = [r[1] for r in records]
    arrays = {
        "ids": _blob(offsets),
        "names": _blob(synset_names(offsets, lemmas, index)),
        "lemmas": _blob(["\t".join(w) for w in lemmas]),
        "glosses": _blob([r[3] for r in records]),
        "parent_indptr": np.asarray(indptr, dtype=np.int32),
        "parent_indices": np.asarray(indices, dtype=np.int32),
    }
    full_meta = {"format_version": FORMAT_VERSION, **(meta or {})}
    for key in _META_KEYS:
        if full_meta.get(key) is not None:
            arrays[key] = np.array(str(full_meta[key]))
    return arrays


def sample_text(lemmas: Sequence[str], gloss: str) -> str:
    """The input text of a synset: its lemmas (``_`` as spaces), a colon, its gloss."""
    return ", ".join(w.replace("_", " ") for w in lemmas) + ": " + gloss


def corpus_from_arrays(arrays: Dict[str, np.ndarray]) -> LabelledTexts:
    """Samples (synsets), texts, ancestor labels and lemma groups from the stored arrays.

    The label columns are the synsets that are an ancestor of at least one synset,
    sorted by name; a synset with no hypernym (``entity.n.01``) has no label.
    """
    names = _unblob(arrays["names"])
    lemmas = [s.split("\t") for s in _unblob(arrays["lemmas"])]
    glosses = _unblob(arrays["glosses"])
    n = len(names)
    if not (len(lemmas) == len(glosses) == n == len(arrays["parent_indptr"]) - 1):
        raise ValueError("the WordNet arrays disagree on the number of synsets")
    parents = sp.csr_matrix(
        (np.ones(len(arrays["parent_indices"]), dtype=np.float32),
         arrays["parent_indices"].astype(np.int32), arrays["parent_indptr"].astype(np.int64)),
        shape=(n, n),
    )
    ancestors = hypernym_closure(parents)
    used = np.flatnonzero(np.diff(ancestors.tocsc().indptr))
    order = used[np.argsort([names[j] for j in used], kind="stable")]
    labels = ancestors[:, order].tocsr()
    labels.sort_indices()
    groups, group_names = lemma_groups(lemmas)
    meta: Dict[str, object] = {k: str(arrays[k]) for k in _META_KEYS if k in arrays}
    version = meta.get("source_version", "unknown version")
    return LabelledTexts(
        texts=[sample_text(w, g) for w, g in zip(lemmas, glosses)],
        labels=labels,
        label_names=[names[j] for j in order],
        ids=names,
        groups=groups,
        group_names=group_names,
        source=f"WordNet 3.0 nouns, Debian {meta.get('source_package', PACKAGE)} {version}",
        meta=meta,
    )


def write_wordnet_file(path: str, arrays: Dict[str, np.ndarray]) -> None:
    """Write the arrays as an ``.npz`` with LZMA members, atomically.

    ``np.load`` reads it as any npz (through Python's ``lzma`` module); LZMA takes the
    glosses to about a third of the size deflate gives.
    """
    with atomic_write(path) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_LZMA) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_LZMA
            with zf.open(info, "w") as member:
                np.lib.format.write_array(member, np.asarray(arrays[key]), allow_pickle=False)


def read_wordnet_file(path: str) -> Dict[str, np.ndarray]:
    """Read the arrays written by :func:`write_wordnet_file` (no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    missing = {"parent_indptr", "parent_indices", *_BLOBS} - set(arrays)
    if missing:
        raise ValueError(f"{path} is not a WordNet arrays file (missing {sorted(missing)})")
    if str(arrays.get("format_version", "")) != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {arrays.get('format_version')!r}, "
                         f"expected {FORMAT_VERSION}")
    return arrays


# ------------------------------------------------------------------------------ sources


def _embedded_corpus() -> LabelledTexts:
    """The embedded copy, parsed once per process."""
    if "corpus" not in _embedded:
        ref = resources.files(__package__) / "data" / DATA_FILE
        with resources.as_file(ref) as path:
            arrays = read_wordnet_file(os.fspath(path))
        corpus = corpus_from_arrays(arrays)
        for arr in (corpus.labels.data, corpus.labels.indices, corpus.labels.indptr,
                    corpus.groups):
            arr.flags.writeable = False  # shared by every later call in this process
        _embedded["corpus"] = corpus
    return _embedded["corpus"]  # type: ignore[return-value]


def arrays_from_deb(deb: dict, workdir: str, *, run=None) -> Dict[str, np.ndarray]:
    """Unpack a fetched ``wordnet-base`` .deb (see ``_debian.fetch_deb``) and parse it."""
    root = _debian.extract_deb(deb["path"], os.path.join(workdir, "extract"), run=run)
    wn = os.path.join(root, WORDNET_DIR)
    with open(os.path.join(wn, "data.noun"), encoding="utf-8") as fh:
        data_noun = fh.read()
    index_path = os.path.join(wn, "index.noun")
    index_noun = None
    if os.path.isfile(index_path):
        with open(index_path, encoding="utf-8") as fh:
            index_noun = fh.read()
    meta = {
        "source_package": deb["package"],
        "source_version": deb["version"],
        "source_sha256": deb["sha256"],
        "upstream": "WordNet 3.0, Princeton University (https://wordnet.princeton.edu)",
        "license": "WordNet 3.0 licence (free use and redistribution with its notice)",
        "build_date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return build_wordnet(data_noun, index_noun, meta)


def _debian_corpus(cache_dir: Optional[str], rebuild: bool) -> LabelledTexts:
    if cache_dir is None:
        cache_dir = os.path.join(os.path.expanduser("~"), ".cache", "labelemb", "wordnet")
    cache_dir = os.fspath(cache_dir)
    os.makedirs(cache_dir, exist_ok=True)
    cached = os.path.join(cache_dir, DATA_FILE)
    if not rebuild and os.path.isfile(cached):
        try:
            return corpus_from_arrays(read_wordnet_file(cached))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # rebuilt below
    run = _debian.run_command
    deb = _debian.fetch_deb(PACKAGE, cache_dir, loader="load_wordnet(source='debian')", run=run)
    workdir = tempfile.mkdtemp(prefix="wordnet-", dir=cache_dir)
    try:
        arrays = arrays_from_deb(deb, workdir, run=run)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(
            f"load_wordnet(source='debian'): could not unpack {deb['path']} ({exc}); "
            f"delete it and call again to download it anew"
        ) from exc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    arrays["build_command"] = np.array("load_wordnet(source='debian')")
    write_wordnet_file(cached, arrays)
    return corpus_from_arrays(arrays)


def wordnet_corpus(
    source: str = "embedded", *, cache_dir: Optional[str] = None, rebuild: bool = False
) -> LabelledTexts:
    """All WordNet 3.0 noun synsets with their full ancestor label set (no split).

    Parameters are those of :func:`load_wordnet`.
    """
    check_choice(source, "source", ("embedded", "debian"))
    if source == "embedded":
        return _embedded_corpus()
    return _debian_corpus(cache_dir, rebuild)


def load_wordnet(
    *,
    source: str = "embedded",
    min_count: int = 5,
    max_label_fraction: Optional[float] = None,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    tfidf: Optional[dict] = None,
    cache_dir: Optional[str] = None,
    rebuild: bool = False,
) -> TextDataset:
    """WordNet 3.0 nouns -> all their hypernym ancestors, with TF-IDF features.

    Parameters
    ----------
    source : {"embedded", "debian"}, default "embedded"
        ``"embedded"`` reads the copy shipped in the package (no network, no apt);
        ``"debian"`` runs ``apt-get download wordnet-base`` into ``cache_dir``, unpacks
        it with ``dpkg-deb -x`` and caches the parsed arrays there (``wordnet30.npz``,
        written atomically, with the package version and checksum).
    min_count : int, default 5
        Keep the labels carried by at least this many training samples; ``1`` keeps every
        label seen in training, ``0`` the whole label set.
    max_label_fraction : float in (0, 1], optional
        Also drop the labels on more than this fraction of the training samples. ``0.3``
        removes the five near-root labels (``entity.n.01`` is on every labelled synset,
        ``physical_entity.n.01``, ``abstraction.n.06``, ...), which otherwise make P@1
        trivial (a TF-IDF 10-NN gets P@1 0.997 with them, 0.79 without them).
    valid_fraction : float in [0, 1), default 0.1
        Share of the non-test samples, as whole lemma groups, in the validation part.
    test_fraction : float in [0, 1), default 0.2
        Share of the samples, as whole lemma groups, in the test part. The one group of
        ~12,000 synsets linked by polysemous lemmas stays in training.
    tfidf : dict, optional
        ``TfidfVectorizer`` options replacing the defaults (``sublinear_tf=True``,
        float32, ``min_df=2``, ``max_df=0.5``, ``max_features=200000``); the vectorizer
        is fitted on the training texts only.
    cache_dir : str or path, optional
        For ``source="debian"`` (default ``~/.cache/labelemb/wordnet``).
    rebuild : bool, default False
        For ``source="debian"``: ignore the cached arrays and parse the package again.

    Returns
    -------
    TextDataset
        ``X_train``/``Y_train``/``X_valid``/``Y_valid``/``X_test``/``Y_test`` (CSR
        float32), ``label_names`` (synset names such as ``"canine.n.02"``), the texts,
        ids and groups of each part, ``source`` and ``vectorizer``. All 82,115 synsets
        carry 17,157 distinct ancestor labels, 9.05 per synset; with the defaults:
        59,153 / 6,542 / 16,419 train / validation / test synsets, 4,934 labels,
        36,083 TF-IDF features.

    Raises
    ------
    RuntimeError
        With ``source="debian"``, when ``wordnet-base`` cannot be fetched; the message
        gives the commands that fetch it by hand.

    Examples
    --------
    >>> from labelemb.datasets import load_wordnet
    >>> ds = load_wordnet()  # doctest: +SKIP
    >>> ds.X_train.shape[0] > 50_000, ds.Y_train.shape[1] > 5_000  # doctest: +SKIP
    (True, True)
    """
    check_text_options(min_count, max_label_fraction, valid_fraction, test_fraction, tfidf)
    corpus = wordnet_corpus(source, cache_dir=cache_dir, rebuild=rebuild)
    return make_text_dataset(
        corpus,
        min_count=min_count,
        max_label_fraction=max_label_fraction,
        valid_fraction=valid_fraction,
        test_fraction=test_fraction,
        salt=SPLIT_SALT,
        tfidf=tfidf,
        name="WordNet 3.0 nouns -> hypernym ancestors",
    )
