"""One-file models: the network, its label space and its settings in one ``.npz``.

A model file holds everything :class:`labelemb.Classifier` (and ``labelemb predict``) needs
to serve predictions: the settings it was trained with, the label names, the label
embedding, the network's weights and the architecture of its default MLP backbone (a
custom backbone is rebuilt by a callable given to :func:`read_model`). It is a
``numpy.savez`` archive read with ``allow_pickle=False``: nothing in it is executed, every
member carries a CRC-32 that is checked on reading, and it is written atomically.

====================  ==============================  =====================================
key                   dtype, shape                    content
====================  ==============================  =====================================
``format``            str, ()                         ``"labelemb.Model"``
``format_version``    int64, ()                       1; readers refuse newer versions
``meta``              str, ()                         JSON object, see below
``label_names``       str, (L,) or (0,)               names, or empty when labels are ids
``emb.vectors``       float32, (L, d)                 the label embedding's unit vectors
``emb.label_counts``  int64, (L,)                     training occurrences of each label
``emb.eigenvalues``   float64, (d,) or (0,)           the PMI eigenvalues kept
``w.<name>``          float32 / int64, any            one entry of the network's state_dict
``x.<name>``          any numeric or str              extra arrays (the text features' terms)
====================  ==============================  =====================================

``meta`` holds ``labelemb_version``, ``settings`` (the estimator's parameters),
``architecture`` (``{"backbone": "mlp", "in_features", "hidden", "dropout", "sparse"}`` or
``{"backbone": "custom", "class"}``; an MLP's ``sparse`` says whether its first layer is a
``SparseLinear``), plus ``out_features``, ``recipe``, ``n_labels``),
``weights`` (name -> dtype, as saved before any cast), ``embedding`` (``n_samples``,
``params``), ``history`` (the per-epoch records) and ``extra`` (free JSON).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from .._io import atomic_write
from .._npz import read_npz
from .._recipes import RECIPES
from .._version import __version__
from ..embedding import LabelEmbedding
from .heads import find_head, make_model, mlp

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFile", "build_model", "read_model",
           "write_model"]

FORMAT = "labelemb.Model"
FORMAT_VERSION = 1
PathLike = Union[str, "os.PathLike[str]"]
_REQUIRED = ("format", "format_version", "meta", "label_names", "emb.vectors",
             "emb.label_counts", "emb.eigenvalues")
# numpy holds these losslessly; other tensor dtypes (bfloat16, float16) are saved as float32
# and cast back by load_state_dict's copy into the rebuilt module.
_NUMPY_DTYPES = {torch.float32, torch.float64, torch.int64, torch.int32, torch.uint8,
                 torch.bool, torch.int8, torch.int16}


@dataclass
class ModelFile:
    """What :func:`read_model` found in a model file.

    Attributes
    ----------
    model : nn.Module
        ``nn.Sequential(backbone, head)`` with the saved weights, in eval mode, on the CPU.
    embedding : LabelEmbedding
        With ``label_names`` set when the model was trained on names.
    settings : dict
        The estimator parameters saved with it.
    architecture : dict
    history : list of dict
    extra : dict
        Free JSON saved by the writer.
    arrays : dict of str -> ndarray
        The extra arrays (``x.<name>`` members, without the prefix).
    meta : dict
        The whole ``meta`` record.
    """

    model: nn.Module
    embedding: LabelEmbedding
    settings: dict
    architecture: dict
    history: list
    extra: dict
    arrays: Dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def label_names(self) -> Optional[list]:
        return self.embedding.label_names


def mlp_architecture(in_features: int, hidden: Sequence[int], dropout: float,
                     sparse: bool = False) -> dict:
    """The architecture record of :func:`labelemb.torch.mlp` (rebuilt without user code);
    ``sparse``: its first layer is a :class:`~labelemb.torch.sparse.SparseLinear`."""
    hidden = [int(h) for h in hidden]
    return {"backbone": "mlp", "in_features": int(in_features), "hidden": hidden,
            "dropout": float(dropout), "sparse": bool(sparse),
            "out_features": hidden[-1] if hidden else int(in_features)}


def build_model(architecture: dict, embedding: LabelEmbedding,
                backbone: Union[None, nn.Module, Callable[[], nn.Module]] = None) -> nn.Module:
    """``nn.Sequential(backbone, head)`` as ``architecture`` describes it (fresh weights).

    Parameters
    ----------
    architecture : dict
        ``backbone`` ("mlp" or "custom"), ``out_features``, ``recipe``, ``n_labels``, and for
        an MLP ``in_features``, ``hidden``, ``dropout``.
    embedding : LabelEmbedding
        For heads that need the label vectors.
    backbone : nn.Module or callable returning one, optional
        Required for a custom backbone (the saved weights are loaded into it afterwards);
        for an MLP it replaces the default one.
    """
    recipe = architecture["recipe"]
    if recipe not in RECIPES or RECIPES[recipe].head is None:
        raise ValueError(f"unknown recipe {recipe!r} in the architecture record")
    if backbone is None:
        if architecture["backbone"] != "mlp":
            raise ValueError(
                f"this model has a custom backbone ({architecture.get('class', '?')}); pass "
                "backbone= (the module, or a callable returning it) to rebuild it")
        net = mlp(architecture["in_features"], architecture["hidden"],
                  dropout=architecture["dropout"], sparse=bool(architecture.get("sparse")))
    else:
        net = backbone if isinstance(backbone, nn.Module) else backbone()
        if not isinstance(net, nn.Module):
            raise TypeError(f"backbone must be an nn.Module or a callable returning one, got "
                            f"{type(net).__name__}")
    kwargs = {"residual": True} if architecture.get("residual") else {}
    return make_model(net, int(architecture["out_features"]), recipe, embedding=embedding,
                      n_labels=int(architecture["n_labels"]), **kwargs)


def write_model(path: PathLike, model: nn.Module, embedding: LabelEmbedding, *,
                architecture: dict, settings: dict, history: Sequence[dict] = (),
                extra: Optional[dict] = None,
                arrays: Optional[Dict[str, np.ndarray]] = None) -> None:
    """Write ``model`` and its label space to one file at ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file (conventionally ``.npz``); its directory must exist.
    model : nn.Module
        ``nn.Sequential(backbone, head)`` as :func:`build_model` makes it.
    embedding : LabelEmbedding
    architecture, settings : dict
        JSON-serialisable records (see the module docstring).
    history : sequence of dict
    extra : dict, optional
        More JSON to keep.
    arrays : dict of str -> ndarray, optional
        More arrays to keep (numeric or str; object arrays are refused).
    """
    members = {"format": np.array(FORMAT), "format_version": np.array(FORMAT_VERSION, np.int64),
               "label_names": np.array(embedding.label_names or [], dtype=str),
               "emb.vectors": embedding.vectors, "emb.label_counts": embedding.label_counts,
               "emb.eigenvalues": embedding.eigenvalues}
    dtypes = {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        dtypes[name] = str(t.dtype).replace("torch.", "")
        if t.dtype not in _NUMPY_DTYPES:
            t = t.float()
        members["w." + name] = t.numpy()
    for name, a in (arrays or {}).items():
        a = np.asarray(a)
        if a.dtype == object:
            raise TypeError(f"arrays[{name!r}] is an object array; pass numbers or str")
        members["x." + name] = a
    meta = {"labelemb_version": __version__, "settings": settings,
            "architecture": architecture, "weights": dtypes,
            "embedding": {"n_samples": embedding.n_samples, "params": embedding.params},
            "history": list(history), "extra": extra or {}}
    members["meta"] = np.array(json.dumps(meta, default=_json_default))
    with atomic_write(path) as f:
        np.savez(f, **members)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot save {type(obj).__name__} in a model file's JSON record")


class _NewerVersion(Exception):
    pass


def read_model(path: PathLike, backbone: Union[None, nn.Module, Callable[[], nn.Module]] = None
               ) -> ModelFile:
    """Read a file written by :func:`write_model` and rebuild its network.

    Parameters
    ----------
    path : str or os.PathLike
    backbone : nn.Module or callable returning one, optional
        Needed when the model was trained with a custom backbone: a module of the same
        architecture (its weights are replaced by the saved ones).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file is truncated or corrupt, not a labelemb model, written by a newer
        labelemb, or its weights do not fit the rebuilt network. The message names the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    members = read_npz(path, "a labelemb model")  # any damage: a ValueError naming path
    try:
        fmt = str(members["format"][()]) if "format" in members else None
        if fmt != FORMAT:
            raise ValueError(f"not a labelemb model (format {fmt!r})")
        version = int(members["format_version"][()])
        if version > FORMAT_VERSION:
            raise _NewerVersion(
                f"{path}: written by a newer labelemb (model format_version {version}); this "
                f"version reads up to {FORMAT_VERSION}: upgrade labelemb")
        missing = sorted(set(_REQUIRED) - set(members))
        if missing:
            raise ValueError(f"incomplete model file (missing {missing})")
        meta = json.loads(str(members["meta"][()]))
        if not isinstance(meta, dict):
            raise ValueError("meta is not a JSON object")
        names = members["label_names"].tolist() if members["label_names"].size else None
        emb = LabelEmbedding(members["emb.vectors"], names, members["emb.label_counts"],
                             int(meta["embedding"]["n_samples"]),
                             members["emb.eigenvalues"] if members["emb.eigenvalues"].size
                             else None, meta["embedding"]["params"])
        state = {k[2:]: torch.from_numpy(v) for k, v in members.items() if k.startswith("w.")}
        arrays = {k[2:]: v for k, v in members.items() if k.startswith("x.")}
        architecture = meta["architecture"]
        if not isinstance(architecture, dict):
            raise ValueError("the architecture record is not a JSON object")
    except _NewerVersion as e:
        raise ValueError(str(e)) from None
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise ValueError(f"{path}: cannot read a labelemb model (truncated, corrupt, or "
                         f"another kind of file): {type(e).__name__}: {e}") from None
    model = build_model(architecture, emb, backbone)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: the saved weights do not fit the rebuilt network (pass the "
                         f"backbone it was trained with): {str(e).splitlines()[0]}") from None
    head = find_head(model)
    if hasattr(head, "prior_initialized"):
        head.prior_initialized = True  # the biases were trained; fit must not reset them
    model.eval()
    return ModelFile(model, emb, meta.get("settings", {}), architecture,
                     list(meta.get("history", [])), meta.get("extra", {}), arrays, meta)
