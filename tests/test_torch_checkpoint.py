"""Training checkpoints: the settings saved with them, resume refusing changed settings,
a damaged last checkpoint skipped for the one before, load errors naming the file."""

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import labelemb  # noqa: E402
from labelemb.torch import TrainSettings, fit, load_checkpoint, make_model, mlp  # noqa: E402
from labelemb.torch.checkpoint import CheckpointWarning, latest_checkpoint  # noqa: E402

N, L, F = 400, 20, 10
ARGS = dict(epochs=3, lr=1e-2, batch_size=64, progress=False, device="cpu", seed=5,
            schedule="cosine")


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def data():
    d = labelemb.make_topic_labels(N + 100, L, n_features=F, feature_noise=0.5, seed=1)
    X, Y = d.features, d.labels
    return (X[:N], Y[:N]), (X[N:], Y[N:])


def _model(seed=0):
    torch.manual_seed(seed)
    return make_model(mlp(F, [16]), 16, "bce", n_labels=L)


def _fit(model, data, directory, **kw):
    return fit(model, data[0], valid=data[1], checkpoint_dir=str(directory),
               **{**ARGS, **kw})


def _stop_after(n):
    return lambda history, model: len(history) >= n


def test_checkpoint_records_the_settings(data, tmp_path):
    _fit(_model(), data, tmp_path, epochs=2, max_grad_norm=1.0)
    state = load_checkpoint(tmp_path / "checkpoint-00002.pt")
    want = TrainSettings("bce", epochs=2, lr=1e-2, batch_size=64, schedule="cosine", seed=5,
                         max_grad_norm=1.0)
    assert state["settings"] == want.to_dict()
    assert state["recipe"] == "bce" and state["epoch"] == 2


@pytest.mark.parametrize("changed, name", [
    (dict(lr=3e-2), "lr"), (dict(batch_size=32), "batch_size"), (dict(epochs=4), "epochs"),
    (dict(schedule="constant"), "schedule"), (dict(weight_decay=0.1), "weight_decay"),
    (dict(optimizer="sgd"), "optimizer"), (dict(seed=6), "seed"),
])
def test_resume_refuses_a_changed_setting(data, tmp_path, changed, name):
    _fit(_model(), data, tmp_path, callbacks=[_stop_after(1)])
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match=rf"{name}: .* in the checkpoint, .* now"):
        _fit(_model(), data, tmp_path, resume=True, **changed)
    assert sorted(os.listdir(tmp_path)) == before  # nothing written or deleted


def test_resume_refuses_another_recipe(data, tmp_path):
    _fit(_model(), data, tmp_path, callbacks=[_stop_after(1)])
    with pytest.raises(ValueError, match="recipe 'bce', not 'softmax'"):
        _fit(_model(), data, tmp_path, resume=True, recipe="softmax")


def _damage(path, how):
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(b"not a checkpoint at all" * 10)


@pytest.mark.parametrize("how", ["truncated", "empty", "junk"])
def test_damaged_last_checkpoint_is_skipped(data, tmp_path, how):
    full_model = _model()
    full = _fit(full_model, data, tmp_path / "full")
    _fit(_model(), data, tmp_path / "part", callbacks=[_stop_after(2)])
    last = tmp_path / "part" / "checkpoint-00002.pt"
    _damage(last, how)
    resumed_model = _model(seed=9)
    with pytest.warns(CheckpointWarning, match="checkpoint-00002.pt") as record:
        resumed = _fit(resumed_model, data, tmp_path / "part", resume=True)
    assert "resuming from" in str(record[0].message)
    assert "checkpoint-00001.pt" in str(record[0].message)
    # the run went on from epoch 1 and ends where an uninterrupted run ends
    assert resumed["epoch"] == [1, 2, 3]
    assert resumed["loss"][1:] == pytest.approx(full["loss"][1:], rel=1e-6)
    for a, b in zip(full_model.parameters(), resumed_model.parameters()):
        torch.testing.assert_close(a, b)
    assert load_checkpoint(last)["epoch"] == 2  # rewritten whole


def test_every_checkpoint_damaged_is_an_error_naming_them(data, tmp_path):
    _fit(_model(), data, tmp_path, callbacks=[_stop_after(2)])
    for name in ("checkpoint-00001.pt", "checkpoint-00002.pt"):
        _damage(tmp_path / name, "truncated")
    with pytest.raises(ValueError, match="no readable checkpoint") as info:
        _fit(_model(), data, tmp_path, resume=True)
    assert "checkpoint-00001.pt" in str(info.value)
    assert "checkpoint-00002.pt" in str(info.value)
    assert latest_checkpoint(str(tmp_path / "elsewhere")) is None  # no folder: a fresh start


@pytest.mark.parametrize("how", ["truncated", "empty", "junk"])
def test_load_checkpoint_names_the_damaged_file(data, tmp_path, how):
    _fit(_model(), data, tmp_path, epochs=1)
    path = tmp_path / "checkpoint-00001.pt"
    _damage(path, how)
    with pytest.raises(ValueError, match="truncated or damaged") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_load_checkpoint_refuses_other_files(tmp_path):
    other = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match=f"{other} is not a labelemb checkpoint"):
        load_checkpoint(other)
    torch.save({"format_version": 1, "epoch": 1}, other)
    with pytest.raises(ValueError, match="missing recipe, model"):
        load_checkpoint(other)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_settings_are_checked():
    with pytest.raises(TypeError, match="epochs must be an int"):
        TrainSettings("bce", epochs="3", lr=1e-3, batch_size=8)
    with pytest.raises(ValueError, match="lr must be > 0"):
        TrainSettings("bce", epochs=3, lr=0.0, batch_size=8)
    with pytest.raises(ValueError, match="max_grad_norm"):
        TrainSettings("bce", epochs=3, lr=1e-3, batch_size=8, max_grad_norm=float("nan"))
    s = TrainSettings("bce", epochs=np.int64(3), lr=np.float32(0.5), batch_size=8)
    assert type(s.epochs) is int and type(s.lr) is float


def test_fit_types_follow_one_policy(data):
    # a str for an int is a TypeError, an out-of-range int a ValueError, as everywhere
    with pytest.raises(TypeError, match="epochs must be an int"):
        fit(_model(), data[0], **{**ARGS, "epochs": "3"})
    with pytest.raises(TypeError, match="batch_size must be an int"):
        fit(_model(), data[0], **{**ARGS, "batch_size": 8.0})
    with pytest.raises(ValueError, match="keep_checkpoints must be >= 1"):
        fit(_model(), data[0], **ARGS, keep_checkpoints=0)


def test_resume_into_another_model_says_so(data, tmp_path):
    _fit(_model(), data, tmp_path, callbacks=[_stop_after(1)])
    torch.manual_seed(0)
    wider = make_model(mlp(F, [24]), 24, "bce", n_labels=L)
    with pytest.raises(ValueError, match=f"checkpoint in {tmp_path} holds another model"):
        _fit(wider, data, tmp_path, resume=True)
