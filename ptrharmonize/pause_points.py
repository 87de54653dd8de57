"""Named points in the store's write path where a test can stop the process (issue 23).

The kill test (tests/test_atomicity.py) must SIGKILL an ingest at a known moment: inside the
transaction with some tables replaced, after the commit before the checkpoint, ... A delay
measured from the start cannot promise that (the run may end first on a loaded machine). With
`PTRH_TEST_PAUSE_AT=<name>` and `PTRH_TEST_PAUSE_MARKER=<file>` in its environment, the process
writes `<name>` to the marker file when it reaches that point and then waits there to be
killed. Unset (always, outside tests), `reached` costs one dictionary lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def reached(name: str) -> None:
    """Pause here for ever if a test asked for `name` (see the module's docstring)."""
    if os.environ.get("PTRH_TEST_PAUSE_AT") != name:
        return
    marker = os.environ.get("PTRH_TEST_PAUSE_MARKER")
    if not marker:
        return
    tmp = Path(marker + ".tmp")
    tmp.write_text(name, encoding="utf-8")
    os.replace(tmp, marker)  # whole: the test reads the name as soon as the marker exists
    while True:  # the test kills the process here
        time.sleep(3600)
