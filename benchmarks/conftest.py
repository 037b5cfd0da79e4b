"""Shared fixtures for the benchmarks.

Sizes: ``LABELEMB_BENCH=full`` runs the sizes the issues name (n = 1,000,000 x L = 20,000
and n = 4,000,000 x L = 50,000); the default ``small`` runs tiny sizes so that CI can
check that every benchmark still runs (``pytest benchmarks/ --benchmark-disable``).
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _util import bench_size, synthetic_labels  # noqa: E402


@pytest.fixture(scope="session")
def size() -> str:
    return bench_size()


@pytest.fixture(scope="session")
def topic_1m():
    """The n = 1,000,000 x L = 20,000 synthetic set (tiny in small mode)."""
    return synthetic_labels(1_000_000, 20_000)


@pytest.fixture(scope="session")
def topic_4m():
    """The n = 4,000,000 x L = 50,000 synthetic set (tiny in small mode)."""
    return synthetic_labels(4_000_000, 50_000)
