"""Recipe comparison (issues 6 and 7): the sigmoid baseline ("bce"), the paper's recipe
("paper") and the low-rank PMI head ("lowrank") on Openclipart images and debtags texts.

The heavy driver is ``benchmarks/recipes.py`` (learning-rate grid chosen on a validation
split carved out of TRAIN by group, seeds, ablations, TF-IDF 10-NN and popularity
baselines, report and plots; results cached in ``results/recipes_<size>_*.jsonl``). This
file runs it: at the default small size a tiny version of every step in seconds (CI checks
that it still runs), with ``LABELEMB_BENCH=full`` the learning-rate grid for each recipe
on both data sets, then the report. Nothing here asserts a timing or a winner; the figures
are in the README's "Recipes" section.
"""

from __future__ import annotations

import pytest
from _util import RESULTS, bench_size

pytest.importorskip("torch")
pytest.importorskip("sklearn")

import recipes  # noqa: E402


def _debtags_available() -> bool:
    try:
        from labelemb.datasets import load_debtags

        load_debtags()
    except Exception:  # noqa: BLE001 (no apt index on this machine: skip, don't fail)
        return False
    return True


@pytest.fixture(params=["openclipart", "debtags"])
def dataset(request):
    if request.param == "debtags" and not _debtags_available():
        pytest.skip("debtags cannot be built here (no apt index)")
    return request.param


def test_recipes(dataset, tmp_path, benchmark):
    import torch

    torch.set_num_threads(1)
    directory = str(tmp_path) if bench_size() != "full" else RESULTS
    data = recipes.load(dataset)
    grid = recipes.LRS if bench_size() == "full" else recipes.LRS[:1]
    cfgs = [recipes.config(dataset, r, lr) for lr in grid for r in recipes.MAIN] + \
        [recipes.config(dataset, r, lr, **recipes.V2) for lr in grid for r in recipes.MAIN2]
    if bench_size() != "full":  # the round-3 extras: a later seed, unseen label sets
        cfgs += [recipes.config(dataset, "bce", grid[0], 3),
                 recipes.config(dataset, "bce", grid[0], unseen=True)]
        if dataset == "openclipart":  # training images flipped and shifted
            cfgs.insert(-1, recipes.config(dataset, "bce", grid[0], **recipes.V4))
    benchmark.pedantic(recipes.run, args=(cfgs[0], data, directory), rounds=1, iterations=1)
    for cfg in cfgs[1:]:
        recipes.run(cfg, data, directory)
    for cfg in cfgs:
        records = recipes.run(cfg, data, directory)  # cached: read back, not retrained
        assert len(records) == cfg["epochs"]
        for rec in records:
            for m in ("p@1", "p@5", "ndcg@5", "map@100", "psp@5"):
                assert 0.0 <= rec["test_" + m] <= 1.0
            assert rec["elapsed"] > 0
    if bench_size() != "full":
        last = recipes.run(cfgs[-1], data, directory)[-1]
        assert 0.0 <= last["test_unseen_map@100"] <= 1.0
    text = recipes.write_report([dataset], directory)
    assert dataset in text
    assert "Round 2" in text and "lowrank-softmax" in text
    if bench_size() != "full":
        assert "Five seeds" in text and "never seen whole" in text
        assert ("with augmentation" in text) == (dataset == "openclipart")
