"""Validation: the engine and the thresholds file."""

from .engine import ISSUE_SCHEMA, RULE_RESULT_SCHEMA, Engine, ValidationResult, validate

__all__ = ["ISSUE_SCHEMA", "RULE_RESULT_SCHEMA", "Engine", "ValidationResult", "validate"]
