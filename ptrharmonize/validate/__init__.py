"""Validation: the engine and the thresholds file."""

from .engine import Engine, validate
from .issue_rows import ISSUE_SCHEMA, RULE_RESULT_SCHEMA
from .result import ValidationResult

__all__ = ["ISSUE_SCHEMA", "RULE_RESULT_SCHEMA", "Engine", "ValidationResult", "validate"]
