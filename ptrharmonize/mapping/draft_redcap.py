"""Draft a mapping from a REDCap project export (`ptrh mapping draft` on a folder that holds one).

A REDCap export says more than a scan can guess: the data dictionary gives every field's form,
type, label, choices (code, label) and validation. So each form (instrument) is proposed as a
CDM table (by its name against the onboarding lexicon), each field as a CDM column (by its
label, then its values as the scan profiles them), and the dictionary settles what the values
cannot: a dropdown's or radio's codes are mapped through their labels, a yes/no field is 1/0, a
checkbox choice is its own `field___code` column (1 checked, 0 not; a choice coded 0 is
`field___0`), dates are YYYY-MM-DD in every raw export whatever their date_dmy/date_mdy display,
a `number_comma_decimal` field has a decimal comma, and the record id (the dictionary's first
field) is the patient. The data access group, when exported, is proposed as the center.
Every proposal keeps its evidence and confidence, as in the scan-based draft (`draft.py`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ..read.redcap import (
    DICTIONARY_COLUMNS,
    Dictionary,
    Field,
    checkbox_column,
    read_dictionary,
    read_redcap,
)
from ..scan.match import Proposal, _values, assign_columns, best_term
from ..scan.profile import FileProfile, profile_column
from .draft import TODO, _q
from .language import CENTER_COLUMN

DAG = "redcap_data_access_group"
DATE_FORMAT = "%Y-%m-%d"  # REDCap's raw export of every date field
TIMESTAMP_FORMATS = ["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
YESNO = {"1": True, "0": False}


@dataclass
class Export:
    """The files of one REDCap project export in a center's folder."""

    records: Path
    dictionary: Path
    events: Path | None
    dd: Dictionary


def _header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
            return [h.strip() for h in next(csv.reader(fh), [])]
    except (OSError, csv.Error):
        return []


def find_export(folder: Path) -> Export | None:
    """The REDCap export in `folder`: a data dictionary (REDCap's download or the API's metadata
    header), the records file whose first column is the dictionary's record id, and, if there,
    the instrument-event mapping. None when the folder holds no dictionary."""
    headers = {p: _header(p) for p in sorted(Path(folder).rglob("*.csv"))}
    names = [(DICTIONARY_COLUMNS[k][0], DICTIONARY_COLUMNS[k][1]) for k in ("name", "form", "type")]
    dd_path = next((p for p, h in headers.items() if all(a in h or b in h for a, b in names)), None)
    if dd_path is None:
        return None
    dd = read_dictionary(dd_path, folder)
    records = next((p for p, h in headers.items() if p != dd_path and h[:1] == [dd.record_id]), None)
    events = next((p for p, h in headers.items() if {"unique_event_name", "form"} <= set(h)), None)
    return Export(records, dd_path, events, dd) if records is not None else None


def _rel(path: Path, folder: Path) -> str:
    return path.resolve().relative_to(Path(folder).resolve()).as_posix()


# ---------------------------------------------------------------------------------- one form


@dataclass
class Source:
    """A records-file column as the draft sees it: its field, and the choice for a checkbox."""

    column: str
    label: str
    field: Field
    choice: tuple[str, str] | None = None


def _sources(dd: Dictionary, form: str, frame: pl.DataFrame) -> list[Source]:
    rid = dd.fields[0]
    out = [Source(rid.name, rid.label or "record id", rid)]
    for f in dd.of_form(form):
        if f.type == "checkbox":
            out += [Source(checkbox_column(f.name, c), f"{label} {f.label}", f, (c, label)) for c, label in f.choices]
        label = f"{f.label} ({f.note})" if f.note else f.label
        out.append(Source(f.name, label or f.name, f))
    return [s for s in out if s.column in frame.columns]


def _kind(prof: Any, f: Field) -> None:
    """What the dictionary says about a field's values, over what the scan inferred."""
    v = f.validation
    if v.startswith("datetime"):
        prof.kind, prof.date_format = "timestamp", TIMESTAMP_FORMATS[1 if "seconds" in v else 0]
    elif v.startswith("date"):
        prof.kind, prof.date_format = "date", DATE_FORMAT
    elif v == "integer" and prof.kind != "empty":
        prof.kind = "integer"


def _profile(frame: pl.DataFrame, file: str, sources: list[Source], lexicon: dict[str, Any],
             min_count: int) -> FileProfile:
    profiles = []
    for i, s in enumerate(sources):
        prof = profile_column(frame.get_column(s.column), file, None, s.label, i + 1, lexicon, min_count)
        _kind(prof, s.field)
        profiles.append(prof)
    return FileProfile(file, None, "redcap", 1, frame.height, profiles)


def _choice_values(p: Proposal, spec: Any, s: Source, lexicon: dict[str, Any]) -> str:
    """Values of a choice field through its labels (code -> CDM code); returns the evidence."""
    f = s.field
    if s.choice is not None and spec.type != "boolean":
        return ""
    if spec.type == "boolean" and (f.type in ("yesno", "truefalse") or s.choice is not None):
        p.values, p.unmatched_values = dict(YESNO), []
        return f"{'checkbox choice ' + s.choice[0] + ' (' + s.choice[1] + ')' if s.choice else f.type} field: 1 = yes, 0 = no"
    if not f.choices:
        return ""
    if spec.type in ("integer", "decimal"):
        p.values = {c: label for c, label in f.choices if c != label}
        p.unmatched_values = []
        return f"{f.type} field: codes are their labels" if not p.values else f"{f.type} field: codes -> labels"
    probe = Proposal(p.cdm_column, p.source, p.confidence)
    probe.source = type(p.source)(**{**p.source.__dict__, "values": [label for _, label in f.choices]})
    _values(probe, spec, probe.source, lexicon)
    p.values = {c: probe.values[label] for c, label in f.choices if label in probe.values}
    p.unmatched_values = [c for c, label in f.choices if label not in probe.values]
    return f"{f.type} field: its codes mapped through their labels ({len(p.values)} of {len(f.choices)})"


def _column_line(p: Proposal, spec: Any, s: Source, extra: str) -> str:
    parts = [f"column: {_q(s.column)}"]
    if p.unit:
        parts.append(f"unit: {_q(p.unit)}")
    if "comma_decimal" in s.field.validation:
        parts.append('decimal: ","')
    if p.values or p.unmatched_values:
        vals = {**{k: v for k, v in p.values.items()}, **dict.fromkeys(p.unmatched_values, TODO)}
        parts.append("values: {" + ", ".join(f"{_q(k)}: {_q(v) if not isinstance(v, bool) else str(v).lower()}"
                                             for k, v in vals.items()) + "}")
    why = "; ".join([*p.evidence, *([extra] if extra else [])])
    if p.unit_evidence:
        why += f"; unit: {p.unit_evidence}"
    if p.unmatched_values:
        why += f"; {len(p.unmatched_values)} code(s) to map by hand ({TODO})"
    return f"      {p.cdm_column}: {{{', '.join(parts)}}}   # {why} ({p.confidence:.2f})"


# ---------------------------------------------------------------------------------- tables


@dataclass
class FormDraft:
    form: str
    table: str
    score: float
    evidence: str
    lines: list[str]


def _form_table(form: str, catalog: Any, lexicon: dict[str, Any], taken: set[str]) -> tuple[str | None, float, str]:
    best: tuple[str | None, float, str] = (None, 0.0, "")
    for table, terms in (lexicon.get("tables") or {}).items():
        if table not in catalog.tables or table in taken:
            continue
        s, term = best_term(form.replace("_", " "), terms)
        if s > best[1]:
            best = (table, s, f"form '{form}' matches '{term}'")
    return best


def _patient_column(catalog: Any, table: str) -> str | None:
    """The CDM column a record id fills: the patient table's key (read from schemas/: the table
    a table references, or its own key), without the center."""
    spec = catalog.tables[table]
    key = catalog.tables[spec.references].key if spec.references in catalog.tables else spec.key
    return next((k for k in key if k != CENTER_COLUMN), None)


def _draft_form(export: Export, folder: Path, form: str, table: str, catalog: Any, lexicon: dict[str, Any],
                min_count: int, center_id: str, several: bool = False) -> list[str]:
    from ..read.bounded import bounded

    file = _rel(export.records, folder)
    # Bounded in time and memory like every reader (read.bounded).
    # Absolute paths: the reader reads a relative dictionary name as the mapping's (inside the
    # folder), which a folder given as a relative path (`ptrh mapping draft exp`) would repeat.
    frame = bounded(file, read_redcap, export.records.resolve(), folder.resolve(), form=form,
                    dictionary=export.dictionary.resolve(), events=export.events.resolve() if export.events else None)
    sources = _sources(export.dd, form, frame)
    fp = _profile(frame, file, sources, lexicon, min_count)
    specs = catalog.tables[table].columns
    by_label = {prof.column: s for prof, s in zip(fp.columns, sources, strict=True)}
    proposals = assign_columns(fp, specs, lexicon)
    patient = _patient_column(catalog, table)
    if patient and not any(p.cdm_column == patient for p in proposals):
        proposals.insert(0, Proposal(patient, fp.columns[0], 0.9, ["the record id (the dictionary's first field)"]))
    lines = [f"    form: {_q(form)}", "    columns:", *_center_line(frame, center_id, several)]
    spec_of = {c.name: c for c in specs}
    for p in proposals:
        s = by_label[p.source.column]
        extra = _choice_values(p, spec_of[p.cdm_column], s, lexicon) if spec_of[p.cdm_column].type != "text" else ""
        lines.append(_column_line(p, spec_of[p.cdm_column], s, extra))
    return lines + _left_over(specs, proposals, sources, by_label)


def _groups(records: Path) -> list[str]:
    """The data access groups the records file names (its `redcap_data_access_group` column)."""
    try:
        with records.open(encoding="utf-8-sig", newline="") as fh:
            rows = csv.reader(fh)
            header = next(rows, [])
            if DAG not in header:
                return []
            at = header.index(DAG)
            return sorted({r[at].strip() for r in rows if at < len(r) and r[at].strip()})
    except (OSError, UnicodeDecodeError, csv.Error):
        return []  # the form reader reports an unreadable file


def _center_line(frame: pl.DataFrame, center_id: str, several: bool = False) -> list[str]:
    """The data access group as the center (one group: this center; several: the export's
    value map `dag`, each group TODO: a group's center is never guessed)."""
    if DAG not in frame.columns:
        return []
    if several:
        return [f"      {CENTER_COLUMN}: {{column: {DAG}, values: dag}}   # the data access group is the center "
                "(several groups: value_maps.dag)"]
    dags = sorted(set(frame.get_column(DAG).drop_nulls().to_list()))
    vals = {d: (center_id if len(dags) == 1 else TODO) for d in dags}
    return [f"      {CENTER_COLUMN}: {{column: {DAG}, values: {{" + ", ".join(f"{_q(k)}: {_q(v)}" for k, v in vals.items())
            + "}}   # the data access group is the center" + (" (one group in the export)" if len(dags) == 1 else "")]


def _left_over(specs: list[Any], proposals: list[Proposal], sources: list[Source], by_label: dict[str, Source]) -> list[str]:
    out = []
    done = {p.cdm_column for p in proposals} | {CENTER_COLUMN}
    todo = [c.name for c in specs if c.name not in done]
    if todo:
        out.append(f"      # {TODO}: no field proposed for: {', '.join(todo)}")
    used = {by_label[p.source.column].column for p in proposals}
    rest = [s.column for s in sources if s.column not in used]
    if rest:
        out.append(f"      # fields left unmapped: {', '.join(rest)}")
    return out


def draft_redcap(center_id: str, folder: Path, export: Export, catalog: Any, lexicon: dict[str, Any],
                 min_count: int = 5) -> str:
    """The draft mapping of a REDCap export, as YAML text."""
    folder = Path(folder)
    groups = _groups(export.records)
    several = len(groups) > 1
    # An export of several data access groups: one submission per center (mapping/centers.py),
    # each row's center its group's, so no top-level center_id; each group's center is the
    # coordinator's to write (never the --center-id guessed for all of them).
    top = ([f"# center_id: none here: the export holds {len(groups)} data access groups, each row's center is its",
            "# group's (value_maps.dag; docs/redcap.md, an export of several data access groups)"] if several
           else [f"center_id: {_q(center_id)}"])
    lines = [
        f"# Draft mapping for center {center_id}, written by `ptrh mapping draft` from the REDCap export in",
        f"# {folder.name}/ (records, data dictionary{', instrument-event mapping' if export.events else ''}). Each",
        "# line is a proposal with its evidence and confidence (0-1): check each one. TODO marks what the",
        "# draft could not decide; `ptrh mapping check THIS_FILE --data FOLDER` lists every TODO left.",
        "", "mapping_version: 1", *top, f"center_name: {_q(TODO)}", "", "defaults:",
        "  format: redcap",
        f"  dictionary: {_q(_rel(export.dictionary, folder))}",
    ]
    if export.events is not None:
        lines.append(f"  events: {_q(_rel(export.events, folder))}")
    lines += [f"  date_format: {_q(DATE_FORMAT)}          # REDCap exports dates as YYYY-MM-DD, whatever the form shows",
              f"  timestamp_format: [{', '.join(_q(f) for f in TIMESTAMP_FORMATS)}]", ""]
    if several:
        lines += ["value_maps:", "  dag: {" + ", ".join(f"{_q(g)}: {_q(TODO)}" for g in groups)
                  + "}   # data access group -> its center's consortium code", ""]
    lines += ["tables:"]
    taken: set[str] = set()
    unplaced = []
    for form in export.dd.forms():
        table, score, why = _form_table(form, catalog, lexicon, taken)
        if table is None:
            unplaced.append(form)
            continue
        taken.add(table)
        lines += ["", f"  {table}:                 # {why} ({score:.2f})", f"    file: {_q(_rel(export.records, folder))}"]
        lines += _draft_form(export, folder, form, table, catalog, lexicon, min_count, center_id, several)
    if unplaced:
        lines += ["", "# Forms the draft did not place in any CDM table:"] + [f"#   {f}" for f in unplaced]
    missing = [t for t in catalog.table_names if t not in taken]
    if missing:
        lines += ["", "# CDM tables no form matched (not collected, or name them above):"] + [f"#   {t}" for t in missing]
    return "\n".join(lines) + "\n"
