"""Real multi-label data sets: embedded Openclipart images and WordNet nouns, Debian texts."""

from .debian_deps import load_debian_deps
from .debtags import load_debtags
from .openclipart import load_openclipart
from .text import TextDataset, as_text_dataset, load_debtags_xmc
from .wordnet import load_wordnet

__all__ = [
    "TextDataset",
    "as_text_dataset",
    "load_debian_deps",
    "load_debtags",
    "load_debtags_xmc",
    "load_openclipart",
    "load_wordnet",
]
