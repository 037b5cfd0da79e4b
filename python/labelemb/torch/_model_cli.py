"""The work behind ``labelemb fit-model`` and ``labelemb predict`` (see labelemb.cli).

Imported only when one of those subcommands runs. Both go through
:class:`labelemb.Classifier` and its one-file model format.

Inputs: an Extreme Classification Repository file (sparse ``index:value`` features and
label ids on each line), or a text file of one sample per line whose TF-IDF features the
model computes itself (``fit-model TEXTS LABELS``; the vocabulary is saved in the model).
"""

from __future__ import annotations

import os
import sys
from typing import Iterator, List, Tuple

import numpy as np

from .._io import atomic_write


def _read_texts(path: str) -> List[str]:
    from .. import _textfile

    if not os.path.isfile(path):
        raise ValueError(f"no such text file: {path!r}")
    return [line for _, line in _textfile.lines(path)]


def _text_batches(path: str, size: int) -> Iterator[List[str]]:
    from .. import _textfile

    batch: List[str] = []
    for _, line in _textfile.lines(path):
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _hidden(text: str) -> Tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"--hidden takes widths separated by commas, e.g. 1024,512; got "
                         f"{text!r}") from None
    if any(s < 1 for s in sizes):
        raise ValueError(f"--hidden widths must be positive, got {text!r}")
    return sizes


def fit_model_command(args) -> int:
    from .. import Classifier
    from ..formats import read_label_list, read_xc

    say = print if not args.quiet else (lambda *a, **k: None)
    clf = Classifier(recipe=args.recipe, dim=args.dim, hidden=_hidden(args.hidden),
                     dropout=args.dropout, epochs=args.epochs, lr=args.lr,
                     schedule=args.schedule, neighbours=args.neighbours,
                     batch_size=args.batch_size, patience=args.patience,
                     text=args.labels is not None, device=args.device, seed=args.seed,
                     num_threads=args.threads, progress=not (args.no_progress or args.quiet))
    clf._settings()  # a typo in a setting must not cost reading the data
    if not os.path.isfile(args.data):
        raise ValueError(f"no such file: {args.data!r}")
    if args.labels is None:
        X, Y = read_xc(args.data)
        source = f"{args.data} (XC format: {X.shape[0]} samples, {X.shape[1]} features)"
    else:
        if not os.path.isfile(args.labels):
            raise ValueError(f"no such labels file: {args.labels!r}")
        X = np.array(_read_texts(args.data), dtype=object)
        Y, names = read_label_list(args.labels, delimiter=args.delimiter)
        if names is not None:
            Y = [[names[j] for j in Y.indices[Y.indptr[i]:Y.indptr[i + 1]]]
                 for i in range(Y.shape[0])]
        source = f"{args.data} ({len(X)} texts) and {args.labels}"
        if len(X) != (len(Y) if isinstance(Y, list) else Y.shape[0]):
            raise ValueError(f"{args.data} has {len(X)} lines but {args.labels} has "
                             f"{len(Y) if isinstance(Y, list) else Y.shape[0]}; they must "
                             "describe the same samples, one per line")
    valid = {}
    if args.valid_fraction > 0:
        if not 0 < args.valid_fraction < 1:
            raise ValueError(f"--valid-fraction must be in [0, 1), got {args.valid_fraction}")
        n = len(X) if isinstance(X, np.ndarray) and X.dtype == object else X.shape[0]
        order = np.random.default_rng(args.seed).permutation(n)
        n_valid = max(1, int(round(n * args.valid_fraction)))
        if n_valid >= n:
            raise ValueError(f"--valid-fraction {args.valid_fraction} leaves no training "
                             f"sample out of {n}")
        v, t = np.sort(order[:n_valid]), np.sort(order[n_valid:])
        pick = (lambda Z, rows: [Z[i] for i in rows]) if isinstance(Y, list) else \
            (lambda Z, rows: Z[rows])
        valid = {"X_valid": X[v], "Y_valid": pick(Y, v)}
        X, Y = X[t], pick(Y, t)
    say(f"training on {source}")
    clf.fit(X, Y, **valid)
    clf.save(args.output)
    last = clf.history_.epochs[clf.best_epoch_ - 1] if clf.history_.epochs else {}
    shown = {k: round(v, 4) for k, v in last.items()
             if k in ("loss", "p@1", "p@5", "ndcg@5", "map@100")}
    say(f"{len(clf.classes_)} labels; kept epoch {clf.best_epoch_} of {len(clf.history_)}: "
        f"{shown}")
    say(f"saved to {args.output}")
    return 0


def predict_command(args) -> int:
    from .. import Classifier
    from ..formats import read_xc

    if args.k < 1:
        raise ValueError(f"-k must be >= 1, got {args.k}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    clf = Classifier.load(args.model)
    clf.set_params(device=args.device, num_threads=args.threads,
                   eval_batch_size=args.batch_size)
    clf._settings()
    L = len(clf.classes_)
    if args.k > L:
        raise ValueError(f"-k must be <= {L} (the model's number of labels), got {args.k}")
    if not os.path.isfile(args.input):
        raise ValueError(f"no such input file: {args.input!r}")
    if clf._text is not None:
        batches, total = _text_batches(args.input, args.batch_size), None
    else:
        X, _ = read_xc(args.input)
        total = X.shape[0]
        batches = (X[a:a + args.batch_size] for a in range(0, total, args.batch_size))
    bar = _bar(total, args.no_progress or args.output is None)
    out = atomic_write(args.output, "w") if args.output else _Stdout()
    with out as f:
        if args.format == "xc" and total is not None:
            f.write(f"{total} {L}\n")
        n = 0
        for batch in batches:
            idx, scores = clf.predict_topk(batch, args.k)
            f.write(_lines(idx, scores, clf.classes_, args.format))
            n += len(idx)
            if bar is not None:
                bar.update(len(idx))
    if bar is not None:
        bar.close()
    if args.format == "xc" and total is None and args.output:
        _prepend(args.output, f"{n} {L}\n")
    if args.output:
        print(f"top-{args.k} labels of {n} samples written to {args.output}",
              file=sys.stderr)
    return 0


def _lines(idx: np.ndarray, scores: np.ndarray, classes: np.ndarray, fmt: str) -> str:
    if fmt == "xc":
        return "".join(" ".join(f"{j}:{s:.6g}" for j, s in zip(row, srow)) + "\n"
                       for row, srow in zip(idx.tolist(), scores.tolist()))
    if fmt == "scores":
        names = classes[idx]
        return "".join("\t".join(f"{a}:{s:.6g}" for a, s in zip(row, srow)) + "\n"
                       for row, srow in zip(names.tolist(), scores.tolist()))
    return "".join("\t".join(map(str, row)) + "\n" for row in classes[idx].tolist())


def _prepend(path: str, header: str) -> None:
    with open(path, encoding="utf-8") as f:
        body = f.read()
    with atomic_write(path, "w") as f:
        f.write(header + body)


def _bar(total, off: bool):
    if off:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="samples", desc="predict", file=sys.stderr)


class _Stdout:
    def __enter__(self):
        return sys.stdout

    def __exit__(self, *exc):
        sys.stdout.flush()
        return False
