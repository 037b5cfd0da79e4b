"""Counting on a 2-worker Dask LocalCluster vs in process (issue: scale past one machine).

The labels sit in CSR ``.npz`` shards on disk, as users keep them. In process, one
``labelemb.cooccurrence`` streams the shards on 2 threads; on the cluster, each of the 2
single-threaded process workers reads and counts its shards and the partial counts are
summed in a tree. Reports the overhead (cluster time / in-process time; aim <= 1.3) and
the bytes of partial counts shipped between processes.
"""

from __future__ import annotations

import os

import pytest
import scipy.sparse as sp
from _util import compare

import labelemb
from labelemb.streaming import read_labels

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def shards(topic_4m, tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    Y = topic_4m
    n_shards = 8
    step = -(-Y.shape[0] // n_shards)
    paths = []
    for i in range(n_shards):
        p = os.path.join(d, f"labels-{i:02d}.npz")
        sp.save_npz(p, Y[i * step:(i + 1) * step], compressed=False)
        paths.append(p)
    return Y.shape[1], paths


def test_dask_vs_in_process(benchmark, shards):
    from distributed import Client, LocalCluster

    import labelemb.dask as ld

    L, paths = shards
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    client = Client(cluster)
    try:
        def in_process():
            return labelemb.cooccurrence(read_labels(paths, chunk_size=10**9), n_labels=L,
                                         num_threads=2)

        def on_cluster():
            return ld.cooccurrence(paths, client=client, n_labels=L)

        a, b = in_process(), on_cluster()
        assert a == b
        # What crosses process boundaries: one partial count per task (a run of files per
        # worker thread), gathered and summed in this process.
        groups = ld._split_by_size(paths, min(len(paths), sum(client.nthreads().values())))
        partials = [labelemb.cooccurrence(read_labels(g, chunk_size=10**9), n_labels=L)
                    for g in groups]
        shipped = sum(ld.shipped_bytes(p) for p in partials)
        med = compare(f"dask cooccurrence n={a.n_samples} L={L}",
                      {"in process (2 threads)": in_process,
                       "LocalCluster (2 workers x 1 thread)": on_cluster},
                      repeats=3, extra={"shards": len(paths), "tasks": len(groups),
                                        "bytes of partial counts shipped": shipped})
        ratio = med["LocalCluster (2 workers x 1 thread)"] / med["in process (2 threads)"]
        print(f"  cluster overhead: {ratio:.2f}x the in-process time (aim <= 1.3)")
        benchmark.pedantic(on_cluster, rounds=1)
    finally:
        client.close()
        cluster.close()
