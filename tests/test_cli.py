import subprocess
import sys

import numpy as np
import pytest

import labelemb
from labelemb import LabelEmbedding, cli

TAGS = """sky,beach,sea
sky,sea
beach,sand,sea
mountain,snow
snow,ski,mountain
sky,mountain
city,street
street,car,city
car,road
sky,city
beach,sea,sand
snow,mountain
"""


@pytest.fixture
def tags(tmp_path):
    path = tmp_path / "tags.txt"
    path.write_text(TAGS)
    return path


def test_fit_label_file(tags, tmp_path, capsys):
    out = tmp_path / "emb.npz"
    assert cli.main(["fit", str(tags), "--dim", "3", "-o", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "LabelEmbedding(L=11, d=3, n_samples=12" in printed
    assert "nearest neighbours of the 5 most frequent labels" in printed
    emb = LabelEmbedding.load(out)
    assert emb.label_names == sorted({t for line in TAGS.split() for t in line.split(",")})
    assert emb.params["dim"] == 3


def test_fit_options_reach_fit_embeddings(tags, tmp_path, capsys):
    out = tmp_path / "emb.npz"
    argv = ["fit", str(tags), "--dim", "2", "-o", str(out), "--pmi", "pmi", "--alpha", "0.75",
            "--shift", "0.1", "--min-count", "1", "--diagonal", "self", "--n-iter", "2",
            "--oversample", "4", "--seed", "3", "--threads", "1", "--power", "1.0",
            "--which", "LM", "--no-progress"]
    assert cli.main(argv) == 0
    p = LabelEmbedding.load(out).params
    assert (p["pmi"], p["alpha"], p["shift"], p["n_iter"], p["oversample"], p["seed"],
            p["power"], p["which"]) == ("pmi", 0.75, 0.1, 2, 4, 3, 1.0, "LM")


def test_fit_synthetic_with_progress(tmp_path, capsys):
    out = tmp_path / "emb.npz"
    assert cli.main(["fit", "--synthetic", "4000x60", "--dim", "8", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "LabelEmbedding(L=60, d=8, n_samples=4000, labels=ids)" in captured.out
    if labelemb.embedding._StageBars(True)._tqdm is not None:
        assert "eigendecomposition" in captured.err
    emb = LabelEmbedding.load(out)
    ref = labelemb.fit_embeddings(labelemb.make_topic_labels(4000, 60).labels, dim=8)
    np.testing.assert_array_equal(emb.vectors, ref.vectors)


def test_neighbors(tags, tmp_path, capsys):
    out = tmp_path / "emb.npz"
    cli.main(["fit", str(tags), "--dim", "3", "-o", str(out), "--no-progress"])
    capsys.readouterr()
    assert cli.main(["neighbors", str(out), "snow", "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("nearest labels to 'snow'")
    assert {line.split()[1] for line in lines[1:]} == {"ski", "mountain"}


@pytest.mark.filterwarnings("ignore::labelemb.EmbeddingWarning")  # rare isolated labels
def test_neighbors_ids(tmp_path, capsys):
    out = tmp_path / "emb.npz"
    cli.main(["fit", "--synthetic", "3000x40", "--dim", "4", "-o", str(out), "--no-progress"])
    capsys.readouterr()
    assert cli.main(["neighbors", str(out), "3", "-k", "5"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 5
    emb = LabelEmbedding.load(out)
    assert [int(r.split()[1]) for r in rows] == [j for j, _ in emb.neighbors(3, k=5)]


@pytest.mark.parametrize("argv, message", [
    (["fit", "--dim", "2", "-o", "x.npz"], "either LABELS_FILE or --synthetic"),
    (["fit", "LABELS", "--synthetic", "10x5", "-o", "x.npz"], "either LABELS_FILE or"),
    (["fit", "--synthetic", "ten", "-o", "x.npz"], "N x L"),
    (["fit", "--synthetic", "10x1", "-o", "x.npz"], "L >= 2"),
    (["fit", "missing.txt", "-o", "x.npz"], "missing.txt"),
    (["fit", "--synthetic", "100x20", "--dim", "20", "-o", "x.npz"], "dim=20 must be smaller"),
    (["neighbors", "missing.npz", "a"], "missing.npz"),
])
def test_user_errors(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv + (["--no-progress"] if argv[0] == "fit" else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"labelemb {argv[0]}: error:") and message in err


@pytest.mark.filterwarnings("ignore::labelemb.EmbeddingWarning")
def test_neighbors_unknown_label(tags, tmp_path, capsys):
    out = tmp_path / "emb.npz"
    cli.main(["fit", str(tags), "--dim", "3", "-o", str(out), "--no-progress"])
    assert cli.main(["neighbors", str(out), "volcano"]) == 2
    assert "unknown label 'volcano'" in capsys.readouterr().err
    ids = tmp_path / "ids.npz"
    cli.main(["fit", "--synthetic", "2000x30", "--dim", "3", "-o", str(ids), "--no-progress"])
    assert cli.main(["neighbors", str(ids), "sky"]) == 2
    assert "integer label ids" in capsys.readouterr().err


def test_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["fit", "--synthetic", "10x5"])  # -o is required
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert labelemb.__version__ in capsys.readouterr().out


def test_adding_a_subcommand_is_one_function(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_COMMANDS", dict(cli._COMMANDS))

    @cli.command("hello", "say hello", cli.arg("name"))
    def hello(args):
        print(f"hello {args.name}")
        return 0

    assert cli.main(["hello", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"


def test_module_entry_point(tmp_path):
    out = tmp_path / "emb.npz"
    r = subprocess.run([sys.executable, "-m", "labelemb.cli", "fit", "--synthetic", "2000x30",
                        "--dim", "4", "-o", str(out), "--no-progress"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.exists()
