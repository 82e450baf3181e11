"""'Did you mean …?' suggestions for names a user mistyped."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """Return a ready-to-print hint naming the closest candidate, or None."""
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    if not matches:
        # A word of a longer name (``url`` for ``base_url``), when only one name has it.
        words = [c for c in lowered if name.lower() in c.split("_")]
        if len(words) != 1 or len(name) < 3:
            return None
        matches = words
    return f'did you mean "{lowered[matches[0]]}"?'
