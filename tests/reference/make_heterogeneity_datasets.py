"""Competing-risk data for Gray's test across centers within a group (issue 18); output
committed as data/het_bleeding.csv. Deterministic (numpy default_rng(1818)); integer days with
ties, as the registry's event times are. `make_heterogeneity.R` computes the R values.

Columns: center (A/B/C), group (ptr/non_ptr), time (days, 0..30), status (0 censored,
1 bleeding, 2 death). Center C bleeds more in the PTR group, so the test has something to find.

Usage: python tests/reference/make_heterogeneity_datasets.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "data" / "het_bleeding.csv"


def main() -> None:
    rng = np.random.default_rng(1818)
    rows = []
    for center, n, p_bleed in (("A", 22, 0.15), ("B", 16, 0.2), ("C", 14, 0.5)):
        for group in ("ptr", "non_ptr"):
            pb = p_bleed if group == "ptr" else 0.1
            for _ in range(n):
                u = rng.random()
                status = 1 if u < pb else 2 if u < pb + 0.12 else 0
                time = int(rng.integers(1, 31)) if status else int(rng.choice([30, 30, rng.integers(5, 31)]))
                rows.append([center, group, time, status])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["center", "group", "time", "status"])
        w.writerows(rows)


if __name__ == "__main__":
    main()
