"""What ``access.yml`` declares: roles, their members, their grants, the column masks and the row
filters that apply to them. The declarations only; ``sql/policy.py`` enforces them by rewriting a
query before it reaches an engine (docs/access.md).

access.yml:

    roles:
      analyst:
        members: [gmk_3f9a, "sub:alice@example.com", "group:finance"]
        grants:
          - {resource: "marts.*", privileges: [read]}
          - {resource: "metric:revenue", privileges: [run]}
        masks:
          - {class: pii.email, policy: hash, allow_aggregates: [count, count_distinct]}
          - {column: phone, policy: partial, keep_last: 4}
          - {column: iban, policy: sql, expr: "left({{ column }}, 4) || '****'"}
        row_filters:
          - {asset: marts.fct_invoice_line, where: "region = {{ principal.region }}"}
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gristmill.project import yamlfile
from gristmill.project.validation import validated

Privilege = Literal["read", "run", "admin"]
MaskPolicy = Literal["hash", "redact", "partial", "null", "sql"]
AllowedAggregate = Literal["count", "count_distinct"]
ACCESS_FILE = "access.yml"
_NAME = r"^[a-z_][a-z0-9_]*$"
_MEMBER = r"^(gmk_[A-Za-z0-9_]+|sub:.+|group:.+)$"
# A schema (``marts.*``), an asset (``marts.fct_invoice_line``) or a metric (``metric:revenue``).
_TARGET = r"^(metric:[a-z_][a-z0-9_]*|[a-z_][a-z0-9_]*\.(\*|[a-z_][a-z0-9_]*))$"
COLUMN_PLACEHOLDER = re.compile(r"\{\{\s*column\s*\}\}")
PRINCIPAL_PLACEHOLDER = re.compile(r"\{\{\s*principal\.([a-z_][a-z0-9_]*)\s*\}\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, populate_by_name=True)


class Grant(_Strict):
    # Not ``on``: YAML 1.1 reads an unquoted ``on`` key as the boolean true.
    resource: str = Field(pattern=_TARGET)
    privileges: tuple[Privilege, ...] = Field(min_length=1)

    def covers(self, target: str, privilege: Privilege) -> bool:
        """``admin`` implies the others; ``schema.*`` covers every asset of the schema."""
        if privilege not in self.privileges and "admin" not in self.privileges:
            return False
        if self.resource.endswith(".*"):
            return not target.startswith("metric:") and target.split(".", 1)[0] == self.resource[:-2]
        return self.resource == target


class Mask(_Strict):
    """A mask applied to the columns named ``column`` or carrying the class ``class``."""

    column: str | None = Field(default=None, pattern=_NAME)
    class_: str | None = Field(default=None, alias="class", pattern=r"^[a-z_][a-z0-9_.]*$")
    policy: MaskPolicy
    keep_last: int | None = Field(default=None, ge=1, le=64)
    expr: str | None = None
    allow_aggregates: tuple[AllowedAggregate, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Mask:
        if (self.column is None) == (self.class_ is None):
            raise ValueError("a mask names exactly one of column or class")
        if (self.policy == "partial") != (self.keep_last is not None):
            raise ValueError("keep_last is required by policy partial, and only by it")
        if (self.policy == "sql") != (self.expr is not None):
            raise ValueError("expr is required by policy sql, and only by it")
        if self.expr is not None and not COLUMN_PLACEHOLDER.search(self.expr):
            raise ValueError("expr must use {{ column }}")
        # Aggregates always read the masked value: they are exact only where the mask keeps what
        # they need. Every mask but null keeps NULL-ness (count); only hash keeps distinctness.
        if "count" in self.allow_aggregates and self.policy == "null":
            raise ValueError("count over a null mask counts nothing; use another policy")
        if "count_distinct" in self.allow_aggregates and self.policy != "hash":
            raise ValueError("count_distinct is exact only over policy hash")
        return self

    def applies_to(self, column: str, classes: frozenset[str]) -> bool:
        if self.column is not None:
            return self.column == column
        wanted = self.class_ or ""
        # ``pii.email`` is the contract class ``email`` under the ``pii`` tag family.
        return wanted in classes or wanted.removeprefix("pii.") in classes


class RowFilter(_Strict):
    asset: str = Field(pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
    where: str = Field(min_length=1)

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(PRINCIPAL_PLACEHOLDER.findall(self.where))


class Role(_Strict):
    members: tuple[Annotated[str, Field(pattern=_MEMBER)], ...] = ()
    """API key ids (``gmk_…``), JWT subjects (``sub:…``) and groups (``group:…``)."""
    grants: tuple[Grant, ...] = ()
    masks: tuple[Mask, ...] = ()
    row_filters: tuple[RowFilter, ...] = ()


class AccessPolicy(_Strict):
    roles: dict[str, Role] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _role_names(self) -> AccessPolicy:
        for name in self.roles:
            if not re.match(_NAME, name):
                raise ValueError(f'role name "{name}" must be lower_snake_case')
        return self

    def roles_of(self, member_ids: tuple[str, ...]) -> tuple[str, ...]:
        """The roles whose members include any of a caller's ids (key id, subject, groups)."""
        return tuple(name for name, role in self.roles.items() if set(role.members) & set(member_ids))


def load_access(root: Path) -> AccessPolicy | None:
    """``access.yml`` at the project root, validated with file:line errors; None when absent."""
    path = root / ACCESS_FILE
    if not path.is_file():
        return None
    data = yamlfile.load(path, ACCESS_FILE)
    if data is None:
        return AccessPolicy()
    return validated(AccessPolicy, data, file=ACCESS_FILE, line_of=partial(yamlfile.line_of, data))
