"""Openclipart 32x32: a small real multi-label image data set shipped with labelemb.

Public-domain clip art from the Debian package ``openclipart-svg``, rasterised to
32x32 RGB; labels are the artists' keywords plus the folder names of the package. See
``labelemb/datasets/data/README.md`` for provenance and ``scripts/build_openclipart.py``
for how the file is built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Dict, List, Optional

import numpy as np
import scipy.sparse as sp

__all__ = ["MultiLabelDataset", "load_openclipart"]

DATA_FILE = "openclipart32.npz"
_META_KEYS = (
    "source_package",
    "source_version",
    "source_sha256",
    "upstream",
    "license",
    "build_date",
    "script_version",
    "build_command",
)
_cache: Dict[str, object] = {}


@dataclass
class MultiLabelDataset:
    """A multi-label image data set with a grouped train/test split.

    Attributes
    ----------
    images : ndarray
        ``(n, 32, 32, 3)`` uint8 RGB on white, or ``(n, 3, 32, 32)`` float32 in [0, 1]
        (channels first) when loaded with ``as_float=True``.
    labels : scipy.sparse.csr_matrix, shape (n, L), float32
        Ones where image ``i`` has label ``j``; every row has at least one label.
        float32 (not int8) so that products such as ``labels.T @ labels`` cannot
        overflow and the rows can be fed to a model as they are.
    label_names : list of str, length L
        Sorted label names (keywords and folder names, lower case).
    groups : ndarray of int32, shape (n,)
        Icon-set group of each image, an index into ``group_names``.
    group_names : list of str
        Group names (folder paths below ``svg/``, at most three components).
    train_index, test_index : ndarray of int64
        Row indices of the two parts of the split; no group is on both sides.
        With ``split="train"`` (``"test"``) every row is in ``train_index``
        (``test_index``) and the other index is empty.
    paths : list of str
        Source SVG path of each image, relative to ``usr/share/openclipart/svg/``.
    meta : dict
        Provenance (``source_package``, ``source_version``, ``license``,
        ``build_date``, ``script_version``, ...), ``build_stats`` and ``split``.
    """

    images: np.ndarray
    labels: sp.csr_matrix
    label_names: List[str]
    groups: np.ndarray
    group_names: List[str]
    train_index: np.ndarray
    test_index: np.ndarray
    paths: List[str] = field(default_factory=list)
    meta: Dict[str, object] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_labels(self) -> int:
        return int(self.labels.shape[1])


def _raw() -> Dict[str, object]:
    """Arrays of the packaged npz, read once per process and kept read-only."""
    if not _cache:
        ref = resources.files(__package__) / "data" / DATA_FILE
        with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        for arr in arrays.values():
            arr.flags.writeable = False
        _cache.update(arrays)
    return _cache


def load_openclipart(*, split: Optional[str] = None, as_float: bool = False) -> MultiLabelDataset:
    """Load the embedded Openclipart 32x32 multi-label image data set.

    Parameters
    ----------
    split : {None, "train", "test"}, default None
        None returns all images with ``train_index``/``test_index``; ``"train"`` or
        ``"test"`` returns only that part (rows renumbered from 0).
    as_float : bool, default False
        Return images as float32 in [0, 1], channels first ``(n, 3, 32, 32)``,
        instead of uint8 ``(n, 32, 32, 3)``.

    Returns
    -------
    MultiLabelDataset
        ``images``, ``labels`` (csr_matrix ``(n, L)`` float32), ``label_names``,
        ``groups`` (int32 ``(n,)``), ``group_names``, ``train_index`` and
        ``test_index`` (int64), ``paths`` and ``meta``. The full set has ~8,000
        images, ~400 labels (each on at least 5 images), ~4.5 labels per image and a
        test part of ~20% of the images made of whole icon-set groups.

    Examples
    --------
    >>> ds = load_openclipart(split="train", as_float=True)
    >>> ds.images.shape, ds.labels.shape
    ((6390, 3, 32, 32), (6390, 411))
    """
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
    raw = _raw()
    images = raw["images"]
    n = images.shape[0]
    label_names = [str(s) for s in raw["label_names"]]
    labels = sp.csr_matrix(
        (
            np.ones(raw["label_indices"].shape[0], dtype=np.float32),
            raw["label_indices"].astype(np.int32),
            raw["label_indptr"].astype(np.int64),
        ),
        shape=(n, len(label_names)),
    )
    groups = raw["group"].astype(np.int32)
    is_test = raw["is_test"].astype(bool)
    paths = [str(s) for s in raw["paths"]] if "paths" in raw else []

    meta: Dict[str, object] = {k: str(raw[k]) for k in _META_KEYS if k in raw}
    if "build_stats" in raw:
        meta["build_stats"] = json.loads(str(raw["build_stats"]))
    meta["split"] = split or "all"

    if split is None:
        rows = np.arange(n)
        images = images.copy()
    else:
        rows = np.flatnonzero(is_test if split == "test" else ~is_test)
        images = images[rows]
        labels = labels[rows]
        groups = groups[rows]
        is_test = is_test[rows]
        paths = [paths[i] for i in rows] if paths else []
    if as_float:
        images = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)
        images *= np.float32(1.0 / 255.0)
    return MultiLabelDataset(
        images=images,
        labels=labels,
        label_names=label_names,
        groups=groups,
        group_names=[str(s) for s in raw["group_names"]],
        train_index=np.flatnonzero(~is_test).astype(np.int64),
        test_index=np.flatnonzero(is_test).astype(np.int64),
        paths=paths,
        meta=meta,
    )
