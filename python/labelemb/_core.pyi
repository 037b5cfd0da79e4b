"""Type stubs for the native module (internal; use the labelemb package API)."""

from typing import Any, Optional, Tuple

import numpy as np
from numpy.typing import NDArray

def _set_blas(pointers: dict[str, int]) -> None: ...
def config() -> dict[str, Any]: ...
def thread_limit() -> int: ...
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
def topk(
    queries: NDArray[np.float32],
    vectors: NDArray[np.float32],
    k: int,
    exclude_indptr: Optional[NDArray[np.int64]],
    exclude_indices: Optional[NDArray[np.int64]],
    out_scores: NDArray[np.float32],
    out_indices: NDArray[Any],
    num_threads: int = 0,
    query_block: int = 0,
    label_block: int = 0,
) -> None: ...
def topk_clustered(
    queries: NDArray[np.float32],
    vectors: NDArray[np.float32],
    sorted: NDArray[np.float32],
    ids: NDArray[Any],
    delta: NDArray[np.float64],
    offsets: NDArray[np.int64],
    centres: NDArray[np.float32],
    k: int,
    exclude_indptr: Optional[NDArray[np.int64]],
    exclude_indices: Optional[NDArray[np.int64]],
    out_scores: NDArray[np.float32],
    out_indices: NDArray[Any],
    num_threads: int = 0,
    query_block: int = 0,
    label_block: int = 0,
) -> int: ...
def threshold(
    queries: NDArray[np.float32],
    vectors: NDArray[np.float32],
    min_score: float,
    num_threads: int = 0,
    query_block: int = 0,
    label_block: int = 0,
) -> Tuple[NDArray[np.int64], NDArray[Any], NDArray[np.float32]]: ...
def _exact_dot(a: NDArray[np.float32], b: NDArray[np.float32], version: int) -> float: ...
