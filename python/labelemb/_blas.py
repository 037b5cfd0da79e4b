"""Hands the C++ core the BLAS/LAPACK routines that scipy already ships.

labelemb links no BLAS of its own. scipy exports its BLAS and LAPACK (Fortran calling
convention) through ``scipy.linalg.cython_blas`` / ``cython_lapack``; their addresses are
read from the capsules once at import and registered with the native module. When
scipy's BLAS is OpenBLAS, its thread controls are registered too, so that kernels can
run BLAS single-threaded inside their own OpenMP regions.
"""

from __future__ import annotations

import ctypes
import glob
import os

_BLAS = ("sgemm", "dgemm", "dsyrk", "dtrsm")
_LAPACK = ("dgeqrf", "dorgqr", "dsyevd", "dpotrf")
_info: dict = {}


def _capsule_address(capsule) -> int:
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return int(get_pointer(capsule, get_name(capsule)))


def _openblas_library():
    """The OpenBLAS shared library scipy loaded, or None."""
    import scipy

    base = os.path.dirname(scipy.__file__)
    patterns = [
        os.path.join(base + ".libs", "*openblas*"),  # scipy wheels (auditwheel)
        os.path.join(base, ".dylibs", "*openblas*"),  # macOS wheels
    ]
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                return path, ctypes.CDLL(path)
            except OSError:
                continue
    return None, None


def register(core) -> dict:
    """Register scipy's BLAS/LAPACK with ``core``; returns a description of what was found."""
    from scipy.linalg import cython_blas, cython_lapack

    ptrs = {name: _capsule_address(cython_blas.__pyx_capi__[name]) for name in _BLAS}
    ptrs.update({name: _capsule_address(cython_lapack.__pyx_capi__[name]) for name in _LAPACK})
    path, lib = _openblas_library()
    name = "scipy's BLAS (scipy.linalg.cython_blas)"
    if lib is not None:
        for key, symbols in (
            ("set_threads_local", ("openblas_set_num_threads_local",)),
            ("set_threads", ("scipy_openblas_set_num_threads", "openblas_set_num_threads")),
            ("get_threads", ("scipy_openblas_get_num_threads", "openblas_get_num_threads")),
        ):
            for sym in symbols:
                if hasattr(lib, sym):
                    ptrs[key] = ctypes.cast(getattr(lib, sym), ctypes.c_void_p).value
                    break
        for sym in ("scipy_openblas_get_config", "openblas_get_config"):
            if hasattr(lib, sym):
                fn = getattr(lib, sym)
                fn.restype = ctypes.c_char_p
                name = fn().decode() + f" ({os.path.basename(path)}, shipped with scipy)"
                break
    core._set_blas(ptrs)
    _info.update(name=name, thread_control="set_threads_local" in ptrs)
    return dict(_info)


def info() -> dict:
    return dict(_info)
