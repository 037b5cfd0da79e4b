"""atheris driver: ``python tests/fuzz/fuzz_core.py tests/fuzz/corpus -max_total_time=60``.

A Python exception other than the allowed input errors, or a crash, stops the run with
the input that caused it saved as ``crash-*`` (the corpus directory gains new inputs).
"""

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(__file__))

with atheris.instrument_imports():
    import targets


def main():
    atheris.Setup(sys.argv, targets.run_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
