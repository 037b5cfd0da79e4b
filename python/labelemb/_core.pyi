"""Type stubs for the native module (internal; use the labelemb package API)."""

from typing import Any, Optional, Tuple

import numpy as np
from numpy.typing import NDArray

def _set_blas(pointers: dict[str, int]) -> None: ...
def config() -> dict[str, Any]: ...
def cooccurrence(
    indptr: NDArray[np.int64], indices: NDArray[Any], n_labels: int, num_threads: int = 0
) -> Tuple[NDArray[np.int64], NDArray[np.int64], NDArray[Any], NDArray[np.int64]]: ...
def pmi(
    indptr: NDArray[np.int64],
    indices: NDArray[Any],
    counts: NDArray[np.int64],
    h: NDArray[np.float64],
    diag: Optional[NDArray[np.float64]],
    log_n: float,
    shift: float,
    min_count: int,
    positive: bool,
    num_threads: int = 0,
) -> Tuple[NDArray[np.int64], NDArray[Any], NDArray[np.float32]]: ...

# eigh.hpp, spmm.hpp
def eigh_csr(
    indptr: NDArray[np.int64],
    indices: NDArray[Any],
    data: NDArray[np.float32],
    k: int,
    oversample: int,
    n_iter: int,
    largest_algebraic: bool,
    seed: int,
    out_values: NDArray[np.float64],
    out_vectors: NDArray[np.float32],
    num_threads: int = 0,
) -> dict[str, Any]: ...
def eigh_dense(
    a: NDArray[Any],
    k: int,
    oversample: int,
    n_iter: int,
    largest_algebraic: bool,
    seed: int,
    out_values: NDArray[np.float64],
    out_vectors: NDArray[np.float32],
    num_threads: int = 0,
) -> dict[str, Any]: ...
def csr_asymmetry(
    indptr: NDArray[np.int64], indices: NDArray[Any], data: NDArray[np.float32],
    num_threads: int = 0,
) -> Tuple[float, float]: ...
def csr_spmm(
    indptr: NDArray[np.int64],
    indices: NDArray[Any],
    data: NDArray[np.float32],
    n_cols: int,
    xt: NDArray[np.float64],
    yt: NDArray[np.float64],
    num_threads: int = 0,
) -> None: ...
