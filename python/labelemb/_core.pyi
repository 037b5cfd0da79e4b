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
