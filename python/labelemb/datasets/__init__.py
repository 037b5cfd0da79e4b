"""Real multi-label data sets: embedded Openclipart images and Debian debtags texts."""

from .debtags import load_debtags
from .openclipart import load_openclipart

__all__ = ["load_debtags", "load_openclipart"]
