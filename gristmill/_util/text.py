"""Keep messages readable: a bad row can be megabytes long, an error must not be."""

from __future__ import annotations

LINE_LIMIT = 300
TOTAL_LIMIT = 4_000


def shorten(text: str, *, line_limit: int = LINE_LIMIT, total_limit: int = TOTAL_LIMIT) -> str:
    """Cut each over-long line, then the whole text, saying how much was left out."""
    lines = [
        line
        if len(line) <= line_limit
        else f"{line[:line_limit]}… ({len(line) - line_limit:,} more characters)"
        for line in text.splitlines()
    ]
    joined = "\n".join(lines)
    if len(joined) > total_limit:
        joined = f"{joined[:total_limit]}… ({len(joined) - total_limit:,} more characters)"
    return joined
