"""Data contracts: one file per dataset in contracts/, holding its schema, checks, freshness SLA,
owner, tags and personal-data classes.

contracts/marts.orders.yml:

    dataset: marts.orders          # optional when the file is named after the asset
    owner: finance-data@example.com
    description: One row per order.
    tags: [finance, tier1]
    freshness: {column: ordered_at, max_age: 1d}
    exact: true                    # no columns beyond those listed
    on_violation: error            # error (default) | warn | quarantine | drop: for row rules
    on_schema_change: freeze       # sources only: evolve | freeze | quarantine | discard
    columns:
      order_id: {type: BIGINT, nullable: false, unique: true}
      email: {type: VARCHAR, pii: email, checks: [{format: email}]}
      amount: {type: DECIMAL(18,2), checks: [{range: {min: 0}}]}
    checks:
      - row_count: {min: 1}

A contract compiles to ordinary checks (a schema check, not_null per non-nullable column, unique,
the column and table checks, freshness), so it is enforced wherever checks are: on every load
and every build, before the new version is published.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError
from gristmill.project import yamlfile
from gristmill.project.checks import BUILTIN_CHECKS, ROW_CHECKS, SEVERITIES, parse_check_items
from gristmill.project.specs import CheckSpec, Contract, SourceSpec

PII_CLASSES = (
    "email",
    "phone",
    "name",
    "address",
    "birth_date",
    "ip_address",
    "national_id",
    "tax_id",
    "passport",
    "payment_card",
    "iban",
    "location",
    "other",
)
_KEYS = {
    "dataset",
    "owner",
    "description",
    "tags",
    "freshness",
    "exact",
    "on_violation",
    "on_schema_change",
    "columns",
    "checks",
}
_COLUMN_KEYS = {"type", "nullable", "unique", "pii", "description", "checks"}
_SCHEMA_CHANGES = ("evolve", "freeze", "quarantine", "discard")


@dataclass(frozen=True)
class ContractSpec:
    dataset: str
    file: str
    owner: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    columns: dict[str, str | None] = field(default_factory=dict)
    """Declared columns and their types (None: any type)."""
    pii: dict[str, str] = field(default_factory=dict)
    """Personal-data class per column: masked in failing-row samples."""
    on_schema_change: Contract | None = None
    checks: tuple[CheckSpec, ...] = ()


def load_contracts(root: Path) -> dict[str, ContractSpec]:
    contracts: dict[str, ContractSpec] = {}
    folder = root / "contracts"
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else ():
        file = path.relative_to(root).as_posix()
        data = yamlfile.load(path, file)
        contract = parse_contract(data, file, path.stem)
        if contract.dataset in contracts:
            raise ConfigError(
                f"{contract.dataset} has two contracts: {contracts[contract.dataset].file} and {file}",
                location=file,
                hint="keep one contract file per dataset",
            )
        contracts[contract.dataset] = contract
    return contracts


def _at(data: Any, key: str, file: str) -> str:
    line = data.key_lines.get(key) if isinstance(data, yamlfile.LineDict) else None
    return f"{file}:{line}" if line else file


def parse_contract(data: Any, file: str, stem: str) -> ContractSpec:
    if not isinstance(data, dict):
        raise ConfigError("a contract is a mapping with dataset, columns, checks ...", location=file)
    for key in data:
        if key not in _KEYS:
            raise ConfigError(
                f'unknown contract key "{key}"',
                location=_at(data, key, file),
                hint=did_you_mean(str(key), _KEYS) or "keys: " + ", ".join(sorted(_KEYS)),
            )
    dataset = str(data.get("dataset") or stem)
    if dataset.count(".") != 1:
        raise ConfigError(
            f'contract dataset "{dataset}" must be <schema>.<name>',
            location=_at(data, "dataset", file),
            hint="name the file <schema>.<name>.yml or set dataset: <schema>.<name>",
        )
    violation = data.get("on_violation", "error")
    if violation not in SEVERITIES:
        raise ConfigError(
            f'on_violation must be one of {", ".join(SEVERITIES)}, not "{violation}"',
            location=_at(data, "on_violation", file),
        )
    change = data.get("on_schema_change")
    if change is not None and change not in _SCHEMA_CHANGES:
        raise ConfigError(
            f'on_schema_change must be one of {", ".join(_SCHEMA_CHANGES)}, not "{change}"',
            location=_at(data, "on_schema_change", file),
            hint=did_you_mean(str(change), _SCHEMA_CHANGES),
        )
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError("tags is a list of words", location=_at(data, "tags", file))
    # Rules that set rows aside need a row check; the others block or warn.
    whole = violation if violation in ("error", "warn") else "error"
    columns, pii, checks = _columns(data, dataset, file, violation, whole)
    if data.get("columns") is not None or data.get("exact"):
        where = _at(data, "columns", file)
        expect: dict[str, Any] = {"expect": columns, "exact": bool(data.get("exact"))}
        checks.insert(0, CheckSpec("schema", dataset, (), expect, whole, where))  # type: ignore[arg-type]
    if data.get("freshness") is not None:
        freshness = data["freshness"]
        where = _at(data, "freshness", file)
        if not isinstance(freshness, dict) or set(freshness) != {"column", "max_age"}:
            raise ConfigError("freshness is {column: <time column>, max_age: 1d}", location=where)
        checks += parse_check_items(
            [{"freshness": {**freshness, "severity": whole}}], dataset, file, _line(where)
        )
    if data.get("checks") is not None:
        checks += parse_check_items(data["checks"], dataset, file, _line(_at(data, "checks", file)))
    return ContractSpec(
        dataset,
        file,
        owner=None if data.get("owner") is None else str(data["owner"]),
        description=None if data.get("description") is None else str(data["description"]),
        tags=tuple(tags),
        columns=columns,
        pii=pii,
        on_schema_change=change,
        checks=tuple(checks),
    )


def _line(where: str) -> int:
    tail = where.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 1


def _columns(
    data: Any, dataset: str, file: str, violation: str, whole: str
) -> tuple[dict[str, str | None], dict[str, str], list[CheckSpec]]:
    declared = data.get("columns") or {}
    if not isinstance(declared, dict):
        raise ConfigError(
            "columns maps each column to {type, nullable, unique, pii, checks}",
            location=_at(data, "columns", file),
        )
    columns: dict[str, str | None] = {}
    pii: dict[str, str] = {}
    checks: list[CheckSpec] = []
    for name, spec in declared.items():
        where = _at(declared, name, file)
        spec = spec if spec is not None else {}
        if isinstance(spec, str):
            spec = {"type": spec}
        if not isinstance(spec, dict):
            raise ConfigError(f"column {name}: write {{type: BIGINT, nullable: false}}", location=where)
        for key in spec:
            if key not in _COLUMN_KEYS:
                raise ConfigError(
                    f'unknown option "{key}" for column {name}',
                    location=_at(spec, key, file) if isinstance(spec, yamlfile.LineDict) else where,
                    hint=did_you_mean(str(key), _COLUMN_KEYS)
                    or "options: " + ", ".join(sorted(_COLUMN_KEYS)),
                )
        columns[str(name)] = None if spec.get("type") is None else str(spec["type"])
        if spec.get("pii") is not None:
            if spec["pii"] not in PII_CLASSES:
                raise ConfigError(
                    f'unknown personal-data class "{spec["pii"]}" for column {name}',
                    location=where,
                    hint=did_you_mean(str(spec["pii"]), PII_CLASSES) or "classes: " + ", ".join(PII_CLASSES),
                )
            pii[str(name)] = str(spec["pii"])
        items: list[Any] = []
        if spec.get("nullable") is False:
            items.append({"not_null": {"column": name, "severity": violation}})
        if spec.get("unique"):
            items.append({"unique": {"column": name, "severity": whole}})
        for item in spec.get("checks") or []:
            items.append(_with_column(item, str(name), violation, whole, where))
        checks += parse_check_items(items, dataset, file, _line(where))
    return columns, pii, checks


def _with_column(item: Any, column: str, violation: str, whole: str, where: str) -> Any:
    """A column's check item with the column filled in: ``format: {as: email}``, ``not_null``."""
    if isinstance(item, str):
        item = {item: {}}
    kinds = [k for k in item if k in BUILTIN_CHECKS] if isinstance(item, dict) else []
    if len(kinds) != 1:
        raise ConfigError(
            f"column {column}: each check is one item, e.g. '- format: {{as: email}}'", location=where
        )
    # `{format: {as: email}, severity: warn}` reads as naturally as the nested form.
    [kind] = kinds
    options = item[kind]
    extra = {k: v for k, v in item.items() if k != kind}
    if extra:
        options = {**(options if isinstance(options, dict) else {}), **extra}
    if kind == "accepted_values" and isinstance(options, list):
        options = {"values": options}
    if not isinstance(options, dict):
        raise ConfigError(
            f"column {column}: options of {kind} are a mapping, e.g. '- {kind}: {{...}}'", location=where
        )
    default = violation if kind in ROW_CHECKS else whole
    return {kind: {"column": column, "severity": default, **options}}


def with_schema_contracts(
    sources: dict[str, SourceSpec], contracts: dict[str, ContractSpec]
) -> dict[str, SourceSpec]:
    """A contract's on_schema_change decides what a load does when the source's schema changes."""
    changed: dict[str, SourceSpec] = {}
    for name, source in sources.items():
        tables = dict(source.tables)
        for key, table in source.tables.items():
            change = contracts[table.asset].on_schema_change if table.asset in contracts else None
            if change is not None:
                tables[key] = replace(table, load=replace(table.load, contract=change))
        changed[name] = replace(source, tables=tables)
    return changed
