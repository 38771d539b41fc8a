"""Benchmarks that span more than one package (scale-out); each prints figures, asserts nothing."""
