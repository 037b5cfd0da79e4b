import json
import os
import socket
import subprocess

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

METRICS = ("p@1", "p@5", "ndcg@5", "map@100", "psp@5")


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    """The WordNet demo's small mode, run once through the CLI with the network and
    subprocesses (apt) disabled and the embedded data read afresh."""
    from labelemb.cli import main
    from labelemb.datasets import _debian, wordnet

    out = str(tmp_path_factory.mktemp("demo") / "wordnet")
    mp = pytest.MonkeyPatch()
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:1])
        raise OSError("network and subprocesses are disabled in this test")

    for name in ("connect", "connect_ex"):
        mp.setattr(socket.socket, name, refuse)
    mp.setattr(socket, "create_connection", refuse)
    mp.setattr(socket, "getaddrinfo", refuse)
    mp.setattr(subprocess, "run", refuse)
    mp.setattr(subprocess, "Popen", refuse)
    mp.setattr(_debian, "run_command", refuse)
    mp.setattr(wordnet, "_embedded", {})  # read the packaged file, not a cached copy
    try:
        status = main(["demo", "-o", out, "--limit", "300", "--epochs", "1", "--no-progress"])
    finally:
        mp.undo()
    with open(os.path.join(out, "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    return {"status": status, "out": out, "report": report, "attempts": attempts}


def test_small_demo_runs_offline(small_demo):
    assert small_demo["status"] == 0
    assert small_demo["attempts"] == []
    data = small_demo["report"]["data"]
    assert data["name"] == "wordnet"
    assert data["train"] == data["valid"] == data["test"] == 300
    assert data["train_all"] > 50_000 and data["labels"] > 4_000
    assert "WordNet 3.0" in data["source"]


def test_small_demo_report_schema(small_demo):
    from labelemb.peers import available

    rep = small_demo["report"]
    assert rep["format"] == "labelemb-demo-report" and rep["format_version"] == 2
    order = rep["order"]
    default = rep["default_recipe"]
    assert order[:3] == [default] + [r for r in ("bce", "paper") if r != default][:2]
    peers = [m for m in order if rep["results"][m]["kind"] == "peer"]
    assert peers == available(("pecos-b10", "omikuji-parabel", "napkinxc-plt", "popularity"),
                              echo=lambda m: None)
    assert set(rep["results"]) == set(order)
    assert rep["budget"]["epochs"] == 1 and rep["budget"]["train_rows"] == 300
    for name, r in rep["results"].items():
        assert set(r["test"]) == set(METRICS)
        assert all(0.0 <= v <= 1.0 for v in r["test"].values()), name
        assert r["train_time"] >= 0
        if r["kind"] == "recipe":
            assert r["chosen_epoch"] == 1 and len(r["epochs"]) == 1
            assert r["valid"]["map@100"] == r["epochs"][0]["map@100"]
            assert r["train_time"] == pytest.approx(r["epochs"][-1]["elapsed"])
        else:
            assert r["chosen_epoch"] is None and r["epochs"] == []
    # the method with the best validation MAP@100 reaches the runner-up's best; no one
    # else reaches the best of the others (ties aside)
    best = {m: max(v for _, v in r["valid_curve"]) for m, r in rep["results"].items()}
    top = max(best, key=best.get)
    assert rep["results"][top]["time_to_reach"] is not None
    for m, r in rep["results"].items():
        if best[m] < best[top]:
            assert r["time_to_reach"] is None, m
    emb = rep["embedding"]
    assert emb["dim"] == rep["budget"]["dim"] and len(emb["neighbors"]) == 5
    for nb in emb["neighbors"].values():
        assert len(nb) == 5 and all(-1.001 <= c <= 1.001 for _, c in nb)
    assert len(rep["samples"]) == 3
    for s in rep["samples"]:
        assert s["text"] and s["true"] and len(s["predicted"]) == 5
        assert all(ok == (name in s["true"]) for name, ok in s["predicted"])
    assert rep["wall_seconds"] > 0 and rep["machine"]["cores"] >= 1


def test_small_demo_table(small_demo):
    rep = small_demo["report"]
    lines = rep["table"].splitlines()
    assert lines[0].split()[:6] == ["method", "P@1", "P@5", "NDCG@5", "MAP@100", "PSP@5"]
    rows = {line.split()[0]: line.split() for line in lines[2:2 + len(rep["order"])]}
    assert list(rows) == rep["order"]
    for m, cells in rows.items():
        r = rep["results"][m]
        shown = [float(c) for c in cells[-8:-3]] if m != rep["default_recipe"] else \
            [float(c) for c in cells[2:7]]
        assert shown == pytest.approx([r["test"][k] for k in METRICS], abs=6e-4)
        assert cells[-1] == ("never" if r["time_to_reach"] is None
                             else f"{r['time_to_reach']:.1f}")


def test_small_demo_png(small_demo):
    from matplotlib.image import imread

    path = os.path.join(small_demo["out"], "curves.png")
    assert small_demo["report"]["plot"] == path
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    img = imread(path)
    assert img.shape[0] > 300 and img.shape[1] > 600
    # not a blank canvas: curves and markers in colour
    assert np.unique(img.reshape(-1, img.shape[-1])[:, :3], axis=0).shape[0] > 20
    for m in small_demo["report"]["order"]:
        if small_demo["report"]["results"][m]["kind"] == "recipe":
            assert os.path.exists(os.path.join(small_demo["out"], f"train-{m}.jsonl"))


def test_text_demo_without_peers(tmp_path, capsys):
    from labelemb.cli import main

    out = str(tmp_path / "bce")
    assert main(["demo", "-o", out, "--limit", "100", "--epochs", "2", "--recipes", "bce",
                 "--peers", "none", "--no-progress", "--hidden", "16", "--dim", "8"]) == 0
    printed = capsys.readouterr().out
    with open(os.path.join(out, "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    assert report["order"] == ["bce"] and report["budget"]["hidden"] == 16
    r = report["results"]["bce"]
    assert len(r["epochs"]) == 2 and r["chosen_epoch"] in (1, 2)
    assert r["valid"]["map@100"] == max(e["map@100"] for e in r["epochs"])
    assert r["time_to_reach"] is None  # no other row to reach
    assert report["table"].splitlines()[2].split()[-1] == "-"
    assert report["table"] in printed and "Peers" not in printed


def test_time_to_reach_by_hand():
    from labelemb.demo_report import time_to_reach

    entries = {"a": {"valid_curve": [(1.0, 0.2), (2.0, 0.5), (3.0, 0.6)]},
               "b": {"valid_curve": [(4.0, 0.45)]},
               "c": {"valid_curve": [(0.5, 0.1), (1.5, 0.3)]}}
    assert time_to_reach(entries) == {"a": 2.0, "b": None, "c": None}
    assert time_to_reach({"only": {"valid_curve": [(1.0, 0.1)]}}) == {"only": None}


def test_subsample_keeps_the_named_rows():
    from labelemb.demo import _subsample

    rows = _subsample(100, 10, 0, keep=[7, 5, 7])
    assert len(rows) == 10 and len(set(rows.tolist())) == 10
    assert {5, 7} <= set(rows.tolist()) and (np.diff(rows) > 0).all()
    assert not np.array_equal(rows, _subsample(100, 10, 1, keep=[7, 5]))
    assert _subsample(5, 10, 0).tolist() == [0, 1, 2, 3, 4]
    assert _subsample(5, None, 0).tolist() == [0, 1, 2, 3, 4]


def test_keep_best_copies_the_best_epochs_weights():
    import torch

    from labelemb._classifier_parts import BestEpoch
    from labelemb.torch import History

    model, keep, h = torch.nn.Linear(2, 2), BestEpoch("map@100", None), History()
    for epoch, value in enumerate([0.2, float("nan"), 0.5, 0.4], 1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        h.epochs.append({"epoch": epoch, "map@100": value})
        assert keep(h, model) is False
    assert keep.epoch == 3 and keep.best == 0.5
    assert torch.equal(keep.state["weight"], torch.full((2, 2), 3.0))
    assert torch.equal(model.weight, torch.full((2, 2), 4.0))  # a copy, not the live tensor


def test_default_recipe_is_make_models():
    import labelemb
    from labelemb.demo import default_recipe
    from labelemb.torch import make_model, mlp

    data = labelemb.make_topic_labels(300, 20, n_features=8, seed=0)
    emb = labelemb.fit_embeddings(data.labels, dim=4)
    model = make_model(mlp(8, [4]), 4, embedding=emb, n_labels=20)
    assert default_recipe(emb, 20) == model[1].recipe
    assert default_recipe(emb, 20) in labelemb.torch.RECIPES


def test_text_data_without_apt_is_one_line(tmp_path, capsys, monkeypatch):
    from labelemb import datasets
    from labelemb.cli import main

    def no_apt(*args, **kwargs):
        raise RuntimeError("load_debtags: could not obtain the Debian apt indexes (apt-get "
                           "failed).\nRun these commands:\n  apt-get update")

    monkeypatch.setattr(datasets, "load_debtags_xmc", no_apt)
    monkeypatch.setattr(datasets, "load_debian_deps", no_apt)
    for data in ("debtags", "debian-deps"):
        assert main(["demo", "--data", data, "-o", str(tmp_path), "--peers", "none"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert f"--data {data} needs Debian's apt indexes" in err[0]
        assert "could not obtain" in err[0]


@pytest.mark.parametrize("argv, message", [
    (["--recipes", "svm"], "unknown recipe"),
    (["--peers", "liblinear"], "unknown peer"),
    (["--hidden", "0"], "--hidden must be >= 1"),
    (["--limit", "0"], "--limit must be >= 1"),
    (["--data", "openclipart", "--peers", "knn"], "--peers is for the text data sets"),
])
def test_demo_rejects_bad_options(tmp_path, capsys, argv, message):
    from labelemb.cli import main

    assert main(["demo", "-o", str(tmp_path)] + argv) == 2
    assert message in capsys.readouterr().err


def test_image_demo_end_to_end(tmp_path):
    from labelemb.cli import main
    from labelemb.demo_images import OTHER_RECIPES

    out = str(tmp_path / "demo")
    assert main(["demo", "--data", "openclipart", "-o", out, "--epochs", "1", "--limit", "200",
                 "--no-progress", "--dim", "16"]) == 0
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert report["format_version"] == 1
    first, *rest = report["results"]
    assert rest == [r for r in OTHER_RECIPES if r != first]
    assert first not in OTHER_RECIPES or first == "bce"
    for r in report["results"].values():
        assert 0.0 <= r["best"]["p@5"] <= 1.0
        assert len(r["epochs"]) == 1
    assert os.path.exists(os.path.join(out, "curves.png"))


def test_shift_flip_moves_training_images_only():
    import torch

    from labelemb.demo import shift_flip, small_cnn

    m = shift_flip(2)
    x = torch.rand(64, 3, 8, 8)
    torch.manual_seed(0)
    y = m(x)
    assert y.shape == x.shape
    assert not torch.equal(y, x)
    # every output pixel is an input pixel of the same image and channel (no blending)
    for i in range(4):
        assert set(y[i].flatten().tolist()) <= set(x[i].flatten().tolist())
    m.eval()
    assert torch.equal(m(x), x)
    net = small_cnn(4, 8, augment=True).eval()
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 8)


def test_image_demo_softmax_recipes(tmp_path):
    from labelemb.cli import main

    out = str(tmp_path / "demo")
    assert main(["demo", "--data", "openclipart", "-o", out, "--epochs", "1", "--limit", "150",
                 "--no-progress", "--dim", "8", "--recipes", "softmax,lowrank-softmax"]) == 0
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert set(report["results"]) == {"softmax", "lowrank-softmax"}
    with open(os.path.join(out, "train-lowrank-softmax.jsonl")) as f:
        first = json.loads(f.readline())
    assert first["recipe"] == "lowrank-softmax"


def test_small_cnn_dropout():
    import torch

    from labelemb.demo import small_cnn

    net = small_cnn(4, 8, dropout=0.5)
    assert any(isinstance(m, torch.nn.Dropout) for m in net.modules())
    assert not any(isinstance(m, torch.nn.Dropout) for m in small_cnn(4, 8).modules())
    with pytest.raises(ValueError, match="dropout"):
        small_cnn(4, 8, dropout=1.0)


def test_plot_marks_and_points(tmp_path):
    pytest.importorskip("matplotlib")
    from labelemb import plot

    runs = {"a": [{"epoch": 1, "elapsed": 1.0, "map@100": 0.2},
                  {"epoch": 2, "elapsed": 2.5, "map@100": 0.3}]}
    path = plot.history(runs, tmp_path / "c.png", metrics=["map@100"], chosen={"a": 2},
                        points={"peer": {"elapsed": 0.7, "map@100": 0.25}})
    assert os.path.getsize(path) > 1000
    with pytest.raises(ValueError, match="cumulative training seconds"):
        plot.history({"z": [{"epoch": 1, "elapsed": 2.0, "map@100": 0.2},
                            {"epoch": 2, "elapsed": 1.0, "map@100": 0.3}]},
                     tmp_path / "d.png", metrics=["map@100"])
    with pytest.raises(ValueError, match="finite 'elapsed'"):
        plot.history(runs, tmp_path / "e.png", metrics=["map@100"],
                     points={"peer": {"map@100": 0.25}})
