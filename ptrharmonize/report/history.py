"""A center's submissions over time: rows, findings, rules over tolerance, and what changed.

The store keeps every submission (`submissions`, with its row counts and finding counts), every
submission's rule results (`rule_results`), and one digest per stored row (`submission_rows`,
written by the ingest), also after a newer submission superseded it. From these, for each
center and each submission after the first:

- rows added, removed and changed, by the table's key (`schemas/tables/*.yaml` `key`): a key
  new in this submission is added, gone is removed, present in both with other cell values is
  changed. A table without a key has no row identity: its rows are compared as whole rows, so an
  edited row counts as one removed and one added, and `changed` stays 0 for it;
- rules newly over tolerance (status `failed` now, not in the previous submission) and rules
  fixed (the reverse).

Submissions stored before the ingest kept digests have only their row counts: the change is
then the net difference, and the entry says so. Used by the QA report (`history.html.j2`) and
by `ptrh diff` (commands/diff.py); nothing here formats for a screen.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from .. import db

TREND_SERIES = (  # (key, label, colour, dash, marker): colours AA on white, told apart by dash and marker too
    ("rows", "rows", "#1a5690", None, "●"),
    ("errors", "errors", "#b3261e", "6 3", "■"),
    ("warnings", "warnings", "#7a4f00", "2 3", "▲"),
)


def _relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in db.rows(con, "SELECT table_name FROM duckdb_tables() UNION ALL "
                                       "SELECT view_name FROM duckdb_views()")}


def _row_counts(text: Any) -> dict[str, int]:
    if not text:
        return {}
    try:
        doc = json.loads(text) if isinstance(text, str) else dict(text)
    except (TypeError, ValueError):
        return {}
    return {str(k): int(v or 0) for k, v in doc.items()}


def _row_changes(con: duckdb.DuckDBPyConnection, old: str, new: str) -> dict[str, dict[str, int]]:
    """Per table: rows added, removed, changed from `old` to `new` (submission ids)."""
    sql = """
    WITH o AS (SELECT "table", row_key, row_digest, count(*) AS n FROM submission_rows
               WHERE submission_id = ? GROUP BY ALL),
         n AS (SELECT "table", row_key, row_digest, count(*) AS n FROM submission_rows
               WHERE submission_id = ? GROUP BY ALL),
         ok AS (SELECT "table", row_key, sum(n) AS n, min(row_digest) AS d, max(row_digest) AS d2
                FROM o GROUP BY ALL),
         nk AS (SELECT "table", row_key, sum(n) AS n, min(row_digest) AS d, max(row_digest) AS d2
                FROM n GROUP BY ALL)
    SELECT coalesce(ok."table", nk."table") AS t,
           sum(CASE WHEN ok.row_key IS NULL THEN nk.n ELSE greatest(nk.n - ok.n, 0) END) FILTER (WHERE nk.row_key IS NOT NULL) AS added,
           sum(CASE WHEN nk.row_key IS NULL THEN ok.n ELSE greatest(ok.n - nk.n, 0) END) FILTER (WHERE ok.row_key IS NOT NULL) AS removed,
           count(*) FILTER (WHERE ok.row_key IS NOT NULL AND nk.row_key IS NOT NULL
                            AND (ok.d <> nk.d OR ok.d2 <> nk.d2)) AS changed
    FROM ok FULL JOIN nk ON ok."table" = nk."table" AND ok.row_key = nk.row_key
    GROUP BY 1 ORDER BY 1
    """
    out = {}
    for t, added, removed, changed in db.rows(con, sql, [old, new]):
        out[t] = {"added": int(added or 0), "removed": int(removed or 0), "changed": int(changed or 0)}
    return out


def _digests(con: duckdb.DuckDBPyConnection, sid: str, counts: dict[str, int]) -> str | None:
    """How this submission's rows were digested, when every table with rows has its digests,
    made one way ("" for a submission without rows); None otherwise (stored before the store
    kept digests). Rows digested before `method` existed were MD5s of the cells' text."""
    cols = {r[0] for r in db.rows(con, "SELECT column_name FROM (DESCRIBE submission_rows)")}
    method = "coalesce(method, 'md5-text')" if "method" in cols else "'md5-text'"
    got = {t: (n, k, m) for t, n, k, m in db.rows(
        con, f"SELECT \"table\", count(*), count(DISTINCT {method}), min({method}) "
             "FROM submission_rows WHERE submission_id = ? GROUP BY 1", [sid])}
    methods = set()
    for t, n in counts.items():
        if not n:
            continue
        if t not in got or got[t][0] != n or got[t][1] != 1:
            return None
        methods.add(got[t][2])
    if len(methods) > 1:
        return None
    return methods.pop() if methods else ""


def center_history(con: duckdb.DuckDBPyConnection, center: str) -> list[dict[str, Any]]:
    """The center's submissions in the order they were stored, each with its changes since the
    one before (`changes` is None for the first)."""
    rels = _relations(con)
    subs = db.rows(con, "SELECT submission_id, submitted_at, status, row_counts, n_errors, n_warnings "
                        "FROM submissions WHERE center_id = ? ORDER BY submitted_at, submission_id", [center])
    rules: dict[str, dict[str, dict[str, Any]]] = {}
    if "rule_results" in rels:
        for sid, rid, sev, checked, failed, status in db.rows(
                con, "SELECT submission_id, rule_id, severity, checked, failed, status FROM rule_results "
                     "WHERE center_id = ?", [center]):
            rules.setdefault(sid, {})[rid] = {"rule_id": rid, "severity": sev, "checked": int(checked or 0),
                                               "failed": int(failed or 0), "status": status}
    digests = "submission_rows" in rels
    out: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    for sid, at, status, row_counts, n_err, n_warn in subs:
        counts = _row_counts(row_counts)
        mine = rules.get(sid, {})
        failing = sorted(
            ({**r, "fraction": r["failed"] / r["checked"] if r["checked"] else 0.0}
             for r in mine.values() if r["status"] == "failed" or r["failed"] > 0),
            key=lambda r: (r["status"] != "failed", r["severity"] != "error", -r["fraction"], r["rule_id"]))
        entry: dict[str, Any] = {
            "submission_id": sid, "submitted_at": str(at)[:19], "status": status,
            "rows": sum(counts.values()), "rows_by_table": counts,
            "errors": int(n_err or 0), "warnings": int(n_warn or 0),
            "failing": failing, "changes": None,
        }
        if prev is not None:
            before = rules.get(prev["submission_id"], {})
            over_now = {k for k, r in mine.items() if r["status"] == "failed"}
            over_before = {k for k, r in before.items() if r["status"] == "failed"}
            ch: dict[str, Any] = {
                "previous": prev["submission_id"],
                "newly_failing": [{"rule_id": k, "severity": mine[k]["severity"]} for k in sorted(over_now - over_before)],
                "fixed": [{"rule_id": k, "severity": before[k]["severity"]} for k in sorted(over_before - over_now)],
                "rows_net": entry["rows"] - prev["rows"],
            }
            now_m = _digests(con, sid, counts) if digests else None
            before_m = _digests(con, prev["submission_id"], prev["rows_by_table"]) if digests else None
            if now_m is not None and now_m == before_m:
                by_table = _row_changes(con, prev["submission_id"], sid)
                ch.update(rows_known=True, by_table=by_table,
                          rows_added=sum(x["added"] for x in by_table.values()),
                          rows_removed=sum(x["removed"] for x in by_table.values()),
                          rows_changed=sum(x["changed"] for x in by_table.values()))
            else:
                ch.update(rows_known=False, by_table={}, rows_added=None, rows_removed=None, rows_changed=None,
                          rows_note=("row-level changes unknown: a submission was stored before the store kept "
                                     "row digests; only the row counts are compared")
                          if now_m is None or before_m is None else
                          ("row-level changes unknown: the two submissions' rows were digested differently "
                           "(another DuckDB version, or an earlier ptrh); only the row counts are compared"))
            entry["changes"] = ch
        out.append(entry)
        prev = entry
    return out


def history(con: duckdb.DuckDBPyConnection, centers: list[str]) -> dict[str, list[dict[str, Any]]]:
    if "submissions" not in _relations(con):
        return {}
    return {c: center_history(con, c) for c in centers}


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 5 x 10^k (k >= 0) at or above `value`: an axis maximum a reader can
    take in at a glance (0 for an all-zero series still gets an axis up to 1)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def trend_scales(histories: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """One axis maximum per measure, shared by every center of the report, so that the same
    height means the same count in each center's figure (a data manager compares centers)."""
    return {key: nice_ceiling(max((int(s[key]) for subs in histories.values() for s in subs), default=0))
            for key, *_ in TREND_SERIES}


def trend(center: str, subs: list[dict[str, Any]], index: int,
          scales: dict[str, int] | None = None) -> dict[str, Any] | None:
    """Coordinates for the small trend figure (trend.svg.j2): small multiples, one panel per
    measure (rows, errors, warnings), each with a labelled y axis from 0 to the measure's
    maximum in `scales` (shared by the centers of a report; this center's own by default) and
    one point per submission on a labelled x axis. Counts that differ by orders of magnitude
    are never drawn on one axis, and no series is stretched to its own range."""
    if len(subs) < 2:
        return None
    scales = scales or trend_scales({center: subs})
    width, height, gap, left, top, bottom = 560, 170, 14, 44, 20, 34
    pw = (width - left * len(TREND_SERIES) - gap * (len(TREND_SERIES) - 1)) / len(TREND_SERIES)
    ph = height - top - bottom
    n = len(subs)
    panels = []
    for j, (key, label, colour, dash, marker) in enumerate(TREND_SERIES):
        x0 = left + j * (pw + left + gap)
        top_value = max(scales.get(key, 0), nice_ceiling(max(int(s[key]) for s in subs)))

        def y(v: float, top_value: int = top_value) -> float:
            return round(top + ph - ph * v / top_value, 1)

        pts = [{"x": round(x0 + 10 + (pw - 20) * i / (n - 1), 1), "y": y(int(s[key])), "value": int(s[key])}
               for i, s in enumerate(subs)]
        panels.append({
            "key": key, "label": label, "colour": colour, "dash": dash, "marker": marker, "points": pts,
            "x0": round(x0, 1), "max": top_value,
            "yticks": [{"y": y(v), "value": v} for v in (0, top_value / 2, top_value)
                       if v == int(v)],
            "xticks": [{"x": p["x"], "label": f"#{i + 1}"} for i, p in enumerate(pts)],
        })
    last = subs[-1]
    alt = (f"Trend over {n} submissions of {center}, one panel per count, each axis from 0 and the same for "
           f"every center of this report: rows {subs[0]['rows']:,} to {last['rows']:,} (axis to "
           f"{panels[0]['max']:,}), errors {subs[0]['errors']:,} to {last['errors']:,} (axis to "
           f"{panels[1]['max']:,}), warnings {subs[0]['warnings']:,} to {last['warnings']:,} (axis to "
           f"{panels[2]['max']:,}).")
    return {"id": index, "width": width, "height": height, "top": top, "plot_w": round(pw, 1), "plot_h": ph,
            "panels": panels, "alt": alt}
