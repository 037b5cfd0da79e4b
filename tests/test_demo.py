import json
import os

import pytest

pytest.importorskip("torch")


def test_demo_end_to_end(tmp_path):
    from labelemb.cli import main

    out = str(tmp_path / "demo")
    assert main(["demo", "-o", out, "--epochs", "1", "--limit", "200", "--no-progress",
                 "--dim", "16"]) == 0
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert report["format_version"] == 1
    assert set(report["results"]) == {"hybrid", "lowrank", "paper", "bce"}
    for r in report["results"].values():
        assert 0.0 <= r["best"]["p@5"] <= 1.0
        assert len(r["epochs"]) == 1
    assert os.path.exists(os.path.join(out, "curves.png"))


def test_demo_rejects_unknown_recipe(tmp_path, capsys):
    from labelemb.cli import main

    assert main(["demo", "-o", str(tmp_path), "--recipes", "svm", "--limit", "50"]) == 2
    assert "unknown recipe" in capsys.readouterr().err


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


def test_demo_softmax_recipes(tmp_path):
    from labelemb.cli import main

    out = str(tmp_path / "demo")
    assert main(["demo", "-o", out, "--epochs", "1", "--limit", "150", "--no-progress",
                 "--dim", "8", "--recipes", "softmax,lowrank-softmax"]) == 0
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
