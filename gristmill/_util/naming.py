"""Normalising names that come from outside systems into warehouse identifiers."""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_INVALID = re.compile(r"[^a-z0-9_]+")


def snake_case(name: str) -> str:
    """``InvoiceLineId`` -> ``invoice_line_id``; ``Billing Country`` -> ``billing_country``."""
    spaced = _BOUNDARY.sub("_", name.strip())
    lead = "_" * (len(name.strip()) - len(name.strip().lstrip("_")))  # _gm_op stays _gm_op
    cleaned = _INVALID.sub("_", spaced.lower()).strip("_")
    if not cleaned:
        return "_"
    return f"_{cleaned}" if cleaned[0].isdigit() and not lead else lead + cleaned
