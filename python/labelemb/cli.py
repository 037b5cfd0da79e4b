"""The ``labelemb`` command.

::

    labelemb fit LABELS_FILE --dim 256 -o emb.npz          # one sample per line, "a,b,c"
    labelemb fit --synthetic 100000x2000 --dim 64 -o emb.npz
    labelemb neighbors emb.npz LABEL -k 10

Each subcommand is one function registered with :func:`command`, which names it, gives
its help line and declares its arguments (built with :func:`arg`); ``main`` builds the
parser from the registry. A subcommand returns the exit status (0 or None for success).
User errors (bad input, missing or damaged files, out of memory) print one line,
``labelemb <command>: error: ...``, to stderr and exit with status 2, as argparse does for
a bad command line; ``--debug`` (anywhere on the line) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
import zipfile
import zlib
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ._recipes import DEFAULT_RECIPE, DEFAULT_RECIPE_LARGE, LARGE_LABEL_SET, recipe_names

try:  # the shared reader, when this build has it
    from .formats import read_label_list
except ImportError:  # pragma: no cover
    read_label_list = None

Argument = Tuple[Tuple[str, ...], dict]
_COMMANDS: Dict[str, Tuple[str, Sequence[Argument], Callable[[argparse.Namespace], int]]] = {}


def arg(*flags: str, **kwargs) -> Argument:
    """One argument of a subcommand, as for ``ArgumentParser.add_argument``."""
    return flags, kwargs


def command(name: str, help: str, *arguments: Argument):
    """Register the decorated function ``f(args) -> int`` as subcommand ``name``."""

    def register(fn):
        _COMMANDS[name] = (help, arguments, fn)
        return fn

    return register


def _delimiter_arg(where: str, more: str = "") -> Argument:
    """``--delimiter``: given, or detected as :func:`labelemb.read_labels` does."""
    return arg("--delimiter", default=None,
               help=f"label separator in {where} (default: detected, one of comma, tab, "
                    f"semicolon or whitespace{more})")


# ------------------------------------------------------------------------------ fit


def _read_label_file(path: str, delimiter: Optional[str]):
    """(labels, label_names): a CSR matrix and its column names (None for integer ids)."""
    if read_label_list is not None:
        return read_label_list(path, delimiter=delimiter)
    with open(path, encoding="utf-8") as f:  # pragma: no cover - simple fallback
        sets = [[t.strip() for t in line.rstrip("\r\n").split(delimiter) if t.strip()]
                for line in f]
    return sets, None


def _parse_synthetic(text: str) -> Tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise ValueError(f"--synthetic takes N x L, for example 100000x2000, got {text!r}")
    n, L = int(m.group(1)), int(m.group(2))
    if n < 1 or L < 2:
        raise ValueError(f"--synthetic needs N >= 1 samples and L >= 2 labels, got {text!r}")
    return n, L


@command(
    "fit", "fit label embeddings from training label sets and save them (.npz)",
    arg("labels_file", nargs="?", metavar="LABELS_FILE",
        help="label-list text file: one sample per line, its labels separated by --delimiter"),
    arg("--synthetic", metavar="NxL", help="use the synthetic topic set of N samples, L labels"),
    arg("--dim", type=int, default=256, help="embedding dimension (default 256)"),
    arg("-o", "--output", required=True, metavar="OUT.npz", help="where to save the embedding"),
    arg("--pmi", choices=("ppmi", "pmi"), default="ppmi", help="PMI variant (default ppmi)"),
    arg("--shift", type=float, default=0.0, help="subtracted from every PMI value (log k)"),
    arg("--alpha", type=float, default=1.0, help="context smoothing exponent (0.75 is usual)"),
    arg("--min-count", type=int, default=1, help="drop pairs seen fewer times"),
    arg("--diagonal", choices=("self", "zero"), default="self", help="PMI diagonal"),
    arg("--power", type=float, default=0.5,
        help="label vectors are rows of U |Lambda|^power before normalising (default 0.5)"),
    arg("--which", choices=("LA", "LM"), default="LA",
        help="eigenpairs kept: largest algebraic (default) or largest in magnitude"),
    arg("--n-iter", type=int, default=4, help="power iterations (default 4)"),
    arg("--oversample", type=int, default=16, help="extra basis vectors (default 16)"),
    arg("--seed", type=int, default=0, help="random seed (default 0)"),
    arg("--threads", type=int, default=0, help="threads, 0 = all cores (default)"),
    _delimiter_arg("LABELS_FILE"),
    arg("--no-progress", action="store_true", help="no progress bars"),
)
def fit(args: argparse.Namespace) -> int:
    import labelemb

    if (args.labels_file is None) == (args.synthetic is None):
        raise ValueError("give either LABELS_FILE or --synthetic NxL")
    t0 = time.perf_counter()
    if args.synthetic is not None:
        n, L = _parse_synthetic(args.synthetic)
        labels = labelemb.make_topic_labels(n, L, seed=args.seed).labels
        source = f"synthetic topic set {n} x {L}"
    else:
        Y, names = _read_label_file(args.labels_file, args.delimiter)
        source = args.labels_file
        if names is not None:  # keep the names: count here, then embed the counts
            c = labelemb.cooccurrence(Y, num_threads=args.threads)
            labels = labelemb.Cooccurrence(c.n_samples, c.label_counts, c.pairs, names)
        else:
            labels = Y
    t_read = time.perf_counter() - t0
    emb = labelemb.fit_embeddings(
        labels, args.dim, pmi=args.pmi, shift=args.shift, alpha=args.alpha,
        min_count=args.min_count, diagonal=args.diagonal, power=args.power,
        which=args.which, n_iter=args.n_iter,
        oversample=args.oversample, seed=args.seed, num_threads=args.threads,
        progress=not args.no_progress)
    t_fit = time.perf_counter() - t0 - t_read
    emb.save(args.output)
    ev = emb.eigenvalues
    print(f"{emb!r}")
    print(f"  from {source}: read in {t_read:.2f} s, fit in {t_fit:.2f} s")
    print(f"  eigenvalues kept: {len(ev)}, from {ev[0]:.4g} down to {ev[-1]:.4g}")
    print(f"  saved to {args.output}")
    _print_top_neighbors(emb, n_labels=5, k=5)
    return 0


def _print_top_neighbors(emb, n_labels: int, k: int) -> None:
    has_vector = np.any(emb.vectors != 0, axis=1)
    k = min(k, int(has_vector.sum()) - 1)
    if k < 1:
        return
    order = np.argsort(-emb.label_counts, kind="stable")
    top = [int(i) for i in order if has_vector[i]][:n_labels]
    print(f"nearest neighbours of the {len(top)} most frequent labels:")
    for i in top:
        near = ", ".join(f"{name} ({cos:.2f})" for name, cos in emb.neighbors(i, k=k))
        print(f"  {emb._label(i)} [{emb.label_counts[i]}]: {near}")


# ------------------------------------------------------------------------------ neighbors


def _parse_label(emb, text: str):
    if emb.label_names is not None:
        if text in emb._index():
            return text
        raise ValueError(f"unknown label {text!r}")
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"this embedding has integer label ids; {text!r} is not one") from None


@command(
    "neighbors", "print the labels nearest to a label (cosine of the label vectors)",
    arg("embedding", metavar="EMBEDDING.npz", help="an embedding saved by 'labelemb fit'"),
    arg("label", metavar="LABEL", help="a label name, or an integer id"),
    arg("-k", type=int, default=10, help="how many neighbours (default 10)"),
)
def neighbors(args: argparse.Namespace) -> int:
    from .embedding import LabelEmbedding

    emb = LabelEmbedding.load(args.embedding)
    label = _parse_label(emb, args.label)
    rows = emb.neighbors(label, k=args.k)
    width = max(len(str(name)) for name, _ in rows)
    print(f"nearest labels to {label!r} ({emb!r}):")
    for rank, (name, cos) in enumerate(rows, 1):
        print(f"  {rank:3d}  {str(name):<{width}}  {cos:.4f}")
    return 0


# ------------------------------------------------------------------------------ train, evaluate


@command(
    "train", "train a classifier (a small MLP) on features and label sets, save it (.pt)",
    arg("features", metavar="FEATURES",
        help="inputs, one row per sample: .npy (n x F array) or .npz (one array)"),
    arg("labels", metavar="LABELS",
        help="the samples' label sets: label-list text (one line per sample, labels "
             "separated by --delimiter, names or integer ids) or a CSR .npz "
             "(scipy.sparse.save_npz)"),
    arg("-o", "--output", required=True, metavar="MODEL.pt", help="where to save the model"),
    arg("--objective", choices=recipe_names(aliases=True), default=None,
        help="paper: regress onto the label embedding with cosine proximity (the paper; "
             "'embedding' is its former name, deprecated); bce: one sigmoid output per "
             "label (the usual baseline); lowrank: "
             "sigmoid outputs through the embedding; softmax, lowrank-softmax: the same "
             "two heads trained with softmax cross-entropy over all labels; hybrid, "
             "lowrank-hybrid: with the sum of both losses (default: "
             f"{DEFAULT_RECIPE_LARGE} from {LARGE_LABEL_SET} labels on, {DEFAULT_RECIPE} "
             "below; the best measured for each)"),
    arg("--embedding", metavar="EMB.npz",
        help="label embedding from 'labelemb fit' (default: fit one on the training labels)"),
    arg("--dim", type=int, default=None,
        help="dimension of that embedding (default: 256 below 10,000 labels, 512 from "
             "there on)"),
    arg("--epochs", type=int, default=10, help="passes over the training set (default 10)"),
    arg("--lr", type=float, default=None,
        help="learning rate (default: the recipe's for the input kind: 0.002 for "
             "lowrank-softmax; 0.01 for hybrid and bce on sparse rows, 0.001 on dense)"),
    arg("--batch-size", type=int, default=256, help="samples per step (default 256)"),
    arg("--hidden", default="512", help="hidden layer widths, e.g. 1024,512 (default 512)"),
    arg("--dropout", type=float, default=0.0, help="dropout after each hidden layer"),
    arg("--optimizer", choices=("adamw", "adam", "sgd"), default="adamw",
        help="default adamw"),
    arg("--weight-decay", type=float, default=0.0, help="AdamW weight decay (default 0)"),
    arg("--schedule", choices=("constant", "cosine"), default=None,
        help="learning-rate schedule (default: the recipe's for the input kind: cosine "
             "decay for lowrank-softmax and for hybrid and bce on sparse rows)"),
    arg("--neighbours", type=int, default=50,
        help="keep the training samples' points in the model file: 'evaluate' fuses the "
             "model with the labels of this many nearest ones (recipes decoded by their "
             "outputs; 0 = the model alone; default 50)"),
    arg("--sampled-labels", type=int, default=None, metavar="N",
        help="lowrank-softmax only: each step scores the batch's labels and others drawn "
             "at random, about N in all, instead of every label (a sampled softmax; "
             "0 = every label; default: 4096 from 10,000 labels on, every label below)"),
    arg("--valid-features", metavar="FILE", help="validation inputs (with --valid-labels)"),
    arg("--valid-labels", metavar="FILE", help="validation label sets"),
    arg("--valid-fraction", type=float, default=0.1,
        help="without --valid-*, hold out this share of the samples to report P@k, nDCG "
             "and MAP after each epoch; 0 = none (default 0.1)"),
    arg("--device", default="auto",
        help="auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or cuda:N"),
    arg("--seed", type=int, default=0, help="random seed (default 0)"),
    arg("--checkpoint-dir", metavar="DIR",
        help="save a checkpoint after every epoch (and history.jsonl) here"),
    arg("--resume", action="store_true", help="continue from the last checkpoint in DIR"),
    arg("--log", metavar="FILE.jsonl", help="write one JSON line per epoch here"),
    _delimiter_arg("label-list files"),
    arg("--no-progress", action="store_true", help="no progress bars"),
    arg("-q", "--quiet", action="store_true", help="print nothing but errors"),
)
def train(args: argparse.Namespace) -> int:
    return _torch_cli().train_command(args)


def _torch_cli():
    """The torch side of train/evaluate, imported only when they run."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ValueError("this command needs PyTorch: pip install torch (the CPU build is "
                         "enough), or pip install 'labelemb[torch]'") from None
    from .torch import _cli

    return _cli


train.epilog = """examples:
  labelemb train X.npy tags.txt -o model.pt                   # hybrid (sigmoid + softmax)
  labelemb train X.npy tags.txt -o emb.pt --objective paper   # the paper's recipe
  labelemb train X.npy tags.txt -o base.pt --objective bce    # sigmoid baseline
  labelemb evaluate model.pt X_test.npy tags_test.txt

Needs the torch extra (pip install "labelemb[torch]"). Training runs on a CUDA GPU when
one is available (bf16 autocast), else on the CPU. Under torchrun, it trains with
DistributedDataParallel across the processes."""


@command(
    "evaluate", "score a model saved by 'labelemb train' on features and their label sets",
    arg("model", metavar="MODEL.pt", help="a model saved by 'labelemb train'"),
    arg("features", metavar="FEATURES", help="inputs: .npy or .npz, as for train"),
    arg("labels", metavar="LABELS", help="true label sets: label-list text or CSR .npz"),
    arg("-k", default="1,3,5", help="ranks for P@k, recall@k, nDCG@k (default 1,3,5)"),
    arg("--map-k", type=int, default=100, help="k of MAP@k (default 100, as the paper)"),
    arg("--predictions", metavar="FILE.txt",
        help="also write each sample's top labels, one line per sample"),
    arg("--top", type=int, default=10, help="labels per line in --predictions (default 10)"),
    arg("--no-neighbours", action="store_true",
        help="score the network alone, without the neighbour votes kept in the model file"),
    arg("--device", default="auto", help="auto, cpu, cuda or cuda:N"),
    arg("--batch-size", type=int, default=2048, help="samples per forward pass"),
    _delimiter_arg("text files", "; ',' in --predictions"),
    arg("--json", action="store_true", help="print the metrics as one JSON object"),
)
def evaluate(args: argparse.Namespace) -> int:
    return _torch_cli().evaluate_command(args)


evaluate.epilog = """metrics: precision@k, recall@k, nDCG@k and MAP@k of the top-ranked labels
(embedding models rank labels by their nearest label vectors, baselines by their
outputs); samples without labels are left out."""


@command(
    "fit-model", "train a labelemb.Classifier and save it as one model file (.npz)",
    arg("data", metavar="DATA",
        help="an XC-format file (features and label ids per line), or with LABELS a text "
             "file of one sample per line (TF-IDF features are built in)"),
    arg("labels", nargs="?", metavar="LABELS",
        help="label-list text for the lines of DATA (names or ids, separated by --delimiter)"),
    arg("-o", "--output", required=True, metavar="MODEL.npz", help="where to save the model"),
    arg("--recipe", default=None,
        help="paper, bce, lowrank, softmax, lowrank-softmax, hybrid or lowrank-hybrid "
             "(default: lowrank-softmax from 2,000 labels on, hybrid below)"),
    arg("--dim", type=int, default=None,
        help="label embedding dimension (default: 256 below 10,000 labels, 512 from there "
             "on)"),
    arg("--hidden", default="1024", help="hidden widths of the MLP, e.g. 1024,512"),
    arg("--dropout", type=float, default=0.0, help="dropout after each hidden layer"),
    arg("--epochs", type=int, default=10, help="passes over the training set (default 10)"),
    arg("--lr", type=float, default=None, help="learning rate (default: the recipe's)"),
    arg("--schedule", choices=("constant", "cosine"), default=None,
        help="learning-rate schedule (default: the recipe's)"),
    arg("--neighbours", type=int, default=50,
        help="predictions fuse the model with the labels of this many nearest training "
             "samples, kept in the model file (0 = the model alone; default 50)"),
    arg("--batch-size", type=int, default=256, help="samples per step (default 256)"),
    arg("--valid-fraction", type=float, default=0.1,
        help="hold out this share of the samples; the epoch with the best validation "
             "MAP@100 is kept (0 = none, keep the last; default 0.1)"),
    arg("--patience", type=int, default=None,
        help="stop after this many epochs without a better validation MAP@100"),
    arg("--device", default="auto", help="auto, cpu, cuda or cuda:N"),
    arg("--seed", type=int, default=0, help="random seed (default 0)"),
    arg("--threads", type=int, default=0, help="CPU threads, 0 = torch's default"),
    _delimiter_arg("LABELS"),
    arg("--no-progress", action="store_true", help="no progress bars"),
    arg("-q", "--quiet", action="store_true", help="print nothing but errors"),
)
def fit_model(args: argparse.Namespace) -> int:
    _torch_cli()
    from .torch import _model_cli

    return _model_cli.fit_model_command(args)


fit_model.epilog = """examples:
  labelemb fit-model train.txt -o model.npz                 # XC format (features + labels)
  labelemb fit-model texts.txt tags.txt -o model.npz        # raw text, TF-IDF built in
  labelemb predict model.npz test.txt -k 5 -o top5.tsv

The model file holds the settings, the label names, the label embedding, the weights and
(for text) the TF-IDF vocabulary; labelemb.Classifier.load reads it."""


@command(
    "predict", "write the top-k labels of every sample with a model from 'labelemb fit-model'",
    arg("model", metavar="MODEL.npz", help="a model file (Classifier.save, labelemb fit-model)"),
    arg("input", metavar="INPUT",
        help="an XC-format file (its labels are ignored), or for a text model a text file "
             "of one sample per line"),
    arg("-k", type=int, default=5, help="labels per sample (default 5)"),
    arg("-o", "--output", metavar="OUT", help="output file (default: standard output)"),
    arg("--format", choices=("tsv", "scores", "xc"), default="tsv",
        help="tsv: the labels of a sample on one line, tab-separated; scores: label:score; "
             "xc: an XC-format score file (id:score, header 'n L') (default tsv)"),
    arg("--batch-size", type=int, default=4096, help="samples per batch (default 4096)"),
    arg("--device", default="auto", help="auto, cpu, cuda or cuda:N"),
    arg("--threads", type=int, default=0, help="CPU threads, 0 = torch's default"),
    arg("--no-progress", action="store_true", help="no progress bar"),
)
def predict(args: argparse.Namespace) -> int:
    _torch_cli()
    from .torch import _model_cli

    return _model_cli.predict_command(args)


@command(
    "demo", "compare label embeddings, the sigmoid baseline and the extreme-classification "
    "tools on the embedded WordNet nouns (or another data set)",
    arg("--data", default="wordnet", choices=("wordnet", "openclipart", "debtags", "debian-deps"),
        help="wordnet: 82,000 WordNet nouns -> their ~4,900 hypernym labels, embedded "
             "(default); openclipart: the embedded 32x32 images and a small CNN; debtags, "
             "debian-deps: Debian's package texts (need the machine's apt indexes)"),
    arg("-o", "--output", default="labelemb-demo", metavar="DIR",
        help="folder for report.json, curves.png and the training logs (default labelemb-demo)"),
    arg("--epochs", type=int, default=None,
        help="epochs per recipe (default: the data set's budget; 8 for openclipart)"),
    arg("--recipes", default=None,
        help=f"comma-separated, from {', '.join(recipe_names())} (default: the default recipe, "
             "then bce and paper; openclipart adds lowrank)"),
    arg("--peers", default=None,
        help="comma-separated extreme-classification tools for the text data sets, from "
             "pecos-b10, pecos-b50, omikuji-parabel, omikuji-bonsai, napkinxc-plt, knn, "
             "popularity, or 'none' (default: pecos-b10, omikuji-parabel, napkinxc-plt, "
             "popularity, those installed)"),
    arg("--limit", type=int, default=None, metavar="N",
        help="use at most N training, N validation and N test samples (a quick look)"),
    arg("--train-rows", type=int, default=None, metavar="N",
        help="training samples drawn for every method (default: the budget's)"),
    arg("--hidden", type=int, default=None, help="hidden width of the text MLP"),
    arg("--dim", type=int, default=None, help="label embedding dimension"),
    arg("--batch-size", type=int, default=None, help="samples per step of the text MLP"),
    arg("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N"),
    arg("--threads", type=int, default=0,
        help="CPU threads for training and the peers (default 0: all cores)"),
    arg("--seed", type=int, default=0, help="random seed (default 0)"),
    arg("--no-progress", action="store_true", help="no progress bars"),
)
def demo(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ValueError("the demo needs PyTorch: pip install torch (the CPU build is "
                         "enough), or pip install 'labelemb[torch]'") from None
    from .demo import run_demo

    def names(value):
        if value is None:
            return None
        if value.strip().lower() == "none":
            return ()
        return tuple(r.strip() for r in value.split(",") if r.strip())

    for flag in ("epochs", "limit", "train_rows", "hidden", "dim", "batch_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.data == "openclipart":
        for flag in ("peers", "train_rows", "hidden", "batch_size"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')} is for the text data sets, not "
                                 "--data openclipart")
    run_demo(args.output, data=args.data, epochs=args.epochs, limit=args.limit,
             recipes=names(args.recipes), peers=names(args.peers), dim=args.dim,
             hidden=args.hidden, batch_size=args.batch_size, train_rows=args.train_rows,
             device=args.device, threads=args.threads, seed=args.seed,
             progress=not args.no_progress)
    return 0


demo.epilog = """The default run (WordNet): TF-IDF features fitted on the training split, the label
embedding and the nearest labels of a few well-known ones, then make_model's default
recipe, bce and paper trained on the same sparse MLP for the same epochs, and the
extreme-classification tools that are installed (PECOS, Omikuji, napkinXC) on the same
rows. One table of test P@1, P@5, nDCG@5, MAP@100 and PSP@5 at the best validation
epoch, training seconds and seconds to reach the others' best; a few test samples;
report.json and curves.png in DIR. The budget is sized for under 3 minutes on 2 CPU
cores; --train-rows, --hidden, --dim, --batch-size and --epochs change it.
--limit 300 --epochs 1 is a check that runs in seconds."""


# ------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="labelemb",
        description="Information-theoretic label embeddings for multi-label classification.")
    parser.add_argument("--version", action="version", version=f"labelemb {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the traceback (may also follow the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_line, arguments, fn) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_line, description=help_line,
                           epilog=getattr(fn, "epilog", None),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        for flags, kwargs in arguments:
            p.add_argument(*flags, **kwargs)
        p.set_defaults(_run=fn)
    return parser


# What bad input, a damaged file or a machine too small can raise: one line, status 2.
# Anything else is a bug in labelemb and keeps its traceback.
_USER_ERRORS = (ValueError, TypeError, OSError, MemoryError, EOFError, OverflowError,
                zlib.error, zipfile.BadZipFile)
USER_ERROR = 2


def _one_line(e: BaseException) -> str:
    text = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
    text = text or type(e).__name__
    if isinstance(e, MemoryError) and not isinstance(e, ValueError):  # not a budget refusal
        text = f"out of memory ({text})"
    return text


def _show_warning(command: str):
    def show(message, category, filename, lineno, file=None, line=None):
        text = "; ".join(x.strip() for x in str(message).splitlines() if x.strip())
        print(f"labelemb {command}: warning: {text}", file=file or sys.stderr)

    return show


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``labelemb`` command; returns the exit status.

    0 on success; 2 for a user error (one line on stderr; ``--debug`` anywhere in
    ``argv`` shows the traceback instead) or a bad command line (argparse).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            if not debug:  # one line per warning too, without the source line
                warnings.showwarning = _show_warning(args.command)
            return int(args._run(args) or 0)
    except _USER_ERRORS as e:
        if debug:
            raise
        print(f"labelemb {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return USER_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
