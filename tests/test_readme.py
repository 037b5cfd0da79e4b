"""The README's code blocks run as written.

Python blocks run in order in one namespace, bash blocks line by line in a shell, all in
one temporary folder (later blocks may use files that earlier ones wrote). The first
block is the set-up (installing the package, the demo, this very test suite): CI runs
those commands itself (`.ci/run`), and the demo's own test runs it in small mode, so here
it is only checked to hold the three commands.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _blocks():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"^```(\w+)\n(.*?)^```", text, re.S | re.M)


def test_readme_opens_with_the_set_up_commands():
    lang, code = _blocks()[0]
    assert lang == "bash"
    assert "pip install" in code and "labelemb demo" in code
    assert "python -m pytest tests/" in code
    assert "python -m pytest benchmarks/" in code


def test_readme_code_blocks_run(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    if shutil.which("labelemb") is None:
        pytest.skip("the labelemb command is not on PATH")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    blocks = _blocks()[1:]
    assert any(lang == "python" for lang, _ in blocks)
    assert any(lang == "bash" for lang, _ in blocks)
    for number, (lang, code) in enumerate(blocks, start=2):
        if lang == "python":
            with warnings.catch_warnings():
                # the examples' small data leave a few labels without vectors: said, not wrong
                warnings.simplefilter("ignore")
                exec(compile(code, f"README.md block {number}", "exec"), namespace)
        elif lang == "bash":
            for line in code.strip().splitlines():
                run = subprocess.run(line, shell=True, capture_output=True, text=True,
                                     env=dict(os.environ, PYTHONWARNINGS="ignore"),
                                     executable="/bin/bash")
                assert run.returncode == 0, f"README block {number}: {line}\n{run.stderr}"
        else:
            pytest.fail(f"README block {number} has an unknown language {lang!r}")
    # what the blocks promise to leave behind
    for name in ("model.npz", "labels.npz", "top5.tsv"):
        assert os.path.exists(name), name
    with open("top5.tsv", encoding="utf-8") as f:
        assert len(f.readline().split("\t")) == 5
