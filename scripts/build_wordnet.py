#!/usr/bin/env python3
"""Rebuild the embedded WordNet 3.0 noun data set ``wordnet30.npz`` and its licence file.

The data set is derived from the Debian package ``wordnet-base`` (WordNet 3.0,
Princeton University). Run it by hand on a Debian/Ubuntu machine::

    apt-get update
    python scripts/build_wordnet.py --workdir /tmp/wordnet-work

Steps
-----
1. ``apt-get download wordnet-base`` into ``--workdir`` (a ``wordnet-base_*.deb``
   already there is reused), ``dpkg-deb -x`` it into a temporary folder.
2. ``usr/share/wordnet/data.noun`` gives every noun synset: offset, lemmas, gloss and
   its direct hypernyms (``@`` and ``@i`` pointers); ``index.noun`` gives the sense
   numbers of the NLTK-style names (``dog.n.01``). See
   :func:`labelemb.datasets.wordnet.build_wordnet`.
3. The arrays are written with LZMA members (:func:`write_wordnet_file`) to
   ``python/labelemb/datasets/data/wordnet30.npz``; the ancestors (the labels), the
   texts and the lemma groups are derived from them at load time.
4. The WordNet 3.0 licence paragraph of the package's
   ``usr/share/doc/wordnet-base/copyright`` is written beside it as
   ``wordnet30-LICENSE.txt``: the licence requires the notice on every copy.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile

import numpy as np

from labelemb.datasets import _debian, wordnet

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "python", "labelemb", "datasets", "data")
COPYRIGHT = os.path.join("usr", "share", "doc", "wordnet-base", "copyright")


def licence_text(copyright_path: str, version: str) -> str:
    """The ``License: WordNet3.0`` paragraph of a Debian copyright file, as plain text."""
    with open(copyright_path, encoding="utf-8") as fh:
        text = fh.read()
    match = re.search(r"^License: WordNet3\.0\n((?: .*\n?)+)", text, re.M)
    if not match:
        raise SystemExit(f"no 'License: WordNet3.0' paragraph in {copyright_path}")
    body = []
    for line in match.group(1).splitlines():
        line = line[1:]
        body.append("" if line.strip() == "." else line)
    head = (
        "WordNet 3.0 -- licence notice\n\n"
        "wordnet30.npz is derived from WordNet 3.0 (Princeton University), taken from the\n"
        f"Debian package wordnet-base {version} (data.noun, index.noun): the noun synsets'\n"
        "offsets, lemmas, glosses, hypernym links and sense-numbered names.\n"
        "WordNet is distributed under the following licence, reproduced from the\n"
        "package's usr/share/doc/wordnet-base/copyright:\n\n"
    )
    return head + "\n".join(body).rstrip() + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", required=True, help="where the .deb is downloaded")
    ap.add_argument("--out", default=DEFAULT_OUT, help="folder for the two output files")
    args = ap.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    deb = _debian.fetch_deb(wordnet.PACKAGE, args.workdir, loader="build_wordnet.py")
    tmp = tempfile.mkdtemp(prefix="wordnet-", dir=args.workdir)
    try:
        arrays = wordnet.arrays_from_deb(deb, tmp)
        arrays["build_command"] = np.array("python scripts/build_wordnet.py --workdir WORKDIR")
        notice = licence_text(os.path.join(tmp, "extract", COPYRIGHT), deb["version"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = os.path.join(args.out, wordnet.DATA_FILE)
    wordnet.write_wordnet_file(out, arrays)
    with open(os.path.join(args.out, wordnet.LICENSE_FILE), "w", encoding="utf-8") as fh:
        fh.write(notice)
    corpus = wordnet.corpus_from_arrays(wordnet.read_wordnet_file(out))
    y = corpus.labels
    print(
        f"{out}: {os.path.getsize(out) / 1e6:.2f} MB, {corpus.n_samples} synsets, "
        f"{corpus.n_labels} labels, {y.nnz / corpus.n_samples:.2f} per synset, "
        f"{len(corpus.group_names)} lemma groups; {deb['package']} {deb['version']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
