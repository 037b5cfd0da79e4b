import gzip
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import labelemb

dask = pytest.importorskip("dask")
pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def data():
    Y = labelemb.make_topic_labels(4000, 250, seed=11).labels
    sets = [Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tolist() for i in range(Y.shape[0])]
    return Y, sets


def test_bag_of_ids_matches_exactly(client, data):
    import dask.bag as db

    import labelemb.dask as ld

    Y, sets = data
    got = ld.cooccurrence(db.from_sequence(sets, npartitions=9), client=client,
                          n_labels=Y.shape[1])
    assert got == labelemb.cooccurrence(Y)


def test_bag_of_names_matches_exactly(client, data):
    import dask.bag as db

    import labelemb.dask as ld

    _, sets = data
    names = [[f"tag{x}" for x in s] for s in sets]
    got = ld.cooccurrence(db.from_sequence(names, npartitions=6), client=client)
    assert got == labelemb.cooccurrence(names)


def test_dataframe(client, data):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe", exc_type=ImportError)  # needs a usable pyarrow

    import labelemb.dask as ld

    Y, sets = data
    with dask.config.set({"dataframe.convert-string": False}):  # keep the lists as objects
        ddf = dd.from_pandas(pd.DataFrame({"labels": sets}), npartitions=4)
    assert ld.cooccurrence(ddf, client=client, n_labels=Y.shape[1]) == labelemb.cooccurrence(Y)


def test_npz_files(client, data, tmp_path):
    import labelemb.dask as ld

    Y, _ = data
    paths = []
    for i, a in enumerate(range(0, Y.shape[0], 1500)):
        p = str(tmp_path / f"shard{i}.npz")
        sp.save_npz(p, Y[a:a + 1500])
        paths.append(p)
    assert ld.cooccurrence(paths, client=client) == labelemb.cooccurrence(Y)


def test_partial_counts_pickle_compactly(data):
    import labelemb.dask as ld

    Y, _ = data
    c = labelemb.cooccurrence(Y)
    arrays = sum(a.nbytes for a in (c.pairs.data, c.pairs.indices, c.pairs.indptr,
                                    c.label_counts))
    assert ld.shipped_bytes(c) < arrays * 1.05 + 1000
    assert pickle.loads(pickle.dumps(c)) == c


def test_bad_collection():
    import labelemb.dask as ld

    with pytest.raises(TypeError, match="file paths"):
        ld.cooccurrence([[0, 1], [1]])
    with pytest.raises(ValueError, match="split_every"):
        ld.cooccurrence(["x.txt"], split_every=1)
    assert np.iinfo(np.int32).max > 0


def test_fit_embeddings_on_a_cluster_matches_in_process(client, data):
    import dask.bag as db

    Y, sets = data
    got = labelemb.fit_embeddings(db.from_sequence(sets, npartitions=5), dim=8, client=client,
                                  n_labels=Y.shape[1], seed=3)
    want = labelemb.fit_embeddings(Y, dim=8, seed=3)
    np.testing.assert_array_equal(got.vectors, want.vectors)
    np.testing.assert_array_equal(got.eigenvalues, want.eigenvalues)


def test_fit_embeddings_client_with_counts_is_an_error(client, data):
    Y, _ = data
    with pytest.raises(ValueError, match="drop client="):
        labelemb.fit_embeddings(labelemb.cooccurrence(Y), dim=8, client=client)


def test_files_are_split_into_contiguous_runs_of_similar_size(tmp_path):
    from labelemb.dask import _split_by_size

    paths = []
    for i, size in enumerate([10, 10, 10, 10, 40, 5, 5]):
        p = tmp_path / f"f{i}"
        p.write_bytes(b"x" * size)
        paths.append(str(p))
    for n in range(1, len(paths) + 1):
        groups = _split_by_size(paths, n)
        assert len(groups) == n
        assert [p for g in groups for p in g] == paths
        assert all(groups)
    assert [len(g) for g in _split_by_size(paths, 2)] == [4, 3]


# ------------------------------------------------------------------------ label text files


def _write_shards(tmp_path, rows, sep, n_files=5, suffix=".txt"):
    paths, step = [], -(-len(rows) // n_files)
    for k in range(n_files):
        p = str(tmp_path / f"part{k}{suffix}")
        with (gzip.open(p, "wt") if suffix.endswith(".gz") else open(p, "w")) as f:
            for r in rows[k * step:(k + 1) * step]:
                f.write(sep.join(r) + "\n")
        paths.append(p)
    return paths


@pytest.mark.parametrize("sep, kind, suffix", [(" ", "ids", ".txt"), ("\t", "names", ".txt.gz"),
                                               (",", "names", ".txt"), (";", "ids", ".txt.gz")])
def test_files_read_on_workers_as_in_process(client, data, tmp_path, sep, kind, suffix):
    import labelemb.dask as ld

    Y, sets = data
    rows = [[str(j) if kind == "ids" else f"tag {j}" if sep != " " else f"t{j}" for j in s]
            for s in sets]
    paths = _write_shards(tmp_path, rows, sep, suffix=suffix)
    L = Y.shape[1] if kind == "ids" else None
    want = labelemb.cooccurrence(labelemb.read_labels(paths), n_labels=L)
    assert want == labelemb.cooccurrence(Y if kind == "ids" else rows, n_labels=L)
    # Detected (no option), given (read_kwargs), and a reader built by the user.
    assert ld.cooccurrence(paths, client=client, n_labels=L) == want
    assert ld.cooccurrence(paths, client=client, n_labels=L,
                           read_kwargs={"delimiter": sep, "chunk_size": 97}) == want
    reader = labelemb.read_labels(paths, delimiter=sep, labels=kind)
    assert ld.cooccurrence(reader, client=client, n_labels=L) == want


def test_workers_use_the_separator_of_the_first_file(client, tmp_path):
    import labelemb.dask as ld

    # The first file shows commas; later ones hold one (spaced) name per line, which a
    # worker deciding on its own would split on whitespace.
    paths = [str(tmp_path / f"f{k}.txt") for k in range(4)]
    with open(paths[0], "w") as f:
        f.write("new york,paris\nclip art,new york\n")
    for k, p in enumerate(paths[1:], 1):
        with open(p, "w") as f:
            f.write("".join(f"san {name}\n" for name in ("jose", "diego", "marino")[:k]))
    reader = labelemb.read_labels(paths)
    assert reader.delimiter == ","
    want = labelemb.cooccurrence(reader)
    assert "san jose" in want.label_names
    assert ld.cooccurrence(paths, client=client) == want
    assert ld.cooccurrence(reader, client=client) == want
    # With a delimiter given, the same again (and different counts).
    spaced = labelemb.cooccurrence(labelemb.read_labels(paths, delimiter=" "))
    assert "san" in spaced.label_names
    assert ld.cooccurrence(paths, client=client, read_kwargs={"delimiter": " "}) == spaced


def test_fit_embeddings_reads_files_with_the_users_options(client, data, tmp_path, capsys):
    Y, sets = data
    rows = [[f"n{j}" for j in s] for s in sets]
    paths = _write_shards(tmp_path, rows, "|", n_files=3)
    want = labelemb.fit_embeddings(labelemb.read_labels(paths, delimiter="|"), dim=8, seed=3)
    got = labelemb.fit_embeddings(paths, dim=8, seed=3, client=client,
                                  read_kwargs={"delimiter": "|", "progress": True})
    assert "label names separated by '|' (given) in 3 file(s)" in capsys.readouterr().err
    assert got.label_names == want.label_names
    np.testing.assert_array_equal(got.vectors, want.vectors)
    got = labelemb.fit_embeddings(labelemb.read_labels(paths, delimiter="|"), dim=8, seed=3,
                                  client=client)
    np.testing.assert_array_equal(got.vectors, want.vectors)
    # Without the option "|" is no candidate: each line is one name, most seen once, and
    # the caller hears it from the combined counts.
    with pytest.warns(labelemb.LabelFileWarning, match="occur only once"):
        import labelemb.dask as ld

        ld.cooccurrence(paths, client=client)
    with pytest.raises(TypeError, match="read_kwargs applies to file paths"):
        import dask.bag as db

        ld.cooccurrence(db.from_sequence(sets), client=client, read_kwargs={"delimiter": ","})
