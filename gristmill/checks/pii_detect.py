"""Find personal data in a sample: column names that say what they hold, and values that pass a
validator (an email's shape, a phone number's digits, an IBAN's mod-97 checksum, a card number's
Luhn digit, a national id's format). Vectorised over Arrow: regexes in pyarrow.compute and the
checksums as numpy arithmetic over fixed-width digit matrices, never a Python loop over rows."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_NAMES = {
    "email": re.compile(r"(^|_)(e_?mail|email_address)($|_)"),
    "phone": re.compile(r"(^|_)(phone|mobile|msisdn|tel|telephone)($|_)"),
    "iban": re.compile(r"(^|_)iban($|_)"),
    "payment_card": re.compile(r"(^|_)(card_number|pan|cc_number|credit_card)($|_)"),
    "national_id": re.compile(r"(^|_)(ssn|nino|national_id|social_security)($|_)"),
    "name": re.compile(r"^(first_name|last_name|full_name|surname|given_name)$"),
    "birth_date": re.compile(r"(^|_)(birth_date|date_of_birth|dob)($|_)"),
    "ip_address": re.compile(r"(^|_)(ip|ip_address)($|_)"),
}
_EMAIL = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
_PHONE = r"^\+?\(?[0-9][0-9 ().-]{5,18}[0-9]$"
# US social security numbers (never 000, 666 or 9xx area) and UK national insurance numbers.
# RE2 has no lookahead: the never-issued SSN parts are a second pattern.
_NATIONAL_ID = r"^([0-8][0-9]{2}-[0-9]{2}-[0-9]{4}|[A-CEGHJ-PR-TW-Z]{2}[0-9]{6}[A-D])$"
_NEVER_ISSUED = r"^(000|666)-|-00-|-0000$"


@dataclass(frozen=True)
class Detection:
    column: str
    pii: str
    """The contract class (project/contracts.py PII_CLASSES) this column looks like."""
    by: str
    """``name`` or ``values``."""
    share: float
    """The share of the sample's non-null values that passed the validator (1.0 by name)."""


def detect(sample: pa.Table, *, min_share: float = 0.8) -> list[Detection]:
    """The columns of a sample that look personal, by name or by their values."""
    found: list[Detection] = []
    for name in sample.column_names:
        by_name = next((cls for cls, pattern in _NAMES.items() if pattern.search(name.lower())), None)
        if by_name is not None:
            found.append(Detection(name, by_name, "name", 1.0))
            continue
        column = sample.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        values = pc.utf8_trim_whitespace(pc.drop_null(column.combine_chunks()).cast(pa.string()))
        if len(values) == 0:
            continue
        for cls, check in _VALIDATORS:
            share = float(pc.sum(check(values).cast(pa.int64())).as_py() or 0) / len(values)
            if share >= min_share:
                found.append(Detection(name, cls, "values", share))
                break
    return found


def is_email(values: pa.Array) -> pa.Array:
    return pc.match_substring_regex(values, _EMAIL)


def is_phone(values: pa.Array) -> pa.Array:
    digits = pc.utf8_length(pc.replace_substring_regex(values, r"[^0-9]", ""))
    shaped = pc.match_substring_regex(values, _PHONE)
    return pc.and_(shaped, pc.and_(pc.greater_equal(digits, 7), pc.less_equal(digits, 15)))


def is_national_id(values: pa.Array) -> pa.Array:
    shaped = pc.match_substring_regex(values, _NATIONAL_ID)
    return pc.and_(shaped, pc.invert(pc.match_substring_regex(values, _NEVER_ISSUED)))


def is_iban(values: pa.Array) -> pa.Array:
    """Country code, two check digits, up to 30 letters or digits, and mod 97 of the rearranged
    number equal to 1 (ISO 13616)."""
    compact = pc.utf8_upper(pc.replace_substring(values, " ", ""))
    shaped = pc.match_substring_regex(compact, r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
    rearranged = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(compact, 4), pc.utf8_slice_codeunits(compact, 0, 4), ""
    )
    codes = _fixed_width(pc.if_else(shaped, rearranged, "0"), 34)
    letters = codes >= ord("A")
    value = np.where(letters, codes.astype(np.int64) - ord("A") + 10, codes.astype(np.int64) - ord("0"))
    scale = np.where(letters, 100, 10)
    remainder = np.zeros(len(codes), dtype=np.int64)
    for position in range(codes.shape[1]):  # 34 steps over whole columns, not a loop over rows
        remainder = (remainder * scale[:, position] + value[:, position]) % 97
    return pc.and_(shaped, pa.array(remainder == 1))


def is_card_number(values: pa.Array) -> pa.Array:
    """13 to 19 digits (spaces and dashes allowed) whose Luhn check digit is right."""
    digits = pc.replace_substring_regex(values, r"[ -]", "")
    shaped = pc.match_substring_regex(digits, r"^[0-9]{13,19}$")
    codes = _fixed_width(pc.if_else(shaped, digits, "0"), 19).astype(np.int64) - ord("0")
    # Left-padded to 19 digits: counted from the right, every second digit sits at an odd column.
    doubled = np.arange(19) % 2 == 1
    twice = codes * 2
    summed = np.where(doubled, np.where(twice > 9, twice - 9, twice), codes).sum(axis=1)
    return pc.and_(shaped, pa.array(summed % 10 == 0))


def _fixed_width(values: pa.Array, width: int) -> np.ndarray:
    """ASCII strings left-padded with "0" to ``width`` (none is longer) as an (n, width) byte matrix."""
    padded = pc.utf8_lpad(values, width=width, padding="0")
    if isinstance(padded, pa.ChunkedArray):
        padded = padded.combine_chunks()
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int32)[
        padded.offset : padded.offset + len(padded) + 1
    ]
    data = np.frombuffer(padded.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.reshape(len(padded), width)


_VALIDATORS = (
    ("email", is_email),
    ("iban", is_iban),
    ("payment_card", is_card_number),
    ("national_id", is_national_id),
    ("phone", is_phone),
)
