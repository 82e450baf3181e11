"""Checks compiled into the fewest queries: one fused aggregate per table, one query per key or reference."""

from gristmill.checks.compile import CheckQuery, compile_checks

__all__ = ["CheckQuery", "compile_checks"]
