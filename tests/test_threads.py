"""Kernels called concurrently from several Python threads give the same results.

The GIL is released inside every kernel, so these calls really overlap; each must keep
its own state. Integer results must be identical, float results within 1e-5 relative.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import labelemb


def _concurrently(fn, n_calls=6):
    with ThreadPoolExecutor(max_workers=3) as ex:
        return list(ex.map(lambda _: fn(), range(n_calls)))


def test_cooccurrence_and_pmi_concurrent():
    Y = labelemb.make_topic_labels(20_000, 800, seed=21).labels
    ref = labelemb.cooccurrence(Y, num_threads=1)
    for got in _concurrently(lambda: labelemb.cooccurrence(Y, num_threads=2)):
        assert got == ref
    P = labelemb.pmi_matrix(ref, num_threads=1)
    for got in _concurrently(lambda: labelemb.pmi_matrix(ref, num_threads=2)):
        assert (got != P).nnz == 0


def test_topk_concurrent():
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((3000, 32)).astype(np.float32)
    V = rng.standard_normal((2000, 32)).astype(np.float32)
    ref_i, ref_s = labelemb.topk(Q, V, 10, num_threads=1)
    for i, s in _concurrently(lambda: labelemb.topk(Q, V, 10, num_threads=2)):
        np.testing.assert_array_equal(i, ref_i)
        np.testing.assert_allclose(s, ref_s, rtol=1e-5, atol=1e-6)


def test_randomized_eigh_concurrent():
    Y = labelemb.make_topic_labels(5000, 300, seed=22).labels
    P = labelemb.pmi_matrix(Y)
    ref_vals, ref_vecs = labelemb.randomized_eigh(P, 16, seed=3, num_threads=1)
    for vals, vecs in _concurrently(lambda: labelemb.randomized_eigh(P, 16, seed=3,
                                                                   num_threads=2)):
        np.testing.assert_allclose(vals, ref_vals, rtol=1e-4, atol=1e-5)
        # eigenvectors agree up to sign
        dots = np.abs(np.sum(vecs * ref_vecs, axis=0))
        np.testing.assert_allclose(dots, 1.0, atol=1e-3)
