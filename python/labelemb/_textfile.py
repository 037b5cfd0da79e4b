"""Label text files, read one way everywhere: opening, decoding, separators, label ids.

Every reader of label text (:func:`labelemb.read_labels`, the readers of
:mod:`labelemb.formats`, the command line) goes through this module, so that a file reads
the same wherever it is read, and damage is reported as ``path:line``:

* Compression from the suffix (``.gz``, ``.bz2``, ``.xz``) or, without one, from the
  magic bytes. A truncated or corrupt stream is a ValueError naming the file.
* UTF-8. A leading byte-order mark is dropped (it would otherwise glue itself to the first
  label, and turn an id file into a names file); bytes that are not UTF-8 are a
  ValueError at ``path:line``.
* Separators: ``delimiter=None`` picks comma, tab, semicolon or whitespace from the
  first lines of the first file (:func:`detect_delimiter`); ``" "`` splits on any run of
  whitespace.
* Ids: ASCII digits only (``str.isdigit`` is true for ``"²"`` and ``"١"``, which ``int``
  refuses or reads as other numbers), below the index dtype's limit, else a ValueError at
  ``path:line``.
* A names file that was probably read with the wrong separator gets a
  :class:`LabelFileWarning` (:func:`misread_message`).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import zlib
from collections import Counter
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["LabelFileWarning", "detect_delimiter", "line_blocks", "lines"]

BLOCK_BYTES = 1 << 20  # decoded and split at once; a line longer than this still reads whole
SAMPLE_LINES = 1000  # non-empty lines that decide the separator and ids-or-names
INT64_MAX = int(np.iinfo(np.int64).max)

_SUFFIXES = ((".gz", "gzip"), (".bz2", "bz2"), (".xz", "xz"))
_OPENERS = {"gzip": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
            "bz2": lambda raw: bz2.BZ2File(raw, mode="rb"),
            "xz": lambda raw: lzma.LZMAFile(raw, mode="rb")}
_STREAM_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)
_BOM = b"\xef\xbb\xbf"
_NOT_DIGIT = re.compile(r"[^0-9\n]")
_ID_LIKE = re.compile(r"-?[0-9]+")

# Candidate separators besides whitespace, in the order that wins a tie: tabs and
# semicolons are rarer inside label names than commas are.
_CANDIDATES = ("\t", ";", ",")
_NAMES = {",": "commas", "\t": "tabs", ";": "semicolons", " ": "whitespace"}


class LabelFileWarning(UserWarning):
    """A label file was probably misread: the message says what was read and how to read
    it otherwise (filter it with ``warnings.simplefilter("ignore", LabelFileWarning)``)."""


# ------------------------------------------------------------------------ opening, decoding


def compression(path: str) -> Optional[str]:
    """"gzip", "bz2", "xz" or None: from the suffix, else from the first bytes."""
    for suffix, kind in _SUFFIXES:
        if path.endswith(suffix):
            return kind
    with open(path, "rb") as f:
        head = f.read(10)
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head[:3] == b"BZh" and head[4:10] == b"1AY&SY":
        return "bz2"
    return None


def line_blocks(path: str, block_bytes: int = BLOCK_BYTES
                ) -> Iterator[Tuple[int, List[str], int]]:
    """Blocks of decoded lines of a text file.

    Yields ``(lineno, lines, position)``: the 1-based number of the block's first line,
    its lines without their ends (``\\n`` or ``\\r\\n``), and how many bytes of the file
    on disk have been read so far (for progress in bytes). A final line end does not start
    an extra empty line.

    Raises
    ------
    ValueError
        ``"<path>:<line>: ..."`` for bytes that are not UTF-8, and ``"<path>: ..."`` for a
        truncated or corrupt compressed stream.
    """
    kind = compression(path)
    with open(path, "rb") as raw:
        stream = _OPENERS[kind](raw) if kind else raw
        with stream:
            lineno, carry, first = 1, [], True  # carry: the start of an unfinished line
            while True:
                try:
                    data = stream.read(block_bytes)
                except _STREAM_ERRORS as e:
                    if kind is None:
                        raise
                    where = f"after line {lineno - 1}" if lineno > 1 else "from its start"
                    raise ValueError(
                        f"{path}: the {kind} data is truncated or corrupt {where} "
                        f"({type(e).__name__}: {e}); compress the file again"
                    ) from None
                if data:
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        carry.append(data)
                        continue
                    block = b"".join(carry) + data[:cut + 1] if carry else data[:cut + 1]
                    carry = [data[cut + 1:]]
                else:
                    block, carry = b"".join(carry), []
                    if not block:
                        return
                if first:
                    first = False
                    if block.startswith(_BOM):
                        block = block[len(_BOM):]
                text = _decode(block, path, lineno)
                lines = text.split("\n")
                if text.endswith("\n") or not text:
                    lines.pop()
                if "\r" in text:
                    lines = [s[:-1] if s.endswith("\r") else s for s in lines]
                yield lineno, lines, raw.tell()
                lineno += len(lines)
                if not data:
                    return


def _decode(block: bytes, path: str, lineno: int) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as e:
        where = lineno + block.count(b"\n", 0, e.start)
        start = block.rfind(b"\n", 0, e.start) + 1
        raise ValueError(
            f"{path}:{where}: not UTF-8 text (byte 0x{block[e.start]:02x} at column "
            f"{e.start - start + 1}); save the file as UTF-8"
        ) from None


def lines(path: str) -> Iterator[Tuple[int, str]]:
    """``(lineno, line)`` for every line of a text file (see :func:`line_blocks`)."""
    for lineno, block, _ in line_blocks(path):
        yield from enumerate(block, lineno)


def sample(paths: Sequence[str], n: int = SAMPLE_LINES) -> Tuple[Optional[str], List[str]]:
    """The first ``n`` non-empty lines of the first of ``paths`` that has any, and its path."""
    for path in paths:
        got: List[str] = []
        for _, block, _ in line_blocks(path, 1 << 16):
            got.extend(s for s in block if s.strip())
            if len(got) >= n:
                return path, got[:n]
        if got:
            return path, got
    return None, []


# ------------------------------------------------------------------------ separators, tokens


def check_delimiter(delimiter) -> None:
    """TypeError/ValueError unless ``delimiter`` is None or a usable separator."""
    if delimiter is None:
        return
    if not isinstance(delimiter, str):
        raise TypeError(f"delimiter must be a str or None, got {type(delimiter).__name__}")
    if not delimiter or "\n" in delimiter or "\r" in delimiter:
        raise ValueError(f"delimiter must be a non-empty string without line breaks (or None "
                         f"to detect it), got {delimiter!r}")


def detect_delimiter(sample_lines: Iterable[str]) -> str:
    """The separator of a label file from its first lines.

    The candidate (tab, semicolon, comma) found in the most lines wins, ties going in
    that order; if none occurs, whitespace (``" "``) when some line holds several
    whitespace-separated words; else ``","`` (one label per line: any choice reads the
    same).
    """
    nonempty = [s.strip() for s in sample_lines if s.strip()]  # an indent separates nothing
    best, best_n = None, 0
    for c in _CANDIDATES:
        n = sum(1 for s in nonempty if c in s)
        if n > best_n:
            best, best_n = c, n
    if best is not None:
        return best
    if any(len(s.split()) > 1 for s in nonempty):
        return " "
    return ","


def describe(delimiter: str) -> str:
    """How a separator is named in messages: ``commas``, ``whitespace``, ``'|'``."""
    return _NAMES.get(delimiter, repr(delimiter))


def split(line: str, delimiter: str) -> List[str]:
    """The labels of one line. ``" "``: any run of whitespace; another whitespace
    separator: repeats collapse; else every field, stripped (an empty field stays, for
    the caller to report)."""
    if delimiter == " ":
        return line.split()
    if delimiter.isspace():
        return [t.strip() for t in line.split(delimiter) if t.strip()]
    if not line.strip():
        return []
    return [t.strip() for t in line.split(delimiter)]


def empty_label(path: str, lineno: int, line: str, delimiter: str) -> ValueError:
    return ValueError(f"{path}:{lineno}: empty label in {line[:80]!r} (two {describe(delimiter)}"
                      " in a row, or one at an end of the line); remove it")


def guess_kind(token_lists: Iterable[Sequence[str]]) -> Optional[str]:
    """"ids" when every label looks like an integer, "names" otherwise, None when there is
    no label. (Negative integers count as ids, so that they are reported, not silently
    read as names.)"""
    seen = False
    for toks in token_lists:
        for t in toks:
            if not _ID_LIKE.fullmatch(t):
                return "names"
            seen = True
    return "ids" if seen else None


def is_id(token: str) -> bool:
    """A non-negative integer written in ASCII digits."""
    return token.isascii() and token.isdigit()


def bad_id(token: str, path: str, lineno: int, limit: int = INT64_MAX) -> Optional[ValueError]:
    """The error for a token that is not an id in ``[0, limit)``, or None."""
    if not is_id(token):
        if _ID_LIKE.fullmatch(token):
            return ValueError(f"{path}:{lineno}: negative label id {token}; ids start at 0")
        return ValueError(f"{path}:{lineno}: label {token[:40]!r} is not an integer id (ASCII "
                          "digits); pass labels='names' (ids=False) if the file holds names")
    if len(token.lstrip("0")) > 20 or int(token) >= limit:  # no 4300-digit int() limit
        return ValueError(f"{path}:{lineno}: label id {token[:40]} is too large (ids must be "
                          f"below {limit})")
    return None


def parse_ids(lines_tokens: Sequence[Sequence[str]], path: str, first_lineno: int,
              limit: int = INT64_MAX) -> np.ndarray:
    """The ids of a block of token lists, flattened, as int64 (every check done at C speed
    when all is well; the first bad token is reported at ``path:line`` otherwise)."""
    flat = [t for toks in lines_tokens for t in toks]
    if not flat:
        return np.zeros(0, dtype=np.int64)
    joined = "\n".join(flat)
    if joined.isascii() and not _NOT_DIGIT.search(joined) and \
            max(map(len, flat)) <= 18:  # below 10^18 < 2^63: no overflow possible
        ids = np.array(flat, dtype=np.int64)
        if limit > INT64_MAX or not len(ids) or int(ids.max()) < limit:
            return ids
    for k, toks in enumerate(lines_tokens):
        for t in toks:
            err = bad_id(t, path, first_lineno + k, limit)
            if err is not None:
                raise err
    return np.array([int(t) for t in flat], dtype=np.int64)


# Adjacent events on a line that make it invalid for a one-character delimiter: two
# numbers with no delimiter between, and an empty field (two delimiters, or one at an end).
# Events: 1 a number starts, 2 a delimiter, 3 a line ends (or the text starts/ends).
_BAD_PAIRS = np.zeros(16, dtype=bool)
_BAD_PAIRS[[1 * 4 + 1, 2 * 4 + 2, 3 * 4 + 2, 2 * 4 + 3]] = True
_BAD_PAIRS_WS = np.zeros(16, dtype=bool)  # a whitespace delimiter: repeats are one
_BAD_PAIRS_WS[1 * 4 + 1] = True


def fast_ids(block: List[str], delimiter: str) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """``(labels per line, ids)`` of a block of id lines, parsed on the bytes with numpy
    (several times faster than splitting each line), or None when the block holds
    anything else (non-ASCII, another character, an empty field, a number of 19 digits
    or more): the caller then parses it token by token and reports the exact error."""
    if not block:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    text = "\n".join(block)
    if not text.isascii() or (len(delimiter) != 1 and delimiter != " "):
        return None
    b = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    digit = (b - np.uint8(48)) < 10  # wraps below "0"
    newline = b == 10
    # What str.split() and str.strip() take for whitespace in ASCII, but the newline.
    white = (b == 32) | (((b - np.uint8(9)) < 5) & ~newline) | ((b - np.uint8(28)) < 4)
    sep = white if delimiter == " " else (b == ord(delimiter))
    if not (digit | newline | white | sep).all():
        return None
    start = digit.copy()
    start[1:] &= ~digit[:-1]
    end = digit.copy()
    end[:-1] &= ~digit[1:]
    if delimiter != " ":
        events = np.flatnonzero(start | sep | newline)
        code = np.where(start[events], 1, np.where(sep[events], 2, 3))
        code = np.concatenate(([3], code, [3]))
        bad = _BAD_PAIRS_WS if delimiter.isspace() else _BAD_PAIRS
        if bad[code[:-1] * 4 + code[1:]].any():
            return None
    first = np.flatnonzero(start)
    length = np.flatnonzero(end) - first + 1
    longest = int(length.max()) if len(length) else 0
    if longest > 18:  # 10^18 < 2^63: no overflow below
        return None
    ids = np.zeros(len(first), dtype=np.int64)
    for k in range(longest):  # Horner's rule, one digit of every number at a time
        more = length > k
        d = b[first + np.minimum(k, length - 1)].astype(np.int64) - 48
        ids = np.where(more, ids * 10 + d, ids)
    line = np.searchsorted(np.flatnonzero(newline), first)  # newlines before each number
    counts = np.bincount(line, minlength=len(block)).astype(np.int64)
    return counts, ids


# ------------------------------------------------------------------------ misreads


def _separators_in(name: str, delimiter: str) -> List[str]:
    found = [c for c in _CANDIDATES if c != delimiter and c in name]
    if delimiter != " " and any(ch.isspace() for ch in name):
        found.append(" ")
    return found


def misread_message(path: str, delimiter: str, detected: bool,
                    sample_tokens: Sequence[Sequence[str]],
                    counts: Optional[Tuple[int, int, str]] = None) -> Optional[str]:
    """Why a file read as label names was probably misread, or None.

    Two signs. (1) In the sampled lines most lines hold one label and most distinct names
    contain whitespace or another candidate separator: the separator is likely wrong.
    (2) ``counts = (n_labels, n_once, example)``: of at least 100 distinct names, 90% or
    more occur exactly once (real label sets repeat their labels: WordNet hypernyms and
    Debian dependencies have a third to a half of their labels once): each line was
    likely read as one label.
    """
    how = f"{'detected' if detected else 'given'} separator: {describe(delimiter)}"
    nonempty = [toks for toks in sample_tokens if toks]
    names = {t for toks in nonempty for t in toks}
    if nonempty and names:
        single = sum(1 for toks in nonempty if len(toks) == 1)
        with_sep = [n for n in names if _separators_in(n, delimiter)]
        if 2 * single >= len(nonempty) and 2 * len(with_sep) > len(names):
            example = max(with_sep, key=len)
            seps = Counter(c for n in with_sep for c in _separators_in(n, delimiter))
            sep = seps.most_common(1)[0][0]
            return (f"{path}: read as label names ({how}), but most lines hold one label "
                    f"that contains {describe(sep)}, such as {example[:60]!r}; if the labels "
                    f"are separated by {describe(sep)}, pass delimiter={sep!r}")
    if counts is not None:
        n_labels, n_once, example = counts
        if n_labels >= 100 and 10 * n_once >= 9 * n_labels:
            return (f"{path}: read as label names ({how}), but {n_once} of the {n_labels} "
                    f"names occur only once, such as {example[:60]!r}: each line was probably "
                    "read as one label; pass the separator of the file as delimiter=, or "
                    "labels='ids' for integer ids")
    return None


def once_counts(counter: Counter) -> Tuple[int, int, str]:
    """``(n_labels, n_once, an example)`` from a Counter of names."""
    n_once, example = 0, ""
    for name, c in counter.items():
        if c == 1:
            n_once += 1
            example = example or name
    return len(counter), n_once, example
