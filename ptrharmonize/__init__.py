"""ptrharmonize: harmonize, validate, pool and analyse multi-center PTR registries."""

__version__ = "0.1.0"
