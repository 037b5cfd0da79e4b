"""Fixtures shared by the test modules."""

import pytest


@pytest.fixture(scope="module")
def torch_one_thread():
    """torch on one thread for the module: tiny models train several times faster without
    OpenMP threads spinning on a shared machine."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
