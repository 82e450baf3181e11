"""The OpenAPI document with one path per served table: typed filter parameters and row schemas.

FastAPI describes the generic ``/api/v1/tables/{schema}/{name}``; this adds, at each request of
``/openapi.json``, a path per table the catalog lists now (so a newly published table or column
shows without a restart), each column a query parameter and each row an object of typed fields.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from fastapi import FastAPI

from gristmill.errors import GristmillError
from gristmill.server.reading import ServedRelation, TableReader
from gristmill.server.tables.formats import json_schema
from gristmill.server.tables.grammar import OPERATORS, family

log = logging.getLogger(__name__)

_COMMON = [
    ("select", "Columns to return, comma-separated (default: all)."),
    ("order", "Sort, e.g. amount.desc,id (NULLs last)."),
    ("limit", "Rows per page (the server caps it)."),
    ("cursor", "The `next` of the previous page."),
    ("count", "exact or estimated: count the matching rows (capped, e.g. 10000+)."),
    ("as_of", "A snapshot id or an ISO 8601 time: read the table as it was."),
    ("or", "Any of the conditions, e.g. (a.eq.1,b.lt.2)."),
    ("and", "All of the conditions, e.g. (a.gte.1,a.lt.9)."),
]
_EXAMPLES = {"integer": "gt.10", "decimal": "gte.10.50", "float": "lt.2.5", "boolean": "is.true"}
_EXAMPLES |= {"date": "gte.2026-01-01", "timestamp": "lt.2026-01-01T00:00:00Z", "text": "in.(DE,FR)"}


def per_table_openapi(app: FastAPI, reader: TableReader) -> None:
    generic = app.openapi

    def openapi() -> dict[str, Any]:
        document = copy.deepcopy(generic())
        try:
            with reader.pin() as pinned:
                relations = pinned.relations()
        except GristmillError as err:
            log.info("the OpenAPI document lists no tables: %s", err.message)
            return document
        for relation in relations.values():
            path = f"/api/v1/tables/{relation.schema}/{relation.name}"
            document["paths"][path] = {"get": _operation(relation)}
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _operation(relation: ServedRelation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
        for name, text in _COMMON
    ]
    for column in relation.columns:
        if column.name in {name for name, _ in _COMMON}:
            continue
        example = _EXAMPLES.get(family(column), "is.null")
        parameters.append(
            {
                "name": column.name,
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": f"Filter on {column.name} ({column.type}): operator.value, operators "
                f"{', '.join(OPERATORS)}, not. before one; e.g. {example}",
                "example": example,
            }
        )
    row = {"type": "object", "properties": {c.name: json_schema(c) for c in relation.columns}}
    page = {
        "type": "object",
        "required": ["table", "snapshot", "schema", "rows", "limit", "truncated", "next"],
        "properties": {
            "table": {"type": "string"},
            "snapshot": {"type": "string"},
            "schema": {"type": "object"},
            "rows": {"type": "array", "items": row},
            "limit": {"type": "integer"},
            "truncated": {"type": "boolean"},
            "next": {"type": ["string", "null"]},
            "count": {"type": ["integer", "string"]},
        },
    }
    error = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    return {
        "summary": relation.description or f"Rows of {relation.full_name}",
        "operationId": f"rows_{relation.schema}_{relation.name}",
        "tags": ["tables"],
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "A page of rows (JSON), or the rows as CSV, Parquet or Arrow by Accept.",
                "content": {"application/json": {"schema": page}},
            },
            "304": {"description": "Not modified (If-None-Match)."},
            "400": {"description": "A bad parameter.", "content": {"application/json": {"schema": error}}},
        },
    }
