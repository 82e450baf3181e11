from __future__ import annotations

import pyarrow as pa

from gristmill.checks.pii_detect import detect, is_card_number, is_iban, is_national_id, is_phone


def test_iban_needs_its_checksum() -> None:
    got = is_iban(
        pa.array(["GB82WEST12345698765432", "GB82 WEST 1234 5698 7654 32", "GB83WEST12345698765432", "x"])
    )
    assert got.to_pylist() == [True, True, False, False]


def test_card_numbers_need_luhn() -> None:
    got = is_card_number(pa.array(["4111 1111 1111 1111", "4111111111111112", "5500-0000-0000-0004", "12"]))
    assert got.to_pylist() == [True, False, True, False]


def test_national_ids_and_phones() -> None:
    assert is_national_id(pa.array(["123-45-6789", "000-12-3456", "AB123456C", "12-3"])).to_pylist() == [
        True,
        False,
        True,
        False,
    ]
    assert is_phone(pa.array(["+44 7700 900123", "(555) 123-4567", "12", "abc"])).to_pylist() == [
        True,
        True,
        False,
        False,
    ]


def test_detect_by_values_and_by_name() -> None:
    sample = pa.table(
        {
            "contact": ["a@example.com", "b@example.org", None, "c@x.io"],
            "acct": ["DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606", None],
            "card": ["4111111111111111", "5500000000000004", "378282246310005", "6011111111111117"],
            "mobile": ["1", "2", "3", "4"],
            "notes": ["hello", "world", "a@b.co", "x"],
            "amount": [1, 2, 3, 4],
        }
    )
    found = {(d.column, d.pii, d.by) for d in detect(sample)}
    assert found == {
        ("contact", "email", "values"),
        ("acct", "iban", "values"),
        ("card", "payment_card", "values"),
        ("mobile", "phone", "name"),
    }
