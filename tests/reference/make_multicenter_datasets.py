"""Multi-center fixtures for the center-aware analyses (issue 18); output committed under data/.

Deterministic (numpy default_rng, fixed seeds), rounded so that R reads exactly what Python
reads. `make_multicenter.R` computes the R reference values from them.

- `mc_patients.csv`: 4 centers of different size, PTR rate and exposure mix; `car_t` and
  `crs3` (0/1) exposures, `ptr` (0/1) outcome, `temp` (peak temperature), `dose` (x10^11) and
  `units` (each center's own unit size).
- `mc_transfusions.csv`: 3-6 transfusions per patient (`patient`, `center`, `il6`, `cci`) with a
  patient-level random intercept, so the transfusions of one patient are correlated.

Usage: python tests/reference/make_multicenter_datasets.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "data"
CENTERS = {"A": (40, -0.4, 2.5), "B": (25, 0.3, 3.0), "C": (30, -1.0, 4.0), "D": (18, 0.8, 2.0)}


def _write(name: str, header: list[str], rows: list[list[object]]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / name).open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main() -> None:
    rng = np.random.default_rng(20261204)
    patients, transfusions = [], []
    for center, (n, base, unit_e11) in CENTERS.items():
        for i in range(n):
            pid = f"{center}{i:02d}"
            car_t = int(rng.random() < 0.6)
            crs3 = int(car_t and rng.random() < 0.5)
            eta = base + 1.2 * car_t + 1.0 * crs3 + rng.normal(0, 0.3)
            ptr = int(rng.random() < 1 / (1 + np.exp(-eta)))
            temp = round(38.5 + 0.6 * crs3 + 0.3 * ptr + rng.normal(0, 0.5), 2)
            dose = round(float(rng.gamma(4.0, 3.0 + 2.0 * ptr)), 2)
            units = round(dose / unit_e11)
            patients.append([center, pid, car_t, crs3, ptr, temp, dose, units])
            u = rng.normal(0, 2500)
            for j in range(int(rng.integers(3, 7))):
                il6 = round(float(np.exp(rng.normal(6.0, 1.5))), 1)
                cci = round(12000 - 0.35 * il6 + u + rng.normal(0, 3000), 1)
                transfusions.append([center, pid, f"{pid}-{j}", il6, cci])
    _write("mc_patients.csv", ["center", "patient", "car_t", "crs3", "ptr", "temp", "dose", "units"],
           patients)
    _write("mc_transfusions.csv", ["center", "patient", "transfusion", "il6", "cci"], transfusions)


if __name__ == "__main__":
    main()
