"""The large-label-set driver (``xmc_recipes.py``) on the small synthetic sparse-text set:
the default configuration (low-rank PMI head, cosine schedule, neighbour votes) trains,
records the network alone beside the fused predictions, and its report has the row. The
figures quoted in the README's "Large label sets" section come from ``LABELEMB_BENCH=full``
runs on WordNet, Debian dependencies and debtags, never asserted here.
"""

from __future__ import annotations

import pytest
import xmc
import xmc_recipes as xr

pytest.importorskip("torch")
pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def split():
    return xmc.load_split("synthetic")


def test_default_configuration_with_votes(split, benchmark):
    spec = xr.spec("lowrank-softmax", 2e-3, 0, epochs=2, hidden=64, dim=16,
                   schedule="cosine", patience=5, neighbours=20)
    rec = benchmark.pedantic(xr.run_recipe, args=(split, spec),
                             kwargs={"echo": lambda *a, **k: None}, rounds=1, iterations=1)
    assert rec["recipe"] == "lowrank-softmax+d16+nb20+cosine+h64"
    alone = rec["model_only"]["test_map@100"]
    for m in xmc.METRICS:
        assert 0.0 <= rec["test_" + m] <= 1.0
    assert rec["votes_time"] > 0 and len(rec["epochs"]) == 2
    for e in rec["epochs"]:  # validation per epoch: fused, and the network alone
        assert 0.0 <= e["map@100_model_only"] <= 1.0 and e["votes_time"] > 0
    # the votes carry label information the network alone lacks: not worse than it by far
    assert rec["test_map@100"] > 0.9 * alone


def test_soft_targets_and_rates_by_part(split):
    import labelemb.torch.train as train_module

    recipe_loss = train_module.make_loss
    spec = xr.spec("lowrank-softmax", 2e-3, 0, epochs=1, hidden=32, dim=8, soft=0.2,
                   first_lr=2.0, vec_lr=0.5)
    rec = xr.run_recipe(split, spec, echo=lambda *a, **k: None)
    assert train_module.make_loss is recipe_loss  # later fits get their recipes' losses
    assert "soft0.2" in rec["recipe"] and "flr2" in rec["recipe"] and "vlr0.5" in rec["recipe"]
    assert 0.0 < rec["test_map@100"] <= 1.0
