"""Center mappings: a declarative YAML file per center (`mappings/<center>.yaml`) that says how
to read that center's own files into the common data model. See docs/mappings.md.

One job per module: `language` (vocabulary, YAML loader, safe paths), `model` (the parsed form,
and the CDM roles read from `schemas/`), `parse` and `checks` (a mapping into its parsed form,
every problem that needs no data), `lint` (with the data too), `values`, `dates` and `measure`
(expressions for codes, numbers, dates and units), `plan` (one block's lazy query), `readers`
(opening the block's file lazily), `apply` (a submission folder through its mapping), and the
drafters `draft` (from a scan) and `draft_redcap` (from a REDCap export's data dictionary).

Everything in a mapping is data: source column names are looked up literally (never as regular
expressions or code), and nothing from a mapping is ever put into SQL.
"""

from .apply import apply_mapping, mapped_files
from .dates import date_format_problem
from .language import MappingError, check_relative_path, load_mapping, resolve_in, text_of
from .lint import lint_mapping, source_columns
from .model import ColumnMap, Mapping, SourceBlock, ValueMap, roles
from .parse import parse_mapping

__all__ = [
    "ColumnMap", "Mapping", "MappingError", "SourceBlock", "ValueMap", "apply_mapping", "check_relative_path",
    "date_format_problem", "lint_mapping", "load_mapping", "mapped_files", "parse_mapping", "resolve_in", "roles",
    "source_columns", "text_of",
]
