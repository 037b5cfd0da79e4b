"""The one-file model format: round trips, and every damaged file refused by name."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import labelemb  # noqa: E402
from labelemb.torch.model_file import (  # noqa: E402
    FORMAT_VERSION,
    build_model,
    mlp_architecture,
    read_model,
    write_model,
)


def _embedding(L=12, d=4, names=True):
    rng = np.random.default_rng(0)
    v = rng.standard_normal((L, d)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return labelemb.LabelEmbedding(v, [f"tag{i}" for i in range(L)] if names else None,
                                   np.arange(1, L + 1), 50, np.linspace(3, 1, d),
                                   {"dim": d, "seed": 0})


def _model(recipe="hybrid", emb=None, F=6, hidden=(8,), residual=False):
    emb = emb if emb is not None else _embedding()
    arch = dict(mlp_architecture(F, hidden, 0.1), recipe=recipe, n_labels=emb.n_labels)
    if residual:
        arch["residual"] = True
    torch.manual_seed(1)
    return build_model(arch, emb), arch, emb


@pytest.mark.parametrize("recipe", ["hybrid", "lowrank", "paper"])
def test_round_trip_weights_embedding_and_records(tmp_path, recipe):
    model, arch, emb = _model(recipe)
    path = tmp_path / "m.npz"
    hist = [{"epoch": 1, "loss": 0.5}]
    write_model(path, model, emb, architecture=arch, settings={"dim": 4, "hidden": [8]},
                history=hist, extra={"note": "x"},
                arrays={"text.terms": np.array(["a", "b"]), "text.idf": np.ones(2, np.float32)})
    f = read_model(path)
    want = model.state_dict()
    got = f.model.state_dict()
    assert sorted(want) == sorted(got)
    for k in want:
        assert torch.equal(want[k], got[k]), k
    np.testing.assert_array_equal(f.embedding.vectors, emb.vectors)
    np.testing.assert_array_equal(f.embedding.label_counts, emb.label_counts)
    np.testing.assert_array_equal(f.embedding.eigenvalues, emb.eigenvalues)
    assert f.label_names == emb.label_names
    assert f.embedding.n_samples == 50 and f.embedding.params == emb.params
    assert f.settings == {"dim": 4, "hidden": [8]}
    assert f.architecture == arch and f.history == hist and f.extra == {"note": "x"}
    assert f.arrays["text.terms"].tolist() == ["a", "b"]
    assert not f.model.training
    x = torch.randn(3, 6)
    model.eval()
    assert torch.equal(model(x), f.model(x))


def test_ids_and_residual_head(tmp_path):
    emb = _embedding(names=False)
    model, arch, _ = _model("lowrank", emb, residual=True)
    with torch.no_grad():
        model[1].residual.weight.normal_()
    write_model(tmp_path / "m.npz", model, emb, architecture=arch, settings={})
    f = read_model(tmp_path / "m.npz")
    assert f.label_names is None
    assert torch.equal(f.model[1].residual.weight, model[1].residual.weight)


def test_bfloat16_weights_are_kept_as_float32_and_cast_back(tmp_path):
    model, arch, emb = _model()
    model = model.to(torch.bfloat16)
    write_model(tmp_path / "m.npz", model, emb, architecture=arch, settings={})
    f = read_model(tmp_path / "m.npz")
    assert f.meta["weights"]["1.linear.weight"] == "bfloat16"
    assert torch.equal(f.model[1].linear.weight.to(torch.bfloat16), model[1].linear.weight)


def test_custom_backbone_needs_it_at_load(tmp_path):
    emb = _embedding()
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh())
    arch = {"backbone": "custom", "class": "x.Net", "out_features": 5, "recipe": "bce",
            "n_labels": emb.n_labels}
    model = build_model(arch, emb, net)
    write_model(tmp_path / "m.npz", model, emb, architecture=arch, settings={})
    with pytest.raises(ValueError, match="custom backbone.*backbone="):
        read_model(tmp_path / "m.npz")
    wrong = torch.nn.Sequential(torch.nn.Linear(6, 7), torch.nn.Tanh())
    with pytest.raises(ValueError, match="m.npz.*do not fit"):
        read_model(tmp_path / "m.npz", backbone=wrong)
    fresh = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh())
    f = read_model(tmp_path / "m.npz", backbone=lambda: fresh)
    assert torch.equal(f.model[0][0].weight, net[0].weight)


@pytest.fixture()
def saved(tmp_path):
    model, arch, emb = _model()
    path = tmp_path / "model.npz"
    write_model(path, model, emb, architecture=arch, settings={"dim": 4})
    return path


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        read_model(tmp_path / "nope.npz")


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated_file_is_a_value_error_naming_it(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match="model.npz"):
        read_model(saved)


def test_flipped_bytes_are_caught_by_the_crc(saved):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("w.1.linear.weight.npy")
    pos = info.header_offset + 30 + len(info.filename) + 200  # inside the weights' data
    data[pos] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="model.npz"):
        read_model(saved)


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    members.update(changes)
    members = {k: v for k, v in members.items() if v is not None}
    with open(path, "wb") as f:
        np.savez(f, **members)


def test_newer_version_is_refused(saved):
    _rewrite(saved, format_version=np.array(FORMAT_VERSION + 1, np.int64))
    with pytest.raises(ValueError, match="model.npz.*newer labelemb"):
        read_model(saved)


def test_other_files_are_refused(tmp_path, saved):
    emb_path = tmp_path / "emb.npz"
    _embedding().save(emb_path)
    with pytest.raises(ValueError, match="emb.npz.*not a labelemb model"):
        read_model(emb_path)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.npz"):
        read_model(text)
    _rewrite(saved, meta=np.array("[1, 2]"))
    with pytest.raises(ValueError, match="model.npz.*meta"):
        read_model(saved)


def test_missing_member_and_bad_weights(saved):
    with np.load(saved, allow_pickle=False) as z:
        weight = z["w.1.linear.weight"]
    _rewrite(saved, **{"w.1.linear.weight": weight[:, :3]})
    with pytest.raises(ValueError, match="model.npz.*do not fit"):
        read_model(saved)
    _rewrite(saved, **{"emb.vectors": None})
    with pytest.raises(ValueError, match="model.npz.*missing"):
        read_model(saved)


def test_object_arrays_are_never_written(tmp_path):
    model, arch, emb = _model()
    with pytest.raises(TypeError, match="object"):
        write_model(tmp_path / "m.npz", model, emb, architecture=arch, settings={},
                    arrays={"bad": np.array([{"a": 1}], dtype=object)})
    assert not os.listdir(tmp_path)


def test_meta_is_plain_json(saved):
    with zipfile.ZipFile(saved) as zf:
        assert all(n.endswith(".npy") for n in zf.namelist())
    with np.load(saved, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"][()]))
    assert meta["architecture"]["backbone"] == "mlp"
    assert meta["labelemb_version"] == labelemb.__version__
