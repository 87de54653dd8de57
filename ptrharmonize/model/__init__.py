"""The built-in model: `schemas/` and `mappings/` of the repository, carried by the wheel as
`ptrharmonize.model.schemas` and `ptrharmonize.model.mappings` (see setup.py). Read them with
`ptrharmonize.paths`, which also honours a registry folder of its own (`ptrh init`)."""
