"""labelemb: information-theoretic label embeddings for massively multi-label classification.

The data flow, one public function per arrow::

    label sets --cooccurrence--> counts --pmi_matrix--> PMI --randomized_eigh--> vectors
    (fit_embeddings does all three) --encode--> targets --train--> predictions
    --decode/topk--> labels --metrics--> scores

Importing labelemb never imports torch; the training loop lives in ``labelemb.torch``.
"""

from __future__ import annotations

from . import _blas, _core, metrics
from ._version import __version__
from .cooccurrence import Cooccurrence, MemoryBudgetError, cooccurrence
from .eigh import randomized_eigh
from .embedding import EmbeddingWarning, LabelEmbedding, fit_embeddings
from .pmi import pmi_matrix
from .streaming import LabelFileWarning, LabelReader, read_labels
from .synthetic import make_topic_labels
from .topk import TopkIndex, threshold, topk

_blas.register(_core)

__all__ = [
    "Classifier",
    "Cooccurrence",
    "EmbeddingWarning",
    "LabelEmbedding",
    "LabelFileWarning",
    "LabelReader",
    "MemoryBudgetError",
    "__version__",
    "cooccurrence",
    "fit_embeddings",
    "make_topic_labels",
    "pmi_matrix",
    "randomized_eigh",
    "read_labels",
    "show_config",
    "TopkIndex",
    "metrics",
    "threshold",
    "topk",
]


def __getattr__(name: str):
    # Classifier needs torch: imported on first use, so that `import labelemb` never does.
    if name == "Classifier":
        from .classifier import Classifier

        return Classifier
    raise AttributeError(f"module 'labelemb' has no attribute {name!r}")


def show_config(file=None) -> dict:
    """Print (and return) how labelemb was built and what it runs on: the compiler, OpenMP
    and its thread count, and the BLAS/LAPACK it calls."""
    import sys

    cfg = dict(_core.config())
    blas = _blas.info()
    cfg["version"] = __version__
    cfg["blas"] = blas.get("name", "not registered")
    cfg["blas_thread_control"] = bool(blas.get("thread_control"))
    out = file if file is not None else sys.stdout
    print(f"labelemb {cfg['version']}", file=out)
    print(f"  compiler:     {cfg['compiler']}", file=out)
    print(f"  OpenMP:       {'on' if cfg['openmp'] else 'off'} "
          f"(max threads {cfg['max_threads']})", file=out)
    print(f"  BLAS/LAPACK:  {cfg['blas']}", file=out)
    print(f"  BLAS threads: {'per-thread control' if cfg['blas_thread_control'] else 'global'}",
          file=out)
    return cfg
