"""``labelemb train`` and ``labelemb evaluate`` end to end on small files."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

import labelemb  # noqa: E402
from labelemb.cli import main  # noqa: E402
from labelemb.formats import write_label_list  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    data = labelemb.make_topic_labels(700, 30, n_features=16, feature_noise=0.5, seed=4)
    names = np.array([f"tag{i:02d}" for i in range(30)])
    X, Y = data.features, data.labels
    np.save(d / "X.npy", X[:600])
    np.savez(d / "X_test.npz", features=X[600:])
    sets = [list(names[Y.indices[a:b]]) for a, b in zip(Y.indptr[:-1], Y.indptr[1:])]
    with open(d / "tags.txt", "w") as f:
        f.write("\n".join(",".join(s) for s in sets[:600]) + "\n")
    with open(d / "tags_test.txt", "w") as f:
        f.write("\n".join(",".join(s) for s in sets[600:]) + "\n")
    sp.save_npz(d / "Y.npz", Y[:600])
    write_label_list(d / "ids_test.txt", Y[600:])
    return d


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("objective", ["embedding", "bce", "lowrank-softmax", None])
def test_train_then_evaluate_names(files, tmp_path, capsys, objective):
    model = tmp_path / "model.pt"
    chosen = ["--objective", objective] if objective else []  # None: the default
    code, out, err = _run(capsys, "train", files / "X.npy", files / "tags.txt", "-o", model,
                          *chosen, "--epochs", "3", "--dim", "8",
                          "--hidden", "32", "--lr", "0.01", "--batch-size", "64",
                          "--no-progress", "--log", tmp_path / "log.jsonl")
    assert code == 0, err
    assert "saved to" in out
    assert f"trained {objective or 'hybrid'} model" in out
    log = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3] and "p@5" in log[0]
    code, out, err = _run(capsys, "evaluate", model, files / "X_test.npz",
                          files / "tags_test.txt", "--json", "--predictions",
                          tmp_path / "pred.txt", "--top", "3")
    assert code == 0, err
    report = json.loads(out)
    assert 0.3 < report["precision@1"] <= 1 and "map@30" in report
    lines = (tmp_path / "pred.txt").read_text().splitlines()
    assert len(lines) == 100 and all(len(x.split(",")) == 3 for x in lines)
    assert all(t.startswith("tag") for t in lines[0].split(","))


def test_train_csr_ids_with_saved_embedding(files, tmp_path, capsys):
    emb = labelemb.fit_embeddings(sp.load_npz(files / "Y.npz"), dim=8)
    emb.save(tmp_path / "emb.npz")
    code, out, err = _run(capsys, "train", files / "X.npy", files / "Y.npz", "-o",
                          tmp_path / "m.pt", "--embedding", tmp_path / "emb.npz",
                          "--epochs", "1", "--hidden", "16", "--valid-fraction", "0",
                          "--no-progress", "-q", "--checkpoint-dir", tmp_path / "ck")
    assert code == 0, err
    assert out == ""
    assert (tmp_path / "ck" / "checkpoint-00001.pt").exists()
    code, out, err = _run(capsys, "evaluate", tmp_path / "m.pt", files / "X_test.npz",
                          files / "ids_test.txt", "-k", "1,5")
    assert code == 0, err
    assert "precision@5" in out and "map@30" in out


def test_cli_errors(files, tmp_path, capsys):
    code, _, err = _run(capsys, "train", files / "X_test.npz", files / "tags.txt", "-o",
                        tmp_path / "m.pt")
    assert code == 2 and "100 rows but" in err and "600 label sets" in err
    code, _, err = _run(capsys, "train", files / "X.npy", files / "tags.txt", "-o",
                        tmp_path / "m.pt", "--device", "cuda:7" if torch.cuda.is_available()
                        else "cuda", "--no-progress", "--epochs", "1")
    assert code == 2 and ("CUDA is not available" in err or "visible" in err)
    code, _, err = _run(capsys, "train", files / "nope.npy", files / "tags.txt", "-o",
                        tmp_path / "m.pt")
    assert code == 2 and "no such features file" in err
    code, _, err = _run(capsys, "train", files / "X.npy", files / "tags.txt", "-o",
                        tmp_path / "m.pt", "--hidden", "a,b")
    assert code == 2 and "--hidden" in err
    code, _, err = _run(capsys, "train", files / "X.npy", files / "tags.txt", "-o",
                        tmp_path / "m.pt", "--epochs", "0", "--objective", "bce")
    assert code == 2 and "epochs" in err
    # evaluating with labels the model has never seen
    _run(capsys, "train", files / "X.npy", files / "tags.txt", "-o", tmp_path / "m.pt",
         "--objective", "bce", "--epochs", "1", "--hidden", "8", "--no-progress", "-q")
    (tmp_path / "bad.txt").write_text("tag00,unicorn\n" * 100)
    code, _, err = _run(capsys, "evaluate", tmp_path / "m.pt", files / "X_test.npz",
                        tmp_path / "bad.txt")
    assert code == 2 and "does not know" in err and "unicorn" in err
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    code, _, err = _run(capsys, "evaluate", tmp_path / "junk.pt", files / "X_test.npz",
                        files / "tags_test.txt")
    assert code == 2 and "cannot read a labelemb model" in err


def test_help_does_not_import_torch():
    code = ("import sys, contextlib, io\n"
            "from labelemb.cli import main\n"
            "for cmd in ('train', 'evaluate'):\n"
            "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "        try:\n"
            "            main([cmd, '--help'])\n"
            "        except SystemExit:\n"
            "            pass\n"
            "    assert 'examples' in out.getvalue() or 'metrics' in out.getvalue()\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_train_keeps_neighbour_votes_and_evaluate_fuses_them(files, tmp_path, capsys):
    from labelemb.torch import NeighbourVotes, evaluate
    from labelemb.torch._cli import _read_state, _votes_of, load_model

    model = tmp_path / "m.pt"
    base = ["train", files / "X.npy", files / "tags.txt", "--objective", "lowrank-softmax",
            "--epochs", "2", "--dim", "8", "--hidden", "32", "--no-progress",
            "--valid-fraction", "0"]
    code, out, err = _run(capsys, *base, "-o", model, "--neighbours", "7")
    assert code == 0, err
    assert "kept the points of 600 training samples for neighbour votes (k = 7)" in out
    votes = _votes_of(_read_state(str(model)), str(model))
    assert isinstance(votes, NeighbourVotes) and votes.k == 7 and votes.keys.shape == (600, 8)
    assert votes.labels.shape == (600, 30) and votes.weight == 0.5
    # evaluate fuses them: the same figures as labelemb.torch.evaluate with the votes
    net, _, vectors, vocab = load_model(str(model))
    X = np.load(files / "X_test.npz")["features"]
    sets = [line.split(",") for line in (files / "tags_test.txt").read_text().splitlines()]
    Y = sp.csr_matrix((np.ones(sum(map(len, sets)), np.float32),
                       [vocab.index(t) for s in sets for t in s],
                       np.cumsum([0] + [len(s) for s in sets])), shape=(100, 30))
    want = evaluate(net, (X, Y), vectors, ks=[1, 3, 5], device="cpu", neighbours=votes)
    alone = evaluate(net, (X, Y), vectors, ks=[1, 3, 5], device="cpu")
    code, out, err = _run(capsys, "evaluate", model, files / "X_test.npz",
                          files / "tags_test.txt", "--json")
    assert code == 0, err
    assert json.loads(out)["map@30"] == pytest.approx(want["map@30"], abs=1e-6)
    code, out, err = _run(capsys, "evaluate", model, files / "X_test.npz",
                          files / "tags_test.txt", "--json", "--no-neighbours")
    assert code == 0, err
    assert json.loads(out)["map@30"] == pytest.approx(alone["map@30"], abs=1e-6)
    assert want["map@30"] != alone["map@30"]
    code, out, err = _run(capsys, "evaluate", model, files / "X_test.npz",
                          files / "tags_test.txt")
    assert "with neighbour votes" in out
    # 0 turns them off; the paper's recipe (nearest-vector decoding) never keeps them
    for extra in (["--neighbours", "0", "--objective", "lowrank-softmax"],
                  ["--objective", "paper"]):
        code, out, err = _run(capsys, *base[:3], *base[5:], *extra, "-o", tmp_path / "n.pt")
        assert code == 0, err
        assert "neighbour votes" not in out
        assert "neighbours" not in _read_state(str(tmp_path / "n.pt"))
    code, _, err = _run(capsys, *base, "-o", tmp_path / "x.pt", "--neighbours", "-1")
    assert code == 2 and "--neighbours" in err


def test_damaged_neighbour_votes_are_refused(files, tmp_path, capsys):
    model = tmp_path / "m.pt"
    code, _, err = _run(capsys, "train", files / "X.npy", files / "tags.txt", "-o", model,
                        "--objective", "bce", "--epochs", "1", "--hidden", "8",
                        "--no-progress", "-q", "--neighbours", "5")
    assert code == 0, err
    state = torch.load(model, weights_only=True)
    state["neighbours"]["indptr"][-1] += 5  # points past the label indices
    torch.save(state, model)
    code, _, err = _run(capsys, "evaluate", model, files / "X_test.npz", files / "tags_test.txt")
    assert code == 2 and "the neighbour votes are damaged" in err
    code, _, err = _run(capsys, "evaluate", model, files / "X_test.npz", files / "tags_test.txt",
                        "--no-neighbours")
    assert code == 0, err


def test_train_with_sampled_labels(files, tmp_path, capsys):
    """--sampled-labels trains lowrank-softmax with a sampled softmax; the saved model
    scores every label; other recipes and bad counts are refused before any fit."""
    model = tmp_path / "m.pt"
    code, out, err = _run(capsys, "train", files / "X.npy", files / "tags.txt", "-o", model,
                          "--objective", "lowrank-softmax", "--sampled-labels", "20",
                          "--epochs", "3", "--dim", "8", "--hidden", "32", "--lr", "0.01",
                          "--batch-size", "8", "--no-progress", "--log",
                          tmp_path / "log.jsonl")
    assert code == 0, err
    log = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
    code, out, err = _run(capsys, "evaluate", model, files / "X_test.npz",
                          files / "tags_test.txt", "--json")
    assert code == 0, err
    assert 0.3 < json.loads(out)["precision@1"] <= 1
    code, _, err = _run(capsys, "train", files / "X.npy", files / "tags.txt", "-o", model,
                        "--objective", "bce", "--sampled-labels", "12")
    assert code == 2 and "--sampled-labels trains a lowrank-softmax model" in err
    code, _, err = _run(capsys, "train", files / "X.npy", files / "tags.txt", "-o", model,
                        "--objective", "lowrank-softmax", "--sampled-labels", "-1")
    assert code == 2 and "--sampled-labels" in err


@pytest.mark.parametrize("argv, wide, expected", [
    ((), 10_000, None),                                   # 30 labels: every label
    ((), 10, 4096),                                       # "from 10 labels on": sampled
    (("--sampled-labels", "0"), 10, None),                # 0: every label
    (("--sampled-labels", "7"), 10_000, 7),
    (("--objective", "bce"), 10, None),                   # only lowrank-softmax samples
])
def test_train_sampled_labels_default(files, tmp_path, capsys, monkeypatch, argv, wide,
                                      expected):
    import labelemb._recipes as recipes
    import labelemb.torch._cli as tcli

    monkeypatch.setattr(recipes, "WIDE_LABEL_SET", wide)
    seen = {}
    real_fit = tcli.fit

    def spy(*a, **kw):
        seen["sampled"] = kw.get("sampled_labels")
        return real_fit(*a, **kw)

    monkeypatch.setattr(tcli, "fit", spy)
    if "--objective" not in argv:
        argv = ("--objective", "lowrank-softmax") + tuple(argv)
    code, _, err = _run(capsys, "train", files / "X.npy", files / "tags.txt", "-o",
                        tmp_path / "m.pt", "--epochs", "1", "--dim", "8", "--hidden", "16",
                        "--no-progress", "-q", *argv)
    assert code == 0, err
    assert seen["sampled"] == expected
