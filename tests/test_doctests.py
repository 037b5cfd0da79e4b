"""The examples in the docstrings run and print what they say.

Every module of the package whose source holds an example (``>>>``) is one test; a module
that needs an optional dependency that is not installed (torch, dask, matplotlib, ...)
is skipped, any other import error fails.
"""

import doctest
import importlib
import pathlib

import pytest

import labelemb

ROOT = pathlib.Path(labelemb.__file__).parent
# Extras a module may need; without them its examples cannot run.
OPTIONAL = {"torch", "dask", "distributed", "matplotlib", "pyarrow", "sklearn", "tqdm",
            "pandas"}


def _modules_with_examples():
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        if ">>>" not in path.read_text(encoding="utf-8"):
            continue
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def _import(name):
    try:
        return importlib.import_module(name)
    except ImportError as e:
        missing = (e.name or "").split(".")[0]
        if missing in OPTIONAL:
            pytest.skip(f"{name} needs {missing}, which is not installed")
        raise


def test_the_public_modules_are_covered():
    for name in ("labelemb.embedding", "labelemb.topk", "labelemb.metrics",
                 "labelemb.cooccurrence", "labelemb.torch.train", "labelemb._validation"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    module = _import(name)
    tests = [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, name)
             if t.examples]
    assert tests, f"{name} has '>>>' in its source but no docstring example doctest finds"
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
    assert runner.tries > 0
