"""The inputs of :class:`labelemb.Classifier`, checked and converted once: feature rows
(dense or scipy sparse), texts, image arrays, and label sets given one label per sample.

Every check names the argument and says what is accepted; numbers come back as float32.
"""

from __future__ import annotations

import sys
from typing import Optional

import numpy as np
import scipy.sparse as sp

from .text import TextFeatures

__all__ = ["check_width", "features", "label_sets", "texts"]


def label_sets(Y):
    """A 1-D array of ids or names (one label per sample) as one-label sets."""
    if isinstance(Y, np.ndarray) and Y.ndim == 1 and Y.dtype.kind in "iuU":
        return [[v] for v in Y.tolist()]
    return Y


def texts(X, name: str) -> list:
    if isinstance(X, str):
        raise TypeError(f"{name} must be a sequence of texts (one str per sample), got one str")
    if sp.issparse(X) or (isinstance(X, np.ndarray) and X.dtype.kind != "U" and
                          X.dtype != object):
        raise TypeError(f"{name} must be texts (text=True), got numeric features; use "
                        "text=False for feature matrices")
    return list(X)


def features(X, name: str, text: Optional[TextFeatures], images: bool = False):
    """``X`` as a float32 CSR matrix or a 2-D float32 array (texts through ``text``); with
    ``images``, dense arrays of more dimensions (samples first) too."""
    if text is not None:
        return text.transform(texts(X, name))
    if X is None:
        raise TypeError(f"{name} is None; pass the inputs (an (n, F) array or sparse matrix)")
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{name} has dtype {X.dtype}; pass numbers")
        X = X.astype(np.float32)
        if X.nnz and not np.isfinite(X.data).all():
            raise ValueError(f"{name} contains NaN or Inf; remove or fix those rows")
    else:
        torch = sys.modules.get("torch")  # a tensor can only come from an imported torch
        if torch is not None and isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        a = np.asarray(X)
        if a.dtype == object:  # numbers held as objects convert; texts do not
            try:
                a = a.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{name} holds objects that are not numbers; pass numeric "
                                "features, or texts with text=True") from None
        if a.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: {name} has dtype {a.dtype}")
        if a.dtype.kind in "US":
            raise TypeError(f"{name} holds {a.dtype} values; pass numeric features, or texts "
                            "with text=True")
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} has dtype {a.dtype}; pass numeric features")
        if a.ndim != 2 and not (images and a.ndim > 2):
            hint = " (X.reshape(1, -1) for one sample)" if a.ndim == 1 else ""
            raise ValueError(f"Reshape your data: {name} must be 2-D (samples x features), "
                             f"got shape {a.shape}{hint}")
        X = np.ascontiguousarray(a, dtype=np.float32)
        if X.size and not np.isfinite(X).all():
            raise ValueError(f"{name} contains NaN or Inf; remove or fix those rows")
    if X.shape[0] == 0 or X.shape[1] == 0:
        what = "sample" if X.shape[0] == 0 else "feature"
        raise ValueError(f"{name} has 0 {what}(s) (shape={X.shape}) while a minimum of 1 is "
                         "required.")
    return X


def check_width(X, shape: tuple, name: str) -> None:
    if tuple(X.shape[1:]) != tuple(shape):
        if len(shape) == 1 and X.ndim == 2:
            raise ValueError(f"{name} has {X.shape[1]} features, but Classifier is expecting "
                             f"{shape[0]} features as input (the training inputs' width); "
                             "transform it the same way as those")
        raise ValueError(f"{name} has samples of shape {tuple(X.shape[1:])}, but Classifier "
                         f"was trained on samples of shape {tuple(shape)}")
