"""The benchmark's data and checks as constants: the defects to plant, and what every tool must find.

Fifteen checks on ``orders``; the planted defects make exactly ten of them fail. Each check has
one key that the hand-written plans and the Soda checks use as its name, and the prefix of the
name Gristmill gives it (``range(amount 0..1000)``, ``unique(customer_id, created_at)``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

ROWS = 10_000_000
CUSTOMERS = 100_000
CATEGORIES = ("books", "electronics", "garden", "home", "toys")
STATUSES = ("pending", "paid", "shipped", "delivered", "returned")
AMOUNT = (0, 1000)
QUANTITY = (1, 20)
MEAN_AMOUNT = (400, 600)
MAX_AGE_DAYS = 7
CUSTOM_NAME = "delivered_without_amount"
CUSTOM_CONDITION = "status = 'delivered' and amount is null"

# Defects at 10M rows, scaled with --rows (at least one each).
DEFECTS = {
    "duplicated_rows": 1_000,
    "null_customer_id": 100,
    "orphan_customer_id": 500,
    "bad_category": 100,
    "bad_status": 50,
    "null_amount": 100_000,
    "negative_amount": 20,
    "zero_quantity": 30,
    "null_email": 50_000,
    "bad_email": 200,
}


@dataclass(frozen=True)
class Check:
    key: str
    fails: bool
    """Whether the planted data makes it fail."""
    gristmill: str
    """How Gristmill's name for it starts."""


CHECKS = (
    Check("not_null(id)", False, "not_null(id)"),
    Check("not_null(customer_id)", True, "not_null(customer_id)"),
    Check("not_null(email)", True, "not_null(email)"),
    Check("unique(id)", True, "unique(id)"),
    Check("accepted_values(category)", True, "accepted_values(category"),
    Check("accepted_values(status)", True, "accepted_values(status"),
    Check("range(amount)", True, "range(amount"),
    Check("range(quantity)", True, "range(quantity"),
    Check("format(email)", True, "format(email"),
    Check("row_count", False, "row_count"),
    Check("freshness(created_at)", False, "freshness(created_at"),
    Check("relationships(customer_id)", True, "relationships(customer_id"),
    Check("duplicates(customer_id,created_at)", True, "unique(customer_id, created_at"),
    Check("mean(amount)", False, "aggregate(mean(amount)"),
    Check(f"custom({CUSTOM_NAME})", False, f"query({CUSTOM_NAME}"),
)
KEYS = tuple(c.key for c in CHECKS)


@dataclass(frozen=True)
class Scale:
    rows: int

    def defects(self, name: str) -> int:
        return max(1, round(DEFECTS[name] * self.rows / ROWS))

    @property
    def row_count(self) -> tuple[int, int]:
        """The accepted row count: 90-110 % of the rows generated."""
        return self.rows * 9 // 10, self.rows * 11 // 10


def verify(found: dict[str, bool]) -> list[str]:
    """Problems with a tool's outcome (check key -> failed); empty when it is the expected one."""
    problems = [f"{c.key}: no result" for c in CHECKS if c.key not in found]
    problems += [
        f"{c.key}: {'failed' if found[c.key] else 'passed'}, expected {'fail' if c.fails else 'pass'}"
        for c in CHECKS
        if c.key in found and found[c.key] != c.fails
    ]
    problems += [f"unexpected result {k!r}" for k in found if k not in KEYS]
    return problems
