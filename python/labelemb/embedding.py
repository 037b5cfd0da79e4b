"""Steps 3 and 4 of the method: label vectors from the PMI matrix, and targets from label sets.

:func:`fit_embeddings` runs counts -> PMI -> truncated eigendecomposition -> unit label
vectors and returns a :class:`LabelEmbedding`, which encodes label sets as regression
targets, decodes predictions, finds neighbouring labels, and saves to one ``.npz`` file.

File format (``LabelEmbedding.save``; ``numpy.savez``, read with ``allow_pickle=False``):

====================  ==============================  =====================================
key                   dtype, shape                    content
====================  ==============================  =====================================
``format``            str, ()                         ``"labelemb.LabelEmbedding"``
``format_version``    int64, ()                       1; readers refuse newer versions
``vectors``           float32, (L, d)                 unit rows (zero rows: labels unseen)
``label_counts``      int64, (L,)                     training occurrences of each label
``n_samples``         int64, ()                       training samples counted
``eigenvalues``       float64, (d,)                   the kept eigenvalues, decreasing
``label_names``       str, (L,) or (0,)               names, or empty when labels are ids
``has_label_names``   bool, ()                        whether ``label_names`` is meaningful
``params``            str, ()                         JSON object: how the embedding was fit
====================  ==============================  =====================================
"""

from __future__ import annotations

import json
import numbers
import os
import warnings
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp

from ._io import atomic_write
from ._labels import _from_pandas, _is_pandas, to_batch
from ._npz import members as _members
from ._npz import read_npz
from ._progress import StageBars as _StageBars
from ._validation import check_bool, check_choice, check_float, check_int, check_threads
from ._version import __version__
from .cooccurrence import Cooccurrence, cooccurrence
from .eigh import _eigh, _symmetric_csr_arrays
from .pmi import DIAGONALS, PMI_KINDS, pmi_matrix
from .streaming import as_reader

FORMAT = "labelemb.LabelEmbedding"
FORMAT_VERSION = 1
# Eigenvalues at or below this share of the largest count as zero (not part of the
# positive spectrum); products run in float32, so smaller ones are rounding noise.
POSITIVE_RTOL = 1e-5
# A label vector whose norm is further than this from 1 is renormalised (with a warning).
UNIT_RTOL = 1e-3

PathLike = Union[str, "os.PathLike[str]"]


class EmbeddingWarning(UserWarning):
    """Something about the embedding the user should know: a smaller dimension than asked
    for, labels without a vector, label sets that encode to zero."""


def fit_embeddings(labels, dim: int = 256, *, n_labels: Optional[int] = None, pmi: str = "ppmi",
                   shift: float = 0.0, alpha: float = 1.0, min_count: int = 1,
                   diagonal: str = "self", power: float = 0.5, which: str = "LA",
                   n_iter: int = 4, oversample: int = 16, seed: int = 0,
                   num_threads: int = 0, progress: bool = False, client=None,
                   read_kwargs: Optional[dict] = None) -> LabelEmbedding:
    """Information-theoretic label embeddings (Chollet 2016) from training label sets.

    Counts -> PMI matrix -> rank-``dim`` eigendecomposition (largest algebraic
    eigenvalues by default, :func:`labelemb.randomized_eigh`) -> ``E = U Sigma^(1/2)``
    (``|Sigma|^power``) on the kept eigenpairs -> rows normalised to unit length.

    Parameters
    ----------
    labels : anything :func:`labelemb.cooccurrence` takes, or a Cooccurrence
        Samples x labels: sparse matrix, dense 0/1 array, list of label sets (ids or
        names), an iterator of chunks (streamed), or counts already computed; or label
        files: a path, a list of paths, or a :func:`labelemb.read_labels` reader.
    dim : int, default 256
        Embedding dimension ``d``; must be smaller than the number of labels ``L``. When
        the PMI matrix has fewer than ``dim`` positive eigenvalues (a dot product can only
        represent the positive part), the embedding keeps those, ``d < dim``, and an
        :class:`EmbeddingWarning` says so.
    n_labels : int, optional
        Size of the label space for id inputs (labels never seen get zero vectors).
    pmi, shift, alpha, min_count, diagonal
        PMI variant, see :func:`labelemb.pmi_matrix` (``pmi`` is its ``kind``).
    power : float, default 0.5
        Label vectors are the rows of ``U |Lambda|^power`` before they are normalised:
        0.5 factorises the PMI matrix (``E E^T ~ P``, the paper's choice), 0 keeps the
        bare eigenvectors (every kept direction weighs the same), 1 weighs each direction
        by its eigenvalue (``E E^T ~ P^2``, stronger directions dominate further).
    which : {"LA", "LM"}, default "LA"
        Eigenpairs kept: the largest algebraic ones (the positive part, which a dot
        product can represent), or the largest in magnitude. With "LM", directions of
        negative eigenvalues (labels that avoid each other) enter the vectors scaled by
        ``|lambda|^power``: ``E E^T`` then approximates ``U |Lambda|^(2 power) U^T``, not
        ``P``. Of use as a start for a learned label matrix (the low-rank head), rarely for
        nearest-label decoding.
    n_iter, oversample, seed
        Of :func:`labelemb.randomized_eigh`.
    num_threads : int, default 0
        Threads for every kernel (0 = all cores).
    progress : bool, default False
        Show a progress bar per stage (needs tqdm; silently none without it).
    client : distributed.Client, optional
        Count on this Dask cluster (:func:`labelemb.dask.cooccurrence`): ``labels`` is
        then a dask bag or dataframe of label lists, or label files (paths or a
        :class:`~labelemb.streaming.LabelReader`), each read on a worker with the same
        options and separator as in this process. The PMI and eigendecomposition steps
        run here (they need only the L x L counts).
    read_kwargs : dict, optional
        When ``labels`` are file paths: options of :func:`labelemb.read_labels`
        (``delimiter``, ``labels``, ``format``, ...), used in this process and on the
        Dask workers alike. Paths without it are read with the defaults (separator
        detected).

    Returns
    -------
    LabelEmbedding
        ``vectors`` (L x d float32, unit rows; labels that never occur get zero rows and
        an :class:`EmbeddingWarning` with their number).

    Examples
    --------
    >>> import labelemb
    >>> data = labelemb.make_topic_labels(5000, 200, seed=0)
    >>> emb = labelemb.fit_embeddings(data.labels, dim=16)
    >>> emb.vectors.shape
    (200, 16)
    >>> targets = emb.encode([[0, 3], [5]])
    >>> targets.shape, targets.dtype.name
    ((2, 16), 'float32')
    """
    dim = check_int(dim, "dim", lo=1)
    power = check_float(power, "power", lo=0.0, hi=4.0)
    check_choice(which, "which", ("LA", "LM"))
    check_choice(pmi, "pmi", PMI_KINDS)
    check_choice(diagonal, "diagonal", DIAGONALS)
    shift = check_float(shift, "shift", lo=0.0)
    alpha = check_float(alpha, "alpha", lo=0.0, hi=1.0, lo_open=True)
    min_count = check_int(min_count, "min_count", lo=1)
    n_iter = check_int(n_iter, "n_iter", lo=0, hi=10_000)
    oversample = check_int(oversample, "oversample", lo=0)
    seed = check_int(seed, "seed", lo=0, hi=2**64 - 1)
    num_threads = check_threads(num_threads)
    if n_labels is not None:
        n_labels = check_int(n_labels, "n_labels", lo=1)
    progress = check_bool(progress, "progress")
    reader = as_reader(labels, read_kwargs, progress)  # label files, or None
    labels = labels if reader is None else reader
    if client is not None and isinstance(labels, Cooccurrence):
        raise ValueError("client= counts on a Dask cluster, but labels are counts already; "
                         "drop client=")
    bars = _StageBars(bool(progress))

    with bars.stage("co-occurrence") as bar:
        if client is not None:
            from .dask import cooccurrence as dask_cooccurrence

            counts = dask_cooccurrence(labels, client=client, n_labels=n_labels)
        else:
            counts = cooccurrence(labels, n_labels=n_labels, num_threads=num_threads)
        bar.update(1)
    L = counts.n_labels
    if L < 2:
        raise ValueError(f"labels: need at least 2 labels to embed, got {L}")
    if dim >= L:
        raise ValueError(f"dim={dim} must be smaller than the number of labels ({L}); "
                         f"pass dim <= {L - 1}")
    with bars.stage("PMI") as bar:
        P = pmi_matrix(counts, kind=pmi, shift=shift, alpha=alpha, min_count=min_count,
                       diagonal=diagonal, num_threads=num_threads)
        bar.update(1)
    if P.nnz == 0:
        raise ValueError("the PMI matrix is empty (no label pair or label passes min_count and "
                         "the positivity of PPMI): there is nothing to embed")
    with bars.stage(f"eigendecomposition (rank {dim}, {n_iter + 3} products)") as bar:
        # P is symmetric, finite and canonical by construction: no O(nnz) checks again.
        values, U = _eigh(_symmetric_csr_arrays(P), L, dim, which, n_iter, oversample, seed,
                          num_threads)
        bar.update(1)
    with bars.stage("label vectors") as bar:
        if which == "LA":
            top = float(values[0])
            if not top > 0:
                raise ValueError("the PMI matrix has no positive eigenvalue: a dot product "
                                 "cannot represent it (try pmi='ppmi', or a smaller shift)")
            keep = values > POSITIVE_RTOL * top
            kind, ref = "positive", "largest"
        else:
            top = float(np.abs(values).max())
            if not top > 0:
                raise ValueError("the PMI matrix has no nonzero eigenvalue: there is nothing "
                                 "to embed")
            keep = np.abs(values) > POSITIVE_RTOL * top
            kind, ref = "nonzero", "largest in magnitude"
        d = int(keep.sum())
        if d < dim:
            warnings.warn(
                f"the PMI matrix has only {d} {kind} eigenvalues among the {dim} largest "
                f"(the rest are <= {POSITIVE_RTOL:g} x the {ref}): the "
                f"embedding has {d} dimensions instead of dim={dim}", EmbeddingWarning,
                stacklevel=2)
        kept = np.abs(values[keep])
        scale = np.sqrt(kept) if power == 0.5 else kept ** power
        vectors = U[:, keep] * scale.astype(np.float32)
        unseen = counts.label_counts == 0
        vectors[unseen] = 0
        norms = np.linalg.norm(vectors, axis=1)
        empty = norms <= 1e-12 * max(float(norms.max()), np.finfo(np.float32).tiny)
        vectors[empty] = 0
        norms[empty] = 1
        vectors /= norms[:, None]
        bar.update(1)
    n_unseen = int(unseen.sum())
    if n_unseen:
        warnings.warn(f"{n_unseen} of the {L} labels never occur in the training labels; "
                      "they get zero vectors", EmbeddingWarning, stacklevel=2)
    n_lost = int((empty & ~unseen).sum())
    if n_lost:
        warnings.warn(f"{n_lost} labels occur but get zero vectors: their PMI rows are empty "
                      "(min_count or PPMI dropped every entry) or lie outside the kept "
                      f"{d}-dimensional eigenspace (a larger dim may reach them)",
                      EmbeddingWarning, stacklevel=2)
    params = {
        "dim": dim, "pmi": pmi, "shift": shift, "alpha": alpha, "min_count": min_count,
        "diagonal": diagonal, "n_iter": n_iter, "oversample": oversample, "seed": seed,
        "power": power, "which": which, "n_labels": L, "d": d, "positive_rtol": POSITIVE_RTOL,
        "labelemb_version": __version__,
    }
    return LabelEmbedding(vectors, counts.label_names, counts.label_counts, counts.n_samples,
                          values[keep], params)


class LabelEmbedding:
    """Unit label vectors, and what they were computed from.

    Attributes
    ----------
    vectors : ndarray of float32, shape (L, d)
        Row ``i`` is the unit vector of label ``i`` (zero for labels never seen). Rows
        given with a norm further than 1e-3 from 1 are renormalised, with an
        :class:`EmbeddingWarning`.
    label_names : list of str or None
        Names of the labels (row order), or None when labels are integer ids.
    label_counts : ndarray of int64, shape (L,)
        Training occurrences of each label.
    n_samples : int
        Training samples counted.
    eigenvalues : ndarray of float64, shape (d,)
        The eigenvalues of the PMI matrix kept, decreasing.
    params : dict
        The arguments of :func:`fit_embeddings` and the library version: everything needed
        to fit it again (with the same labels).
    """

    def __init__(self, vectors, label_names: Optional[Sequence[str]] = None,
                 label_counts=None, n_samples: int = 0, eigenvalues=None,
                 params: Optional[dict] = None):
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[0] < 1 or vectors.shape[1] < 1:
            raise ValueError(f"vectors must be a non-empty 2-D array (labels x dimensions), "
                             f"got shape {vectors.shape}")
        if vectors.dtype.kind != "f":
            raise TypeError(f"vectors must be floating point, got {vectors.dtype}")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not np.all(np.isfinite(self.vectors)):
            raise ValueError("vectors contains NaN or Inf")
        self._renormalise()
        L, d = self.vectors.shape
        if label_names is not None:
            label_names = [str(x) for x in label_names]
            if len(label_names) != L:
                raise ValueError(f"label_names has {len(label_names)} names for {L} vectors")
            if len(set(label_names)) != L:
                raise ValueError("label_names contains repeated names")
            if "\0" in "".join(label_names):
                raise ValueError("label_names has a name with a NUL character ('\\0'), which "
                                 "a saved file cannot keep apart from the name without it")
        self.label_names: Optional[List[str]] = label_names
        self.label_counts = (np.zeros(L, dtype=np.int64) if label_counts is None
                             else np.asarray(label_counts, dtype=np.int64))
        if self.label_counts.shape != (L,):
            raise ValueError(f"label_counts must have shape ({L},), got {self.label_counts.shape}")
        self.n_samples = int(n_samples)
        self.eigenvalues = (np.zeros(0) if eigenvalues is None
                            else np.asarray(eigenvalues, dtype=np.float64))
        if eigenvalues is not None and self.eigenvalues.shape != (d,):
            raise ValueError(f"eigenvalues must have shape ({d},), got {self.eigenvalues.shape}")
        self.params = dict(params or {})
        self._name_index: Optional[dict] = None

    def _renormalise(self) -> None:
        """Scale rows that are not unit length (zero rows stay zero), with a warning:
        decode and neighbors read dot products as cosines, and a sum of huge rows in
        encode would overflow to NaN."""
        norms = np.linalg.norm(self.vectors.astype(np.float64), axis=1)
        off = (norms > 0) & (np.abs(norms - 1.0) > UNIT_RTOL)
        if not off.any():
            return
        warnings.warn(
            f"{int(off.sum())} of the {len(norms)} label vectors are not unit length (norms "
            f"{norms[off].min():.3g} to {norms[off].max():.3g}); they are renormalised to unit "
            "length", EmbeddingWarning, stacklevel=3)
        vectors = self.vectors.copy()
        vectors[off] = (vectors[off] / norms[off, None]).astype(np.float32)
        self.vectors = vectors

    # ------------------------------------------------------------------ basics
    @property
    def n_labels(self) -> int:
        return self.vectors.shape[0]

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def __repr__(self) -> str:
        names = "names" if self.label_names is not None else "ids"
        return (f"LabelEmbedding(L={self.n_labels}, d={self.dim}, n_samples={self.n_samples}, "
                f"labels={names})")

    def _index(self) -> dict:
        if self._name_index is None:
            self._name_index = {name: i for i, name in enumerate(self.label_names or [])}
        return self._name_index

    def label_id(self, label) -> int:
        """The row of ``label``: a name (when the embedding has names) or an integer id."""
        if isinstance(label, (str, np.str_)):
            if self.label_names is None:
                raise ValueError(f"label {label!r} is a name, but this embedding has label ids "
                                 f"only (0 .. {self.n_labels - 1})")
            i = self._index().get(str(label))
            if i is None:
                raise ValueError(f"unknown label {label!r}")
            return i
        if isinstance(label, (bool, np.bool_)) or not isinstance(label, numbers.Integral):
            raise TypeError(f"label must be a name or an integer id, got {type(label).__name__}")
        if not 0 <= int(label) < self.n_labels:
            raise ValueError(f"label id {label} is out of range [0, {self.n_labels})")
        return int(label)

    def _label(self, i: int):
        return self.label_names[i] if self.label_names is not None else int(i)

    # ------------------------------------------------------------------ encode
    def _label_matrix(self, label_sets) -> sp.csr_matrix:
        """label_sets as a binary n x L CSR matrix, validated."""
        L = self.n_labels
        if _is_pandas(label_sets):
            label_sets = _from_pandas(label_sets, "label_sets")
        if sp.issparse(label_sets) or (isinstance(label_sets, np.ndarray)
                                       and label_sets.ndim == 2 and label_sets.dtype != object):
            if label_sets.ndim != 2 or label_sets.shape[1] != L:
                raise ValueError(f"label_sets has shape {label_sets.shape}; a label matrix needs "
                                 f"{L} columns (one per label)")
            batch = to_batch(label_sets, n_labels=L, name="label_sets")
        elif isinstance(label_sets, (list, tuple, np.ndarray)):
            sets = list(label_sets)
            first = next((x for s in sets if isinstance(s, _SET_TYPES) for x in s), None)
            if isinstance(first, (str, np.str_)):
                sets = self._names_to_ids(sets)
            batch = to_batch(sets, name="label_sets")
            if batch.n_labels > L:
                raise ValueError(f"label_sets has label id {batch.n_labels - 1}, out of range "
                                 f"[0, {L})")
        else:
            raise TypeError(f"label_sets must be a sparse matrix or a list of label sets (ids or "
                            f"names), got {type(label_sets).__name__}")
        m = sp.csr_matrix((np.ones(len(batch.indices), dtype=np.float32), batch.indices,
                           batch.indptr), shape=(batch.n_samples, L))
        m.sum_duplicates()
        m.data[:] = 1  # a label repeated within a set counts once
        return m

    def _names_to_ids(self, sets: list) -> list:
        if self.label_names is None:
            raise ValueError("label_sets holds label names, but this embedding has label ids "
                             "only")
        index = self._index()
        unknown = set()
        out = []
        for i, s in enumerate(sets):
            if not isinstance(s, _SET_TYPES):
                raise TypeError(f"label_sets[{i}] is a {type(s).__name__}; each label set must "
                                "be a list of names (a single label still goes in a list)")
            ids = []
            for x in s:
                if not isinstance(x, (str, np.str_)):
                    raise TypeError(f"label_sets[{i}] mixes label names and ids; use one or "
                                    "the other")
                j = index.get(str(x))
                if j is None:
                    unknown.add(str(x))
                ids.append(j)
            out.append(ids)
        if unknown:
            raise ValueError(f"label_sets has {len(unknown)} unknown label names, e.g. "
                             f"{sorted(unknown)[:5]}")
        return out

    def encode(self, label_sets) -> np.ndarray:
        """Regression targets: the normalised sum of each set's label vectors.

        Parameters
        ----------
        label_sets : sparse matrix (n x L), or list of label sets
            Each set a list of integer ids or of label names (mapped through
            ``label_names``). A label repeated within a set counts once.

        Returns
        -------
        ndarray of float32, shape (n, d)
            Unit rows; an empty set (or one with only labels that have no vector) gives a
            zero row, and an :class:`EmbeddingWarning` gives their number.

        Examples
        --------
        >>> import numpy as np, labelemb
        >>> emb = labelemb.LabelEmbedding(np.eye(3, dtype=np.float32), ["a", "b", "c"])
        >>> emb.encode([["a", "b"], ["c"]]).astype(float).round(3).tolist()
        [[0.707, 0.707, 0.0], [0.0, 0.0, 1.0]]
        """
        if isinstance(label_sets, (list, tuple)) and len(label_sets) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        S = self._label_matrix(label_sets)
        out = np.asarray(S @ self.vectors, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1)
        zero = norms == 0
        norms[zero] = 1
        out /= norms[:, None]
        n_empty = int((np.diff(S.indptr) == 0).sum())
        n_zero = int(zero.sum())
        if n_zero:
            msg = f"{n_zero} of {S.shape[0]} label sets encode to zero rows"
            if n_empty:
                msg += f" ({n_empty} empty"
                msg += (f", {n_zero - n_empty} with only labels that have no vector)"
                        if n_zero > n_empty else ")")
            warnings.warn(msg, EmbeddingWarning, stacklevel=2)
        return out

    # ------------------------------------------------------------------ decode, neighbors
    def decode(self, predictions, k: int = 10, *, return_names: bool = False):
        """The ``k`` labels whose vectors score highest against each prediction.

        Calls :func:`labelemb.topk` (exact, ties to the lower id).

        Parameters
        ----------
        predictions : array, shape (n, d)
        k : int, default 10
        return_names : bool, default False
            Return label names (object array) instead of ids.

        Returns
        -------
        labels : ndarray (n, k) of ids, or of names with ``return_names``
        scores : ndarray of float32, shape (n, k)
        """
        try:
            from .topk import topk
        except ImportError as e:  # pragma: no cover - until labelemb.topk ships
            raise ImportError("LabelEmbedding.decode needs labelemb.topk, which this build "
                              "lacks") from e
        if return_names and self.label_names is None:
            raise ValueError("return_names=True, but this embedding has label ids only")
        indices, scores = topk(predictions, self.vectors, k)
        if return_names:
            return np.asarray(self.label_names, dtype=object)[indices], scores
        return indices, scores

    def neighbors(self, label, k: int = 10) -> List[Tuple[Union[str, int], float]]:
        """The ``k`` labels nearest to ``label`` (by cosine), nearest first.

        Parameters
        ----------
        label : str or int
            A label name, or an integer id.
        k : int, default 10
            At most the number of other labels with a vector.

        Returns
        -------
        list of (label, cosine)
            Names when the embedding has names, else ids. Labels without a vector are
            left out, and so is ``label`` itself.

        Examples
        --------
        >>> import numpy as np, labelemb
        >>> v = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
        >>> [(name, round(cos, 3)) for name, cos in
        ...  labelemb.LabelEmbedding(v, ["a", "b", "c"]).neighbors("a", k=2)]
        [('b', 0.8), ('c', 0.0)]
        """
        i = self.label_id(label)
        k = check_int(k, "k", lo=1)
        v = self.vectors[i]
        if not np.any(v):
            raise ValueError(f"label {label!r} has no vector (it never occurs in the training "
                             "labels)")
        scores = self.vectors @ v
        candidates = np.flatnonzero(np.any(self.vectors != 0, axis=1))
        candidates = candidates[candidates != i]
        if k > len(candidates):
            raise ValueError(f"k={k} is more than the {len(candidates)} other labels with a "
                             "vector")
        s = scores[candidates]
        part = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
        order = part[np.lexsort((candidates[part], -s[part]))]
        return [(self._label(int(candidates[j])), float(s[j])) for j in order]

    # ------------------------------------------------------------------ files
    def save(self, path: PathLike) -> None:
        """Write the embedding to one ``.npz`` file (format in the module docstring).

        The file is written to a temporary file in the same directory and renamed over
        ``path``, so a reader never sees a partial file.
        """
        names = self.label_names
        arrays = {
            "format": np.array(FORMAT),
            "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
            "vectors": self.vectors,
            "label_counts": self.label_counts,
            "n_samples": np.array(self.n_samples, dtype=np.int64),
            "eigenvalues": self.eigenvalues,
            "label_names": np.array(names if names is not None else [], dtype=str),
            "has_label_names": np.array(names is not None),
            "params": np.array(json.dumps(self.params, sort_keys=True)),
        }
        with atomic_write(path) as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: PathLike) -> LabelEmbedding:
        """Read an embedding written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            No such file.
        ValueError
            The file is truncated or corrupt, is not a LabelEmbedding, or was written by
            a newer labelemb (``format_version`` above this one's). Nothing in the file is
            executed (no pickle).
        """
        path = os.fspath(path)
        a = _read_arrays(path)
        try:
            params = json.loads(str(a["params"][()]))
            if not isinstance(params, dict):
                raise ValueError("params is not a JSON object")
            names = a["label_names"].tolist() if bool(a["has_label_names"][()]) else None
            for key, kind in (("vectors", "f"), ("label_counts", "i"), ("eigenvalues", "f")):
                if a[key].dtype.kind != kind:
                    raise ValueError(f"{key} has dtype {a[key].dtype}")
            # An embedding made without eigenvalues saves an empty array for them.
            eigenvalues = a["eigenvalues"] if a["eigenvalues"].size else None
            return cls(a["vectors"], names, a["label_counts"], int(a["n_samples"][()]),
                       eigenvalues, params)
        except (ValueError, TypeError, IndexError, KeyError, OverflowError) as e:
            raise ValueError(f"{path}: invalid LabelEmbedding file: {e}") from e


_SET_TYPES = (list, tuple, np.ndarray, set, frozenset)
_KEYS = ("format", "format_version", "vectors", "label_counts", "n_samples", "eigenvalues",
         "label_names", "has_label_names", "params")


def _read_arrays(path: str) -> dict:
    """The arrays of a LabelEmbedding file, each member's header checked before it is
    allocated (:func:`labelemb._npz.read_npz`), and the format checked."""
    what = "a LabelEmbedding"
    head = read_npz(path, what, keys=[k for k in ("format", "format_version")
                                      if k in _members(path, what)])
    if "format_version" not in head or "format" not in head:
        raise ValueError(f"{path}: not a LabelEmbedding file (no format/format_version)")
    try:
        fmt = str(head["format"][()])
        version = int(head["format_version"][()])
    except (TypeError, ValueError, IndexError) as e:
        raise ValueError(f"{path}: not a LabelEmbedding file ({e})") from None
    if fmt != FORMAT:
        raise ValueError(f"{path}: not a LabelEmbedding file (format {fmt!r})")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: written by a newer labelemb (format_version {version}); this "
                         f"version reads up to {FORMAT_VERSION}: upgrade labelemb")
    missing = sorted(set(_KEYS) - set(_members(path, what)))
    if missing:
        raise ValueError(f"{path}: not a complete LabelEmbedding file (missing {missing})")
    return read_npz(path, what, keys=_KEYS)
