"""Renderers: they turn the engine's tables (issues, rule results, analysis results) into text,
JSON, CSV and HTML. Nothing here computes a finding."""
