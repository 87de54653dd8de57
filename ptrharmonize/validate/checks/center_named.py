"""A row of an export for several centers names none of them (issue 19): its center column
(a REDCap data access group) is blank, or holds a value the mapping's value map does not name.
Evaluated where the export is split into one submission per center (`mapping/centers.py`,
`validate/unassigned.py`): such a row is in no center's submission and is never stored. Rule id
`<table>.center_named`."""

from __future__ import annotations

from . import Check

CHECK = Check(
    name="center_named",
    level="structure",
    category="conformance",
    message="This row names no center of the registry: its center ({label}) is empty or not one the mapping names. "
            "It was not stored. Fill in the center, or have the registry add it to the mapping.",
)
