"""Reading ``.npz`` archives that may be damaged or forged, without trusting their headers.

``numpy.load`` allocates what each member's ``.npy`` header asks for before reading a byte
of data, so a 2 KB file whose header claims a 4 PiB array fails late (MemoryError) or
not at all, and damage surfaces as whichever exception the zip or zlib layer raises.
Here every member's header is checked against the bytes the archive can hold before
anything is allocated (an ``.npy`` member needs exactly ``header + prod(shape) x itemsize``
bytes, and a zip member cannot inflate past the deflate limit of its compressed size), and
every failure becomes one :class:`ValueError` that names the file.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from typing import Dict, Optional, Sequence

import numpy as np

# Deflate expands at most 1032:1; a member claiming more is forged.
_MAX_DEFLATE_RATIO = 1032
# The errors a damaged archive can raise from the zip, zlib, struct and numpy layers.
_DAMAGE = (ValueError, OSError, EOFError, KeyError, TypeError, NotImplementedError,
           RuntimeError, OverflowError, MemoryError, zipfile.BadZipFile, zlib.error,
           struct.error, UnicodeDecodeError)


def _read_header(fp, name: str):
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    else:
        raise ValueError(f"{name}: unsupported .npy version {version}")
    if dtype.hasobject:
        raise ValueError(f"{name}: holds Python objects (not read)")
    return shape, fortran, dtype, math.prod(shape) * dtype.itemsize


def _array(data: bytes, shape, fortran: bool, dtype) -> np.ndarray:
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy(
        order="K")


def read_npy(path, what: str) -> np.ndarray:
    """One ``.npy`` file, its header checked against the file's size before allocating.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Anything else wrong with the file, naming it.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        with open(path, "rb") as fp:
            shape, fortran, dtype, need = _read_header(fp, "the array")
            if fp.tell() + need != os.path.getsize(path):
                raise ValueError(f"the header asks for {need} bytes of {dtype} {shape}, but "
                                 f"the file holds {os.path.getsize(path) - fp.tell()}")
            data = fp.read(need)
        if len(data) != need:
            raise ValueError("truncated")
        return _array(data, shape, fortran, dtype)
    except _DAMAGE as e:
        raise _damaged(path, what, e) from None


def _member_array(zf: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> np.ndarray:
    """One ``.npy`` member, its header checked against the member's size (and that against
    the archive's ``size`` in bytes) first."""
    if info.compress_size > size:
        raise ValueError(f"member {info.filename}: claims {info.compress_size} bytes in a "
                         f"file of {size}")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise ValueError(f"member {info.filename}: stored sizes disagree")
    elif info.file_size > _MAX_DEFLATE_RATIO * max(info.compress_size, 1) + 1024:
        raise ValueError(f"member {info.filename}: claims {info.file_size} bytes from "
                         f"{info.compress_size} compressed")
    with zf.open(info) as fp:
        shape, fortran, dtype, need = _read_header(fp, f"member {info.filename}")
        header_len = fp.tell()
        if header_len + need != info.file_size:
            raise ValueError(f"member {info.filename}: header asks for {need} bytes of "
                             f"{dtype} {shape}, but the member holds "
                             f"{info.file_size - header_len}")
        data = fp.read(need)  # reading to the end checks the member's CRC
        if len(data) != need or fp.read(1):
            raise ValueError(f"member {info.filename}: truncated")
    return _array(data, shape, fortran, dtype)


def _damaged(path: str, what: str, e: BaseException) -> ValueError:
    reason = str(e) or type(e).__name__
    if isinstance(e, zipfile.BadZipFile):
        reason = f"not an .npz archive ({reason})"
    return ValueError(f"{path}: cannot read {what} (truncated, corrupt, or another kind of "
                      f"file): {reason}")


def _key(name: str) -> str:
    return name[:-4] if name.endswith(".npy") else name


def members(path, what: str) -> list:
    """The member names of an ``.npz`` archive (without ``.npy``); ValueError naming the
    file when it is not a readable zip archive."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        with zipfile.ZipFile(path) as zf:
            return [_key(i.filename) for i in zf.infolist()]
    except _DAMAGE as e:
        raise _damaged(path, what, e) from None


def read_npz(path, what: str, keys: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file, each checked before it is allocated.

    Parameters
    ----------
    path : str or os.PathLike
    what : str
        What the file should be, for messages (``"a LabelEmbedding"``).
    keys : sequence of str, optional
        Read only these members (all when None); a missing one is an error.

    Returns
    -------
    dict of str to ndarray

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        ``"<path>: cannot read <what> ...: <reason>"`` for anything else: not a zip
        archive, truncated, a CRC mismatch, a header larger than the data, object arrays,
        a missing member.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {_key(i.filename): i for i in zf.infolist()}
            wanted = list(infos) if keys is None else list(keys)
            missing = [k for k in wanted if k not in infos]
            if missing:
                raise ValueError(f"missing {missing}")
            size = os.path.getsize(path)
            return {k: _member_array(zf, infos[k], size) for k in wanted}
    except _DAMAGE as e:
        raise _damaged(path, what, e) from None


def load_sparse(path, what: str = "a sparse matrix"):
    """A ``scipy.sparse.save_npz`` file as a CSR matrix, checked like :func:`read_npz`.

    Raises
    ------
    ValueError
        Damage of any kind, an unknown format, or arrays that do not form a valid matrix.
    """
    import scipy.sparse as sp

    a = read_npz(path, what)
    try:
        fmt = a["format"].item()
        fmt = fmt.decode("ascii") if isinstance(fmt, bytes) else str(fmt)
        shape = tuple(int(x) for x in a["shape"])
        if len(shape) != 2 or min(shape) < 0:
            raise ValueError(f"shape {shape}")
        if fmt in ("csr", "csc", "bsr"):
            if fmt == "bsr":
                m = sp.bsr_matrix((a["data"], a["indices"], a["indptr"]), shape=shape)
            else:
                cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
                m = cls((a["data"], a["indices"], a["indptr"]), shape=shape)
            m.check_format(full_check=True)
        elif fmt == "coo":
            row, col = (a["row"], a["col"]) if "row" in a else a["coords"]
            m = sp.coo_matrix((a["data"], (row, col)), shape=shape)
        elif fmt == "dia":
            m = sp.dia_matrix((a["data"], a["offsets"]), shape=shape)
        else:
            raise ValueError(f"unknown sparse format {fmt!r}")
        return m.tocsr()
    except _DAMAGE as e:
        raise ValueError(f"{os.fspath(path)}: not a valid {what}: {e}") from None
