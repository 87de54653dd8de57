"""The demo centers' mapping files (one YAML file per center).

This folder is also a Python package (`ptrharmonize.model.mappings`, see setup.py) only so that
the wheel carries it and `importlib.resources` finds it in every kind of install; nothing here
is code. A registry keeps its own mappings in its folder (`ptrh init DIR`).
"""
