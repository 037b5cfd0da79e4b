"""Argument checks shared by every public entry point.

One exception policy: a value of the wrong *type* (a ``str`` where an ``int`` is expected,
``True`` for a count, a list for a path) raises :class:`TypeError`; a value of the right type
that is out of range or not allowed (``0`` epochs, NaN, an unknown option) raises
:class:`ValueError`. Every message starts with the argument's name and says what is accepted.
Each check returns the value converted to the plain Python type (``np.int64(3)`` -> ``3``).

Examples
--------
>>> from labelemb._validation import check_int, check_float, check_choice
>>> check_int(3, "dim", lo=1)
3
>>> check_int("3", "dim", lo=1)
Traceback (most recent call last):
...
TypeError: dim must be an int, got str
>>> check_float(float("nan"), "lr", lo=0.0, lo_open=True)
Traceback (most recent call last):
...
ValueError: lr must be a finite number, got nan
>>> check_choice("adam", "optimizer", ("adamw", "sgd"))
Traceback (most recent call last):
...
ValueError: optimizer must be one of ('adamw', 'sgd'), got 'adam'
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Collection, Optional

__all__ = ["check_bool", "check_choice", "check_float", "check_int", "check_k", "check_path",
           "check_threads"]


def _bounds(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    return f"{'<' if hi_open else '<='} {hi}"


def check_int(value, name: str, *, lo: Optional[int] = None, hi: Optional[int] = None,
              hint: str = "") -> int:
    """``value`` as an ``int`` in ``[lo, hi]`` (either bound may be None).

    Parameters
    ----------
    value : object
        The argument; any integral type (``int``, ``np.int64``) but not ``bool``.
    name : str
        The argument's name, first word of every message.
    lo, hi : int, optional
        Inclusive bounds.
    hint : str
        Appended to the message after the accepted range, e.g. ``" (0 = all cores)"``.

    Raises
    ------
    TypeError
        ``value`` is not an integer (a ``bool``, ``float`` or ``str`` included).
    ValueError
        ``value`` is outside ``[lo, hi]``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int{hint}, got {type(value).__name__}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be {_bounds(lo, hi)}{hint}, got {value}")
    return value


def check_float(value, name: str, *, lo: Optional[float] = None, hi: Optional[float] = None,
                lo_open: bool = False, hi_open: bool = False, finite: bool = True,
                hint: str = "") -> float:
    """``value`` as a ``float`` in the interval given by ``lo``/``hi``.

    Parameters
    ----------
    value : object
        Any real number (``int``, ``float``, numpy scalar) but not ``bool``.
    name : str
        The argument's name.
    lo, hi : float, optional
        Bounds of the interval; ``lo_open`` / ``hi_open`` exclude them.
    finite : bool
        Refuse NaN and +-Inf (the default). With ``finite=False`` only NaN is refused, so an
        infinite bound such as ``max_memory=inf`` can be given.
    hint : str
        Appended to the message after the accepted range.

    Raises
    ------
    TypeError
        ``value`` is not a real number.
    ValueError
        ``value`` is NaN, infinite (with ``finite=True``) or outside the interval.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number{hint}, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number{hint}, got {value}")
    if ((lo is not None and (value < lo or (lo_open and value == lo)))
            or (hi is not None and (value > hi or (hi_open and value == hi)))):
        raise ValueError(f"{name} must be {_bounds(lo, hi, lo_open, hi_open)}{hint}, "
                         f"got {value}")
    return value


def check_bool(value, name: str) -> bool:
    """``value`` as a ``bool``; a ``TypeError`` for anything but ``True``/``False``
    (numpy booleans included), so that ``"no"`` is never read as true."""
    if value is True or value is False or type(value).__name__ == "bool_":
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def check_choice(value, name: str, options: Collection):
    """``value`` if it is one of ``options``, else a ``ValueError`` listing them."""
    try:
        ok = value in options
    except TypeError:  # an unhashable value against a set or dict
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value


def check_path(value, name: str, *, exists: bool = False) -> str:
    """``value`` (a ``str`` or ``os.PathLike``) as a ``str`` path.

    With ``exists=True`` a missing file or folder is a ``ValueError`` naming the path.
    """
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got "
                        f"{type(value).__name__}")
    path = os.fspath(value)
    if not path:
        raise ValueError(f"{name} must be a path, got an empty string")
    if exists and not os.path.exists(path):
        raise ValueError(f"{name}: {path} does not exist")
    return path


def check_k(k, n: Optional[int] = None, of: str = "") -> int:
    """A number of top results ``k``: an int in ``[1, n]``, where ``n`` (described by ``of``,
    e.g. ``"the number of labels"``) is how many there are to rank."""
    return check_int(k, "k", lo=1, hi=n, hint=f" ({of})" if of and n is not None else "")


def check_threads(num_threads, name: str = "num_threads") -> int:
    """A thread count: an ``int`` in ``[0, limit]``, where 0 means all cores and the limit
    is the kernels' own (``labelemb._core.thread_limit()``: 4 x the cores, at least 64), so
    that a huge count fails here, before any work, with the same bound."""
    from . import _core

    return check_int(num_threads, name, lo=0, hi=_core.thread_limit(),
                     hint=" (0 = all cores; at most 4 x the cores, or 64)")
