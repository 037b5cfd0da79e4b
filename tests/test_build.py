import io

import labelemb


def test_version_and_config():
    assert isinstance(labelemb.__version__, str) and labelemb.__version__.count(".") >= 2
    buf = io.StringIO()
    cfg = labelemb.show_config(file=buf)
    text = buf.getvalue()
    assert "OpenMP" in text and "BLAS" in text
    assert cfg["blas_registered"]
    assert cfg["max_threads"] >= 1


def test_openmp_is_on():
    # The build must find OpenMP (CI machines have it); a single-threaded build would
    # silently lose the parallel kernels.
    assert labelemb.show_config(file=io.StringIO())["openmp"]


def test_typing_files_ship():
    from importlib import resources

    files = {p.name for p in resources.files("labelemb").iterdir()}
    assert "py.typed" in files
    assert "_core.pyi" in files


def test_import_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, labelemb; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
