"""The common data model and the rule catalog, as YAML files.

This folder is also a Python package (`ptrharmonize.model.schemas`, see setup.py) only so that
the wheel carries it and `importlib.resources` finds it in every kind of install; nothing here
is code. A registry edits its own copy (`ptrh init DIR`), not this one.
"""
