#!/usr/bin/env python3
"""Rebuild the embedded multi-label image data set ``openclipart32.npz``.

The data set is derived from the Debian package ``openclipart-svg`` (public-domain
clip art from Openclipart). It is not installed with the package; run it by hand::

    python scripts/build_openclipart.py --workdir /tmp/openclipart-work

Steps
-----
1. ``apt-get download openclipart-svg`` into ``--workdir`` (or reuse ``--deb``),
   then ``dpkg-deb -x`` it into ``<workdir>/extract``.
2. For every ``*.svg`` under ``usr/share/openclipart/svg/``:

   * labels: the lower-cased ``<rdf:li>`` keywords inside ``<dc:subject>`` plus the
     lower-cased folder components of its path below ``svg/``;
   * pixels: rasterised with cairosvg (no network or file access: ``unsafe=False``),
     cropped to the visible (non-transparent) content, composited onto white, padded
     to a square and box-downsampled to ``--size`` x ``--size`` RGB. Files that fail to
     render, time out (``--timeout`` seconds each) or render fully blank are skipped
     and counted.

3. Labels seen on fewer than ``--min-count`` images are dropped, then images left
   with no label.
4. Groups ("icon sets") and a deterministic group split, see :func:`group_of` and
   :func:`split_groups`.
5. One ``.npz`` file is written atomically (see :func:`write_npz`: LZMA members by
   default, because the 32x32 RGB images take ~6 MB with ``np.savez_compressed``'s
   deflate but must stay under 5 MB; ``--compression deflate`` gives the plain format).

Only numpy, Pillow and cairosvg are needed (``pip install cairosvg tqdm``).
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import glob
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from multiprocessing import Pool

import numpy as np

SCRIPT_VERSION = "1.0"
PACKAGE = "openclipart-svg"
SVG_ROOT = os.path.join("usr", "share", "openclipart", "svg")
SPLIT_SALT = "labelemb-openclipart32-split-v1"
GROUP_DEPTH = 3

DC = "{http://purl.org/dc/elements/1.1/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_SUBJECT_RE = re.compile(rb"<dc:subject\b.*?</dc:subject>", re.S)
_LI_RE = re.compile(rb"<rdf:li\b[^>]*>(.*?)</rdf:li>", re.S)
_ENTITY_RE = re.compile(rb"<!ENTITY\s+([A-Za-z_][\w.-]*)\s+(\"[^\"]*\"|'[^']*')\s*>")
_DOCTYPE_RE = re.compile(rb"<!DOCTYPE[^\[>]*(\[.*?\])?\s*>", re.S)
_PCT_OPACITY_RE = re.compile(rb"(opacity\s*[:=]\s*[\"']?\s*)([0-9]*\.?[0-9]+)\s*%")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(
    REPO_ROOT, "python", "labelemb", "datasets", "data", "openclipart32.npz"
)


# --------------------------------------------------------------------------- labels


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def svg_keywords(data: bytes) -> list[str]:
    """Lower-cased ``<rdf:li>`` keywords inside ``<dc:subject>`` (document order, unique)."""
    words: list[str] = []
    try:
        root = ET.fromstring(data)
        for subject in root.iter(DC + "subject"):
            for li in subject.iter(RDF + "li"):
                words.append("".join(li.itertext()))
    except ET.ParseError:
        # Fallback for files that are not well-formed XML: plain pattern match.
        import html

        for block in _SUBJECT_RE.findall(data):
            for raw in _LI_RE.findall(block):
                words.append(html.unescape(raw.decode("utf-8", "replace")))
    out: list[str] = []
    for w in words:
        w = _norm(w)
        if w and w not in out:
            out.append(w)
    return out


def folder_labels(rel_path: str) -> list[str]:
    """Lower-cased folder components of a path relative to ``svg/``."""
    return [c.lower() for c in rel_path.split("/")[:-1] if c]


def group_of(rel_path: str) -> str:
    """Icon-set group of an SVG: its folder, truncated to the first three components.

    Looking at the package: the deep folders are style or region variants of one set,
    e.g. ``recreation/games/cards/{bordered,ornamental,simple,white}`` hold the same 54
    cards in four styles, and ``computer/icons/lemon-theme/{actions,apps,...}`` are one
    icon theme drawn by one hand; ``signs_and_symbols/flags/europe/{france,spain,...}``
    are regional flags of one style. Truncating at depth 3 puts each of these sets in
    one group, while keeping unrelated shallow folders (``animals/mammals/bears``,
    ``shapes/stars``) separate. Files at the top level keep their one-component folder.
    """
    parts = rel_path.split("/")[:-1]
    return "/".join(parts[:GROUP_DEPTH]) if parts else "."


# ------------------------------------------------------------------------ rendering


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # pragma: no cover - signal handler
    raise _Timeout()


def _fix_percent_opacity(data: bytes) -> bytes:
    """``opacity="100%"`` is valid CSS but crashes cairosvg: rewrite it as a number."""

    def repl(m):
        return m.group(1) + (b"%g" % (float(m.group(2)) / 100.0))

    return _PCT_OPACITY_RE.sub(repl, data)


def _expand_internal_entities(data: bytes) -> bytes:
    """Inline internal ``<!ENTITY name "value">`` declarations and drop the DOCTYPE.

    Illustrator exports declare namespace URIs as internal entities (``&ns_svg;``);
    cairosvg refuses all entities when ``unsafe=False``. Only literal internal values
    are substituted, external entities are never resolved.
    """
    if b"<!ENTITY" not in data:
        return data
    m = _DOCTYPE_RE.search(data)
    if not m:
        return data
    entities = {name: value[1:-1] for name, value in _ENTITY_RE.findall(m.group(0))}
    body = data[: m.start()] + data[m.end() :]
    for name, value in entities.items():
        body = body.replace(b"&" + name + b";", value)
    return body


def _render_rgba(data: bytes, size: int) -> np.ndarray:
    import cairosvg
    from PIL import Image

    png = cairosvg.svg2png(
        bytestring=data,
        output_width=size,
        output_height=size,
        parent_width=size,
        parent_height=size,
        unsafe=False,  # no external files, entities or network: data: URLs only
    )
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0


def rasterise(data: bytes, size: int, base: int = 96, max_scale: int = 8) -> np.ndarray | None:
    """Render an SVG to a ``(size, size, 3)`` uint8 RGB array on white.

    The page is rendered at ``base`` pixels (aspect ratio kept, centred), cropped to
    the bounding box of pixels with alpha >= 8/255, re-rendered larger when the content
    is small, composited onto white, padded to a square and box-downsampled.
    Returns None for blank renders.
    """
    from PIL import Image

    data = _fix_percent_opacity(_expand_internal_entities(data))
    rgba = _render_rgba(data, base)
    mask = rgba[..., 3] >= 8 / 255
    if not mask.any():
        return None
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    side = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    scale = int(min(max_scale, max(1, int(np.ceil(2 * size / side)))))
    if scale > 1:
        rgba = _render_rgba(data, base * scale)
        mask = rgba[..., 3] >= 8 / 255
        if not mask.any():
            return None
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    rgba = rgba[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    alpha = rgba[..., 3:4]
    rgb = rgba[..., :3] * alpha + (1.0 - alpha)  # straight alpha over white
    h, w = rgb.shape[:2]
    n = max(h, w)
    canvas = np.ones((n, n, 3), dtype=np.float32)
    top, left = (n - h) // 2, (n - w) // 2
    canvas[top : top + h, left : left + w] = rgb
    img = Image.fromarray(np.round(canvas * 255).astype(np.uint8), "RGB")
    img = img.resize((size, size), Image.Resampling.BOX)
    out = np.asarray(img, dtype=np.uint8)
    if out.min() >= 250:  # nothing visible at this resolution
        return None
    return out


def _work(task):
    path, rel, size, timeout = task
    with open(path, "rb") as fh:
        data = fh.read()
    keywords = svg_keywords(data)
    digest = hashlib.sha256(data).hexdigest()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    t0 = time.perf_counter()
    try:
        pixels = rasterise(data, size)
        status = "ok" if pixels is not None else "blank"
    except _Timeout:
        pixels, status = None, "timeout"
    except Exception as exc:  # noqa: BLE001 - any renderer failure is counted, not fatal
        pixels, status = None, f"error: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return rel, keywords, digest, pixels, status, time.perf_counter() - t0


# ------------------------------------------------------------------------- groups


def duplicate_aware_groups(rels, digests, images, near_rms: float) -> list[str]:
    """Folder groups (:func:`group_of`), with copies of one artwork moved together.

    The package files the same drawing under several folders (``animals/fish`` and
    ``animals/mammals`` both hold ``dolphin_01.svg``; 8,121 files render to ~6,800
    distinct images). Files are linked when their bytes are equal, their 32x32 pixels
    are equal, or they share a file name and their pixels differ by an RMS of at most
    ``near_rms`` (re-saved copies). Same-name files that look different, such as
    ``filesave.svg`` in two icon themes, stay apart, and so do unrelated drawings that
    merely look alike at 32x32 (line art on white). Every linked component takes the
    group of its first file in path order, so no artwork is on both sides of the split.
    """
    parent = list(range(len(rels)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i, j):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)  # root = first file in path order

    by_key: dict = collections.defaultdict(list)
    for i, (d, img) in enumerate(zip(digests, images)):
        by_key["file:" + d].append(i)
        by_key["pix:" + hashlib.sha256(img.tobytes()).hexdigest()].append(i)
    for members in by_key.values():
        for j in members[1:]:
            union(members[0], j)
    by_name = collections.defaultdict(list)
    for i, rel in enumerate(rels):
        by_name[rel.rsplit("/", 1)[-1].lower()].append(i)
    for members in by_name.values():
        for a in range(len(members)):
            x = images[members[a]].astype(np.float32) / 255.0
            for b in range(a + 1, len(members)):
                y = images[members[b]].astype(np.float32) / 255.0
                if float(np.sqrt(np.mean((x - y) ** 2))) <= near_rms:
                    union(members[a], members[b])
    return [group_of(rels[find(i)]) for i in range(len(rels))]


# -------------------------------------------------------------------------- split


def _hash01(name: str) -> float:
    h = hashlib.sha256(f"{SPLIT_SALT}:{name}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def split_groups(sizes: dict[str, int], test_fraction: float, max_group_fraction: float):
    """Choose test groups deterministically.

    Groups are visited in the order of a salted SHA-256 of their name; a group goes to
    test when it fits in the remaining test budget (``test_fraction`` of all images)
    and is not larger than ``max_group_fraction`` of all images (one huge near-duplicate
    set such as ``shapes/stars`` would otherwise make up most of the test part).
    """
    total = sum(sizes.values())
    budget = int(round(test_fraction * total))
    limit = max_group_fraction * total
    test, used = set(), 0
    for name in sorted(sizes, key=lambda g: (_hash01(g), g)):
        s = sizes[name]
        if s <= limit and used + s <= budget:
            test.add(name)
            used += s
    return test


# --------------------------------------------------------------------------- driver


def _run(cmd, cwd=None):
    print("+", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def obtain_deb(workdir: str, deb: str | None) -> str:
    if deb:
        return os.path.abspath(deb)
    found = sorted(glob.glob(os.path.join(workdir, f"{PACKAGE}_*_all.deb")))
    if not found:
        _run(["apt-get", "download", PACKAGE], cwd=workdir)
        found = sorted(glob.glob(os.path.join(workdir, f"{PACKAGE}_*_all.deb")))
    if not found:
        raise SystemExit(f"no {PACKAGE} .deb in {workdir}; run: apt-get update")
    return found[-1]


def write_npz(path: str, arrays: dict, compression: str) -> None:
    """Write an ``.npz`` that ``np.load`` reads.

    ``deflate`` is ``np.savez_compressed``. ``lzma`` writes the same zip-of-``.npy``
    layout with ZIP_LZMA members (zipfile and np.load read them through the standard
    ``lzma`` module): the icon sets repeat drawings further apart than deflate's 32 KiB
    window, and 32x32 RGB fits in ~3.9 MB instead of ~6 MB. Members carry a fixed
    timestamp so equal arrays give an equal file.
    """
    import zipfile

    if compression == "deflate":
        np.savez_compressed(path, **arrays)
        return
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_LZMA) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_LZMA
            info.external_attr = 0o644 << 16
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
            zf.writestr(info, buf.getvalue())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", required=True, help="scratch dir (download + extraction)")
    ap.add_argument("--deb", help="use this openclipart-svg .deb instead of downloading")
    ap.add_argument("--output", default=DEFAULT_OUTPUT)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--max-test-group-fraction", type=float, default=0.05)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per SVG")
    ap.add_argument(
        "--near-duplicate-rms",
        type=float,
        default=0.06,
        help="same-name files closer than this RMS (pixels in [0,1]) share a group",
    )
    ap.add_argument(
        "--compression",
        choices=("lzma", "deflate"),
        default="lzma",
        help="zip member compression; deflate = exactly np.savez_compressed",
    )
    ap.add_argument("--limit", type=int, default=0, help="debug: only the first N SVGs")
    args = ap.parse_args(argv)

    os.makedirs(args.workdir, exist_ok=True)
    deb = obtain_deb(args.workdir, args.deb)
    fields = _run(["dpkg-deb", "-f", deb, "Package", "Version"])
    info = dict(line.split(": ", 1) for line in fields.strip().splitlines())
    with open(deb, "rb") as fh:
        deb_sha256 = hashlib.sha256(fh.read()).hexdigest()
    extract = os.path.join(args.workdir, "extract")
    shutil.rmtree(extract, ignore_errors=True)
    _run(["dpkg-deb", "-x", deb, extract])
    svg_root = os.path.join(extract, SVG_ROOT)

    paths = []
    for dirpath, dirnames, filenames in os.walk(svg_root):
        dirnames.sort()
        for fn in filenames:
            if fn.lower().endswith(".svg"):
                full = os.path.join(dirpath, fn)
                paths.append((os.path.relpath(full, svg_root).replace(os.sep, "/"), full))
    paths.sort()
    if args.limit:
        paths = paths[: args.limit]
    tasks = [(full, rel, args.size, args.timeout) for rel, full in paths]
    print(f"{len(tasks)} SVG files", file=sys.stderr)

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover

        def tqdm(it, **kw):
            return it

    results = {}
    with Pool(args.processes, maxtasksperchild=200) as pool:
        for res in tqdm(pool.imap_unordered(_work, tasks, chunksize=4), total=len(tasks)):
            results[res[0]] = res
    status = collections.Counter(r[4].split(":")[0] for r in results.values())
    failures = {rel: r[4] for rel, r in results.items() if r[4] not in ("ok",)}
    slow = sorted(((r[5], rel) for rel, r in results.items()), reverse=True)[:5]
    print("status:", dict(status), "slowest:", slow, file=sys.stderr)

    rels, images, labelsets, digests = [], [], [], []
    for rel, _full in paths:
        _, keywords, digest, pixels, st, _ = results[rel]
        if pixels is None:
            continue
        rels.append(rel)
        images.append(pixels)
        labelsets.append(set(keywords) | set(folder_labels(rel)))
        digests.append(digest)
    n_rendered = len(rels)
    groups = duplicate_aware_groups(rels, digests, images, args.near_duplicate_rms)
    n_dup_moved = sum(g != group_of(r) for r, g in zip(rels, groups))

    counts = collections.Counter(lab for s in labelsets for lab in s)
    label_names = sorted(lab for lab, c in counts.items() if c >= args.min_count)
    label_index = {lab: i for i, lab in enumerate(label_names)}
    keep = [i for i, s in enumerate(labelsets) if any(lab in label_index for lab in s)]
    indptr = [0]
    indices: list[int] = []
    for i in keep:
        row = sorted(label_index[lab] for lab in labelsets[i] if lab in label_index)
        indices.extend(row)
        indptr.append(len(indices))
    rels = [rels[i] for i in keep]
    images_arr = np.stack([images[i] for i in keep]).astype(np.uint8)
    groups = [groups[i] for i in keep]
    group_names = sorted(set(groups))
    gidx = {g: i for i, g in enumerate(group_names)}
    group_arr = np.array([gidx[g] for g in groups], dtype=np.int32)
    sizes = collections.Counter(groups)
    test_groups = split_groups(sizes, args.test_fraction, args.max_test_group_fraction)
    is_test = np.array([g in test_groups for g in groups], dtype=bool)

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = (
        _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc)
        if epoch
        else _dt.datetime.now(_dt.timezone.utc)
    )
    stats = {
        "svg_files": len(paths),
        "rendered": n_rendered,
        "render_status": dict(status),
        "failed_files": dict(sorted(failures.items())),
        "duplicates_regrouped": n_dup_moved,
        "images": len(keep),
        "labels": len(label_names),
        "labels_per_image": round(len(indices) / max(1, len(keep)), 4),
        "groups": len(group_names),
        "test_groups": len(test_groups),
        "test_fraction": round(float(is_test.mean()), 4),
    }
    command = "python scripts/build_openclipart.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:])
    )
    out = {
        "images": images_arr,
        "label_indptr": np.asarray(indptr, dtype=np.int64),
        "label_indices": np.asarray(indices, dtype=np.int32),
        "label_names": np.asarray(label_names, dtype=str),
        "group": group_arr,
        "group_names": np.asarray(group_names, dtype=str),
        "is_test": is_test,
        "paths": np.asarray(rels, dtype=str),
        "source_package": np.asarray(info["Package"]),
        "source_version": np.asarray(info["Version"]),
        "source_sha256": np.asarray(deb_sha256),
        "upstream": np.asarray("Openclipart (https://openclipart.org), public domain"),
        "license": np.asarray("Public domain (Openclipart public-domain dedication)"),
        "build_date": np.asarray(now.strftime("%Y-%m-%dT%H:%M:%SZ")),
        "script_version": np.asarray(SCRIPT_VERSION),
        "build_command": np.asarray(command),
        "build_stats": np.asarray(json.dumps(stats, sort_keys=True)),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=os.path.dirname(os.path.abspath(args.output)))
    os.close(fd)
    try:
        write_npz(tmp, out, args.compression)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, args.output)
    except BaseException:
        os.unlink(tmp)
        raise
    stats.pop("failed_files")
    print(json.dumps(stats, indent=1), file=sys.stderr)
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 1e6:.2f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
