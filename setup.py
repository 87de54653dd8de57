"""Packages: everything under ptrharmonize/, plus the top-level schemas/ and mappings/ folders,
which the wheel carries as ptrharmonize.model.schemas and ptrharmonize.model.mappings
(pyproject.toml maps the folders; the rest of the metadata is there too)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["ptrharmonize", "ptrharmonize.*"]),
                "ptrharmonize.model.schemas", "ptrharmonize.model.mappings"])
