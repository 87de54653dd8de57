"""Reproduce the reference study number by number: synth cohort -> store -> analyses -> compare."""

from .compare import compare_results, load_published, resolve

__all__ = ["compare_results", "load_published", "resolve"]
