"""Every secret value Gristmill has seen, and :func:`redact`, which blanks them out of any text.

A value is registered with the forms it travels in besides itself: URL-encoded (inside a
connection string or a query) and base64 (inside a Basic ``Authorization`` header or a
serialized config), so a secret copied into an OpenLineage facet or an error in any of those
shapes is blanked too.
"""

from __future__ import annotations

import base64
import contextlib
import logging
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

MASK = "***"
_known: set[str] = set()


# Encoded forms of a very short value would match ordinary text (base64 of "pw" is "cHc"):
# below this length only the value itself is blanked.
_ENCODED_MIN = 6


def _forms(value: str) -> set[str]:
    forms = {value, quote(value, safe=""), quote_plus(value), quote(value)}
    if len(value) < _ENCODED_MIN:
        return {value}
    raw = value.encode()
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms |= {text, text.rstrip("=")}
    return {form for form in forms if form}


def register(value: str) -> None:
    """Remember ``value`` (and its encoded forms) as a secret to blank from now on."""
    if value:
        _known.update(_forms(value))


def redact(text: str) -> str:
    """``text`` with every registered secret form replaced by ``***``, longest first so that a
    secret containing another one is blanked whole."""
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def known_count() -> int:
    """How many forms are registered (tests and ``gristmill doctor`` only show the count)."""
    return len(_known)


_installed = False


def install_log_redaction() -> None:
    """Blank secrets in every log record, whichever logger or handler it goes through.

    A record factory rather than a Filter: a filter on the root logger misses records that
    child loggers pass to its handlers, and handlers are added later (``serve``'s basicConfig).
    The message is formatted here (only for records at an enabled level) and then redacted."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if _known:
            # a bad format string is left for logging to report itself, later
            with contextlib.suppress(Exception):
                record.msg, record.args = redact(record.getMessage()), None
        return record

    logging.setLogRecordFactory(redacting)


class RedactingStream:
    """A text stream that blanks secrets in what is written to it: the CLI's stdout and stderr,
    where a project's own Python (a source, a model) may ``print`` a value it resolved. Each
    write is redacted whole; everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        self.wrapped.write(redact(text) if _known else text)
        return len(text)  # what the caller gave: print() and rich check nothing more

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)
