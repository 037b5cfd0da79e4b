"""atheris driver: ``python tests/fuzz/fuzz_core.py tests/fuzz/corpus -max_total_time=60``.

A Python exception other than the allowed input errors, or a crash, stops the run with
the input that caused it saved as ``crash-*`` (the corpus directory gains new inputs).
``LABELEMB_FUZZ_TARGET=topk`` (a name in ``targets.TARGETS`` without ``target_``) sends
every input to that one target.
"""

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(__file__))

with atheris.instrument_imports():
    import targets


def main():
    only = os.environ.get("LABELEMB_FUZZ_TARGET") or None
    if only:
        targets.run_one(b"", only)  # an unknown name fails here, not inside the campaign
    atheris.Setup(sys.argv, lambda data: targets.run_one(data, only))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
