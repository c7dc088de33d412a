"""Benchmarks: ``make bench`` (``python -m bench``) prints JSON. Numbers, not pass/fail."""
