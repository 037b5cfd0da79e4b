"""atheris driver: ``python tests/fuzz/fuzz_core.py tests/fuzz/corpus -max_total_time=60``.

A Python exception other than the allowed input errors, or a crash, stops the run with
the input that caused it saved as ``crash-*`` (the corpus directory gains new inputs).
``LABELEMB_FUZZ_TARGET=topk`` (a name in ``targets.TARGETS`` without ``target_``) sends
every input to that one target. The campaign runs under an address-space limit of
``LABELEMB_FUZZ_AS_MB`` (default 4096; 0 = none; never under ASan, whose shadow memory
needs terabytes of address space), so that failing allocations are fuzzed too: they must
raise MemoryError.
"""

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(__file__))

with atheris.instrument_imports():
    import targets


def limit_address_space() -> None:
    mb = int(os.environ.get("LABELEMB_FUZZ_AS_MB", "4096"))
    if mb <= 0 or "asan" in os.environ.get("LD_PRELOAD", ""):
        return
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = mb << 20
    resource.setrlimit(resource.RLIMIT_AS,
                       (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


def main():
    limit_address_space()
    only = os.environ.get("LABELEMB_FUZZ_TARGET") or None
    if only:
        targets.run_one(b"", only)  # an unknown name fails here, not inside the campaign
    atheris.Setup(sys.argv, lambda data: targets.run_one(data, only))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
