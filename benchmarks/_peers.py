"""The extreme-classification peers of the benchmarks live in the package:
:mod:`labelemb.peers` (one copy, also used by ``labelemb demo``)."""

from labelemb.peers import *  # noqa: F401,F403
from labelemb.peers import __all__  # noqa: F401
