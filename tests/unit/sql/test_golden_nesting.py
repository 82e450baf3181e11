"""Golden SQL of nested records reshaped (``tests/fixtures/sql/nesting/``): structs flattened,
kept or turned into JSON, lists split into child tables, the content digest of a record, and
on DuckDB the digest's value unchanged."""

from __future__ import annotations

import duckdb
import pyarrow as pa
from sqlglot import exp

from gristmill.sql import nesting
from gristmill.sql.render import render
from tests.golden import assert_golden

STAGE = exp.table_("_gm_stage_orders", db="raw", catalog="lake", quoted=True)
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("customer", pa.struct([("name", pa.string()), ("address", pa.struct([("city", pa.string())]))])),
        ("items", pa.list_(pa.struct([("sku", pa.string()), ("qty", pa.int32())]))),
        ("tags", pa.list_(pa.string())),
        ("attributes", pa.map_(pa.string(), pa.string())),
    ]
)


def _flat(split_lists: bool, max_depth: int | None) -> nesting.Flattened:
    out = nesting.Flattened()
    for field in SCHEMA:
        nesting.flatten(
            exp.column(field.name, quoted=True),
            field.name,
            field.type,
            0,
            max_depth,
            out,
            split_lists=split_lists,
        )
    return out


def test_flatten_with_child_tables() -> None:
    out = _flat(split_lists=True, max_depth=None)
    assert_golden("nesting/flatten_split", exp.select(*out.columns).from_(STAGE.copy()))
    items = next(c for c in out.lists if c.name == "items")
    assert_golden("nesting/unnest_items", nesting.unnest_list(STAGE.copy(), items, "_gm_ord"))
    element = nesting.flatten_element(items.element, None, items.depth)
    child = exp.table_("_gm_stage_orders__items", db="raw", catalog="lake", quoted=True)
    assert_golden("nesting/flatten_items_element", exp.select(*element.columns).from_(child))


def test_flatten_to_a_depth() -> None:
    out = _flat(split_lists=False, max_depth=1)
    assert_golden("nesting/flatten_depth_1", exp.select(*out.columns).from_(STAGE.copy()))


def test_keep_nested_as_structs_and_as_json() -> None:
    kept = nesting.keep_nested(SCHEMA, 1, as_json=False)
    assert_golden("nesting/keep_struct_depth_1", exp.select(*kept).from_(STAGE.copy()))
    as_json = nesting.keep_nested(SCHEMA, None, as_json=True)
    assert_golden("nesting/keep_json", exp.select(*as_json).from_(STAGE.copy()))


def test_content_digest() -> None:
    digest = nesting.content_digest(SCHEMA, ["id", "customer", "items", "tags"])
    assert_golden("nesting/content_digest", exp.select(exp.alias_(digest, "_gm_digest")).from_(STAGE.copy()))


def test_row_uuid() -> None:
    row_id = nesting.row_uuid(
        exp.cast(exp.column("id", quoted=True), "VARCHAR"), exp.Literal.string("/orders/")
    )
    assert_golden("nesting/row_uuid", exp.select(exp.alias_(row_id, "_gm_row_id")).from_(STAGE.copy()))


def test_duckdb_digest_is_unchanged() -> None:
    """Digests are stored: the same record must keep its digest whatever the SQL's spelling."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE s AS SELECT 1::BIGINT AS id, "
        "{'name': 'Ann', 'address': {'city': NULL}} AS customer, "
        "[{'sku': 'a', 'qty': 2::INT}, {'sku': NULL, 'qty': NULL}] AS items, ['x', NULL] AS tags"
    )
    digest = nesting.content_digest(SCHEMA, ["id", "customer", "items", "tags"])
    ours = con.execute(f"SELECT {render(digest, 'duckdb')} FROM s").fetchone()
    old = con.execute(  # the digest as the platform wrote it before it named no engine
        "SELECT MD5(JSON_MERGE_PATCH('{}', TO_JSON({'customer': CASE WHEN \"customer\" IS NULL THEN NULL "
        "ELSE {'address': CASE WHEN STRUCT_EXTRACT(\"customer\", 'address') IS NULL THEN NULL ELSE "
        "{'city': STRUCT_EXTRACT(STRUCT_EXTRACT(\"customer\", 'address'), 'city')} END, "
        "'name': STRUCT_EXTRACT(\"customer\", 'name')} END, 'id': \"id\", 'items': "
        "LIST_TRANSFORM(\"items\", LAMBDA _gm_e0 : JSON_MERGE_PATCH('{}', TO_JSON(CASE WHEN _gm_e0 IS NULL "
        "THEN NULL ELSE {'qty': STRUCT_EXTRACT(_gm_e0, 'qty'), 'sku': STRUCT_EXTRACT(_gm_e0, 'sku')} END))), "
        "'tags': \"tags\"}))) FROM s"
    ).fetchone()
    assert ours == old
