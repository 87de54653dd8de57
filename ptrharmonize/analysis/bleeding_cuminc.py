"""Figure 3B: cumulative incidence of WHO grade 3-4 bleeding after CAR-T, PTR vs non-PTR.

Death before a grade 3-4 bleed is a competing event, so the incidence is the Aalen-Johansen
estimate (not 1 - Kaplan-Meier), compared with Gray's test (`stats.competing.cuminc`, as R
`cmprsk::cuminc(ftime, fstatus, group)` with failcode 1 = bleeding, 2 = death, 0 = censored).
Reported at `analysis.horizon_days` (30). Population: `sql/bleeding_cuminc.sql`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..stats.competing import cuminc
from . import _plots
from ._common import (
    GROUP_LABELS,
    PTR_GROUPS,
    AnalysisResult,
    Context,
    fmt,
    fmt_p,
    headline,
    not_estimable,
    num,
)

STATUS = {"censored": 0, "bleeding": 1, "death": 2}


def bleeding_cuminc(ctx: Context) -> AnalysisResult:
    horizon = float(ctx.params["horizon_days"])
    df = ctx.population("bleeding_cuminc").with_columns(
        group=pl.when(pl.col("ptr")).then(pl.lit("ptr")).otherwise(pl.lit("non_ptr")),
        status=pl.col("event_type").replace_strict(STATUS, default=None),
    )
    unknown = df.filter(pl.col("status").is_null())["event_type"].unique().to_list()
    if unknown:
        raise ValueError(f"patient_summary.event_type has unknown values: {unknown}")
    events = {
        g: {k: int(((df["group"] == g) & (df["event_type"] == k)).sum()) for k in STATUS}
        for g in PTR_GROUPS
    }
    n = {g: int((df["group"] == g).sum()) for g in PTR_GROUPS}
    if min(n.values()) == 0:
        return not_estimable("the CAR-T subgroup has no PTR or no non-PTR patient", n=n)
    res = dict(
        cuminc(
            df["event_time_days"].cast(pl.Float64).to_numpy(),
            df["status"].to_numpy().astype(np.int64),
            np.asarray(df["group"].to_list(), dtype=object),
            horizon,
        )
    )
    data = num({**res, "horizon_days": horizon, "n": n, "events": events,
                "failcode": "bleeding", "competing": "death", "groups_order": list(PTR_GROUPS)})
    cif = data.get("cif_at_horizon") or {}
    table = pl.DataFrame(
        {
            "group": [GROUP_LABELS[g] for g in PTR_GROUPS],
            "n": [n[g] for g in PTR_GROUPS],
            "grade_3_4_bleeding": [events[g]["bleeding"] for g in PTR_GROUPS],
            "death_first": [events[g]["death"] for g in PTR_GROUPS],
            "censored": [events[g]["censored"] for g in PTR_GROUPS],
            f"cif_day_{horizon:g}": [fmt(cif.get(g), 4) for g in PTR_GROUPS],
            "gray_statistic": [fmt(data.get("statistic"), 4), ""],
            "p_value": [fmt_p(data.get("p_value")), ""],
        }
    )

    def figure():
        return _plots.cuminc_curves(
            {g: data["curves"][g] for g in PTR_GROUPS if g in (data.get("curves") or {})},
            GROUP_LABELS, horizon, data.get("p_value"),
            "Grade 3-4 bleeding after CAR-T (death as competing event)",
            "Cumulative incidence of grade 3-4 bleeding",
        )

    label = f"Fig 3B: grade 3-4 bleeding CIF day {horizon:g}: " + " vs ".join(
        fmt(cif.get(g), 2) or "n/a" for g in PTR_GROUPS
    )
    return AnalysisResult(data, table, figure, [headline(label, data, n)])
