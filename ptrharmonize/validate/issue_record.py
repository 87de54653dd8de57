"""The issue record: one definition of an issue, which every output renders.

The engine finds issues in CDM terms (table, column, the staged file's row). Here each gets what
a nurse needs to find and fix the cell, and what the coordinator needs apart from it:

- `sheet` and `place`: the workbook's sheet, and "row 5" (SPSS: "case 4", its record number);
- `patient_id`: the center's own patient code of that row (the identifier redaction runs over
  it afterwards, like over `value`: a code that is an identity number is never shown);
- `source_column`: the center's own header of the column;
- `message`: in the center's language (the mapping's `language:`), in its words and codes
  ("Geslacht moet een van M, V, O zijn"), from the message catalog (validate/messages.py);
- `hint`: for the coordinator only (CDM column, mapping advice), never inside the message.

The terminal, JSON, CSV, XLSX, HTML and the store all carry exactly ISSUE_RECORD's fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..cdm import FILE_COL, ROW_COL, Catalog
from ..messages import DEFAULT_LANGUAGE, Speaker
from .checks import fmt_num

ISSUE_RECORD: dict[str, pl.DataType] = {
    "rule_id": pl.Utf8(),
    "severity": pl.Utf8(),
    "table": pl.Utf8(),
    "file": pl.Utf8(),
    "sheet": pl.Utf8(),
    "row": pl.Int64(),
    "place": pl.Utf8(),
    "patient_id": pl.Utf8(),
    "column": pl.Utf8(),
    "source_column": pl.Utf8(),
    "value": pl.Utf8(),
    "message": pl.Utf8(),
    "hint": pl.Utf8(),
}
FIELDS: list[str] = list(ISSUE_RECORD)
PATIENT_COLUMN = "patient_id"  # the CDM column holding the center's pseudonymous patient code
STRFTIME_WORDS = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%y": "YY", "%H": "hh", "%M": "mm", "%S": "ss",
                  "%b": "Mon", "%B": "Month", "%j": "DDD", "%I": "hh", "%p": "AM/PM"}
ISO = {"date": "YYYY-MM-DD", "timestamp": "YYYY-MM-DDThh:mm:ss"}


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=ISSUE_RECORD)


def human_format(fmt: str) -> str:
    """`%d.%m.%Y %H:%M` -> `DD.MM.YYYY hh:mm`: how a nurse reads a date format."""
    for k, v in STRFTIME_WORDS.items():
        fmt = fmt.replace(k, v)
    return fmt.replace("%%", "%")


@dataclass
class CenterTerms:
    """What a center's mapping says about its own words: headers, codes, formats, places."""

    language: str = DEFAULT_LANGUAGE
    headers: dict[str, dict[str, str]] = field(default_factory=dict)     # table -> CDM column -> header
    codes: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # table -> column -> code -> written
    formats: dict[tuple[str, str], str] = field(default_factory=dict)   # (table, column) -> strftime
    places: list[dict[str, str | None]] = field(default_factory=list)   # table, file, sheet, format


def center_terms(mapping_file: Path | None, catalog: Catalog) -> CenterTerms:
    """One parse of the mapping (none for a submission in the CDM's own columns)."""
    if mapping_file is None:
        return CenterTerms()
    from ..mapping.language import load_mapping
    from ..mapping.model import roles
    from ..mapping.parse import parse_mapping
    from ..read import format_of

    doc = load_mapping(Path(mapping_file))
    m = parse_mapping(doc, Path(mapping_file), catalog)
    lang = doc.get("language")
    out = CenterTerms(language=lang if isinstance(lang, str) and lang.strip() else DEFAULT_LANGUAGE)
    measurement = roles(catalog).measurement
    for b in m.blocks:
        heads = out.headers.setdefault(b.table, {})
        for name, cm in b.columns.items():
            if cm.column and name not in heads:
                heads[name] = cm.column
            if cm.values is not None and cm.values.written:
                spelled = out.codes.setdefault(b.table, {}).setdefault(name, {})
                for written, target in cm.values.written:
                    if target is not None:
                        spelled.setdefault(str(target), str(written))
            fmts = cm.formats or (b.timestamp_formats if _is_type(catalog, b.table, name, "timestamp")
                                  else b.date_formats if _is_type(catalog, b.table, name, "date") else None)
            if fmts:
                out.formats.setdefault((b.table, name), fmts[0])
        if b.unpivot and measurement is not None:
            heads.setdefault(measurement.value, " / ".join(cm.column for cm in b.unpivot.values() if cm.column))
        try:
            fmt = format_of(Path(b.file), b.fmt)
        except Exception:  # noqa: BLE001 - an unknown format is the mapping check's to report
            fmt = None
        sheet = b.reader_options.get("sheet")
        out.places.append({"table": b.table, "file": b.file, "sheet": None if sheet is None else str(sheet),
                           "format": fmt})
    return out


def _is_type(catalog: Catalog, table: str, column: str, kind: str) -> bool:
    spec = catalog.tables.get(table)
    return spec is not None and column in spec.column_names and spec.column(column).type == kind


class _Headers:
    """`{col.X}` in a message: the center's header of column X of the table, else its label in
    the message's language."""

    def __init__(self, table: str, terms: CenterTerms, catalog: Catalog, speaker: Speaker) -> None:
        self._t, self._terms, self._cat, self._speaker = table, terms, catalog, speaker

    def __getattr__(self, name: str) -> str:
        return _header(self._t, name, self._terms, self._cat, self._speaker)


def _header(table: str, column: str | None, terms: CenterTerms, catalog: Catalog, speaker: Speaker) -> str:
    """The center's header of a column; for a column its mapping does not map, the CDM column's
    label in the speaker's language (`Speaker.label`: the language's `terms.labels`, else the
    CDM's English label), never the English label inside a translated message."""
    if not column:
        return ""
    own = terms.headers.get(table, {}).get(column)
    if own:
        return own
    spec = catalog.tables.get(table)
    if terms.headers and spec is not None and column in spec.column_names:
        return speaker.label(table, column, spec.column(column).label)  # mapped center, unmapped column
    return column


def message_fields(rule: Any, table: str, column: str | None, terms: CenterTerms, catalog: Catalog,
                   speaker: Speaker) -> dict[str, Any]:
    """The placeholders of one rule's message and hint (messages/en.yaml names them)."""
    spec_t = catalog.tables.get(table)
    spec = spec_t.column(column) if spec_t is not None and column and column in spec_t.column_names else None
    attrs = dict(spec.attrs) if spec is not None else {}
    cdm_codes = [str(c) for c in attrs.get("codes") or []]
    own = terms.codes.get(table, {}).get(column or "", {})
    codes = ", ".join(own.get(c, c) for c in cdm_codes)
    fields: dict[str, Any] = {
        "column": _header(table, column, terms, catalog, speaker),
        "col": _Headers(table, terms, catalog, speaker),
        "label": speaker.label(table, spec.name, spec.label) if spec is not None else (column or ""),
        "table": speaker.term("tables", table),
        "cdm_column": f"{table}.{column}" if column else table,
        "cdm_codes": ", ".join(cdm_codes),
        "codes": codes,
        "rule_id": getattr(rule, "id", ""),
        "unit": speaker.term("units", spec.unit) if spec is not None and spec.unit else "",
    }
    for k in ("min", "max", "plausible_min", "plausible_max"):
        v = attrs.get(k)
        fields[k] = fmt_num(v) if isinstance(v, int | float) and not isinstance(v, bool) else ("" if v is None else v)
    if spec is not None:
        kind = spec.type
        fmt = terms.formats.get((table, spec.name))
        shape = human_format(fmt) if fmt else ISO.get(kind, "")
        if kind in ("boolean", "code") and own:
            fields["type_text"] = ", ".join(dict.fromkeys(own.values()))
        elif kind == "code" and codes:
            fields["type_text"] = codes
        else:
            fields["type_text"] = Speaker.fill(speaker.term("types", kind), {"format": shape})
        if kind == "boolean" and own:
            fields["codes"] = ", ".join(dict.fromkeys(own.values()))
    return fields


def _texts(issues: pl.DataFrame, rules: dict[str, Any], terms: CenterTerms, catalog: Catalog,
           speaker: Speaker) -> pl.DataFrame:
    """message and hint per distinct (rule_id, table, column, engine message)."""
    keys = issues.select("rule_id", "table", "column", "message").unique(maintain_order=True)
    english = Speaker(speaker.root)
    rows = []
    for rid, table, column, msg in keys.iter_rows():
        rule = rules.get(rid)
        names = [rid] + ([rule.check] if rule is not None else [])
        m_t, h_t = speaker.template(names, "message"), speaker.template(names, "hint")
        hint = None
        if h_t:  # the coordinator's words: English terms
            hint = Speaker.fill(h_t, message_fields(rule, table, column, terms, catalog, english))
        rows.append({"rule_id": rid, "table": table, "column": column, "message": msg,
                     "_message": Speaker.fill(m_t, message_fields(rule, table, column, terms, catalog, speaker))
                     if m_t else msg, "hint": hint})
    return pl.DataFrame(rows, schema={"rule_id": pl.Utf8, "table": pl.Utf8, "column": pl.Utf8, "message": pl.Utf8,
                                      "_message": pl.Utf8, "hint": pl.Utf8})


def _patient_ids(issues: pl.DataFrame, staged: dict[str, Path]) -> pl.DataFrame:
    """(table, file, row, patient_id) of the located issues, read back from the staged rows."""
    parts = []
    located = issues.filter(pl.col("row").is_not_null())
    for table, keys in located.select("table", "file", "row").unique().group_by("table"):
        path = staged.get(str(table[0]))
        if path is None:
            continue
        lf = pl.scan_parquet(path, glob=False)
        if PATIENT_COLUMN not in lf.collect_schema().names():
            continue
        found = (lf.select(pl.col(FILE_COL).cast(pl.Utf8).alias("file"), pl.col(ROW_COL).cast(pl.Int64).alias("row"),
                           pl.col(PATIENT_COLUMN).cast(pl.Utf8).alias("patient_id"))
                 .join(keys.lazy().select("file", "row"), on=["file", "row"], how="semi")
                 .unique(["file", "row"], keep="first").collect())
        parts.append(found.with_columns(pl.lit(str(table[0])).alias("table")))
    if not parts:
        return pl.DataFrame(schema={"file": pl.Utf8, "row": pl.Int64, "patient_id": pl.Utf8, "table": pl.Utf8})
    return pl.concat(parts)


def _places(issues: pl.DataFrame, terms: CenterTerms, speaker: Speaker) -> pl.DataFrame:
    """`sheet` of a workbook's row and `place`: "row 5", or "case 4" for SPSS (records are
    numbered from 1 without a header line, the reader's row counts the header)."""
    places = pl.DataFrame(terms.places, schema={"table": pl.Utf8, "file": pl.Utf8, "sheet": pl.Utf8,
                                                "format": pl.Utf8})
    places = places.unique(["table", "file"], keep="first", maintain_order=True)
    out = issues.join(places, on=["table", "file"], how="left", maintain_order="left")

    def word(kind: str, n: pl.Expr) -> pl.Expr:
        before, _, after = speaker.term("place", kind, f"{kind} {{n}}").partition("{n}")
        return pl.concat_str([pl.lit(before), n.cast(pl.Utf8), pl.lit(after)])

    place = (pl.when(pl.col("row").is_null()).then(None)
             .when(pl.col("format") == "spss").then(word("case", pl.col("row") - 1))
             .otherwise(word("row", pl.col("row"))))
    return out.with_columns(place.alias("place")).drop("format")


def complete(issues: pl.DataFrame, rules: dict[str, Any], staged: dict[str, Path], catalog: Catalog,
             mapping_file: Path | None, terms: CenterTerms | None = None) -> pl.DataFrame:
    """The engine's issues (rule_id, severity, table, file, row, column, value, message) as
    ISSUE_RECORD rows: located, with the patient code, and worded for the center."""
    terms = terms or center_terms(mapping_file, catalog)
    speaker = Speaker(Path(catalog.root) if catalog.root else Path("."), terms.language)
    if issues.height == 0:
        return empty()
    out = issues.join(_texts(issues, rules, terms, catalog, speaker), on=["rule_id", "table", "column", "message"],
                      how="left", nulls_equal=True, maintain_order="left")
    out = out.with_columns(pl.coalesce("_message", "message").alias("message")).drop("_message")
    out = out.join(_patient_ids(issues, staged), on=["table", "file", "row"], how="left", maintain_order="left")
    heads = pl.DataFrame([{"table": t, "column": c, "source_column": s} for t, cols in terms.headers.items()
                          for c, s in cols.items()],
                         schema={"table": pl.Utf8, "column": pl.Utf8, "source_column": pl.Utf8})
    out = out.join(heads, on=["table", "column"], how="left", maintain_order="left")
    out = _places(out, terms, speaker)
    return out.select(FIELDS).cast(ISSUE_RECORD)


def column_wide_message(speaker_root: Path | str | None, language: str) -> str:
    """The template of a column-level issue (validate/collapse.py) in the center's language."""
    return Speaker(Path(speaker_root or "."), language).term("column_wide", "", "")
