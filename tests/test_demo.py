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
    assert set(report["results"]) == {"lowrank", "paper", "bce"}
    for r in report["results"].values():
        assert 0.0 <= r["best"]["p@5"] <= 1.0
        assert len(r["epochs"]) == 1
    assert os.path.exists(os.path.join(out, "curves.png"))


def test_demo_rejects_unknown_recipe(tmp_path, capsys):
    from labelemb.cli import main

    assert main(["demo", "-o", str(tmp_path), "--recipes", "svm", "--limit", "50"]) == 1
    assert "unknown recipe" in capsys.readouterr().err
