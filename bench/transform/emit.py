"""Write one spec as three projects: Gristmill, dbt (dbt-duckdb) and SQLMesh, plus the raw
statements, and the data they all read (four Parquet files made by DuckDB from ``range()``).

The SELECT of every model is the same text in all three; only the way a model names another
differs (``schema.name``, ``{{ ref('name') }}``, ``schema.name`` under a ``MODEL`` header).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from bench.transform.spec import CUSTOMERS, SOURCE_COLUMNS, SOURCES, Model, Spec

Ref = Callable[[str], str]
TOOLS = ("gristmill", "dbt", "sqlmesh")


# -- data ------------------------------------------------------------------------------------------


def source_query(source: str, rows: int) -> str:
    s = SOURCES.index(source)
    return (
        f"SELECT i AS id, (i * 7 + {s}) % {CUSTOMERS[source]} AS customer_id,"
        f" CAST((i * 31 + {s * 17}) % 10000 AS DOUBLE) / 100 AS amount,"
        f" (i * 13 + {s}) % 97 AS category_code,"
        f" DATE '2024-01-01' + CAST((i * 3 + {s}) % 730 AS INTEGER) AS event_date"
        f" FROM range({rows}) t(i)"
    )


def write_data(folder: Path, rows: int) -> dict[str, Path]:
    from gristmill._util.duckdb_extensions import connect

    folder.mkdir(parents=True, exist_ok=True)
    con = connect()
    paths = {}
    for source in SOURCES:
        paths[source] = folder / f"{source}.parquet"
        con.execute(f"COPY ({source_query(source, rows)}) TO '{paths[source]}' (FORMAT parquet)")
    con.close()
    return paths


# -- SQL -------------------------------------------------------------------------------------------


def model_sql(model: Model, ref: Ref, *, changed: bool = False) -> str:
    """The model's SELECT; ``ref`` names a parent (a model or ``src__<source>``)."""
    v = model.variant
    if model.kind == "staging":
        letter = "e" if changed else "d"
        return (
            "select\n"
            "    id,\n"
            "    customer_id,\n"
            f"    amount * {1 + v % 5} + {v} as metric,\n"
            f"    '{letter}' || ((category_code + {v}) % {7 + v % 5}) as dim,\n"
            "    event_date\n"
            f"from {ref(model.parents[0])}\n"
            f"where id % {50 + v} != {v % 50}\n"
        )
    p = ref(model.parents[0])
    if model.kind == "join":
        metric = (
            "p.metric + coalesce(s.metric, 0)",
            "p.metric - coalesce(s.metric, 0) / 2",
            "greatest(p.metric, coalesce(s.metric, 0))",
        )[v % 3]
        agg = ("avg", "max", "min")[v % 3]
        return (
            "select\n"
            "    p.id,\n"
            "    p.customer_id,\n"
            f"    {metric} as metric,\n"
            "    p.dim,\n"
            "    p.event_date\n"
            f"from {p} as p\n"
            "left join (\n"
            f"    select customer_id, {agg}(metric) as metric\n"
            f"    from {ref(model.parents[1])}\n"
            "    group by customer_id\n"
            ") as s on p.customer_id = s.customer_id\n"
        )
    if model.kind == "group":
        return (
            "select\n"
            "    min(id) as id,\n"
            "    customer_id,\n"
            "    sum(metric) as metric,\n"
            "    min(dim) as dim,\n"
            "    max(event_date) as event_date\n"
            f"from {p}\n"
            "group by customer_id\n"
        )
    if model.kind == "group_month":
        return (
            "select\n"
            "    min(id) as id,\n"
            "    customer_id,\n"
            "    avg(metric) as metric,\n"
            "    max(dim) as dim,\n"
            "    min(event_date) as event_date\n"
            f"from {p}\n"
            "group by customer_id, date_trunc('month', event_date)\n"
        )
    if model.kind == "window":
        return (
            "select\n"
            "    id,\n"
            "    customer_id,\n"
            "    sum(metric) over (\n"
            f"        partition by customer_id order by event_date, id rows between {1 + v % 5} preceding"
            " and current row\n"
            "    ) as metric,\n"
            "    dim,\n"
            "    event_date\n"
            f"from {p}\n"
        )
    if model.kind == "window_lag":
        return (
            "select\n"
            "    id,\n"
            "    customer_id,\n"
            "    metric - coalesce(lag(metric) over (partition by customer_id order by id), 0) as metric,\n"
            "    dim,\n"
            "    event_date\n"
            f"from {p}\n"
        )
    assert model.kind == "mart"
    aliases = "bc"
    metric = " + ".join(
        ["sum(a.metric)"] + [f"max(coalesce({a}.metric, 0))" for a in aliases[: len(model.parents) - 1]]
    )
    joins = "".join(
        f"left join (select customer_id, avg(metric) as metric from {ref(parent)} group by customer_id)"
        f" as {alias}\n    on a.customer_id = {alias}.customer_id\n"
        for alias, parent in zip(aliases, model.parents[1:], strict=False)
    )
    return (
        "select\n"
        "    a.customer_id as id,\n"
        "    a.customer_id,\n"
        f"    {metric} as metric,\n"
        "    min(a.dim) as dim,\n"
        "    max(a.event_date) as event_date\n"
        f"from {p} as a\n"
        f"{joins}"
        "group by a.customer_id\n"
    )


def test_sql(table: str, test: str) -> str:
    """The raw form of a test: one query returning the number of failing rows."""
    if test == "unique":
        return f"select count(id) - count(distinct id) from {table}"
    return f"select count(*) from {table} where id is null"


# -- the three projects ----------------------------------------------------------------------------


def _schema_ref(spec: Spec) -> Ref:
    def ref(name: str) -> str:
        return f"raw.{name}" if name.startswith("src__") else spec.by_name[name].asset

    return ref


def _dbt_ref(name: str) -> str:
    if name.startswith("src__"):
        return "{{ source('raw', '" + name + "') }}"
    return "{{ ref('" + name + "') }}"


def write_model(tool: str, root: Path, spec: Spec, model: Model, *, changed: bool = False) -> Path:
    path = root / "models" / model.layer / f"{model.name}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    if tool == "dbt":
        path.write_text(model_sql(model, _dbt_ref, changed=changed))
    elif tool == "gristmill":
        path.write_text(model_sql(model, _schema_ref(spec), changed=changed))
    else:
        audit = "unique_values" if model.test == "unique" else "not_null"
        header = f"MODEL (\n  name {model.asset},\n  kind FULL,\n  audits ({audit}(columns := (id)))\n);\n\n"
        path.write_text(header + model_sql(model, _schema_ref(spec), changed=changed))
    return path


def _yaml_tests(models: list[Model]) -> str:
    lines = ["version: 2", "", "models:"]
    for m in models:
        lines += [
            f"  - name: {m.name}",
            "    columns:",
            "      - name: id",
            f"        data_tests: [{m.test}]",
        ]
    return "\n".join(lines) + "\n"


def write_gristmill(root: Path, spec: Spec, data: dict[str, Path]) -> None:
    (root / "sources").mkdir(parents=True)
    (root / "checks").mkdir()
    (root / "data").mkdir()
    (root / "gristmill.toml").write_text('name = "transform_bench"\n')
    tables = []
    for source, path in data.items():
        (root / "data" / path.name).write_bytes(path.read_bytes())
        tables.append(f"  {source}: {{path: data/{path.name}}}")
    (root / "sources" / "src.yml").write_text("kind: files\ntables:\n" + "\n".join(tables) + "\n")
    for layer in ("staging", "intermediate", "marts"):
        checks = [f"{m.asset}:\n  - {m.test}: id" for m in spec.models if m.layer == layer]
        (root / "checks" / f"{layer}.yml").write_text("\n".join(checks) + "\n")
    for model in spec.models:
        write_model("gristmill", root, spec, model)


def write_dbt(root: Path, spec: Spec, threads: int) -> None:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        "name: transform_bench\nversion: '1.0'\nconfig-version: 2\nprofile: transform_bench\n"
        "model-paths: [models]\nmodels:\n  transform_bench:\n    +materialized: table\n"
    )
    (root / "profiles.yml").write_text(
        "transform_bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: warehouse.duckdb\n      threads: {threads}\n"
    )
    tables = "".join(f"      - name: src__{s}\n" for s in SOURCES)
    (root / "models" / "sources.yml").write_text(
        f"version: 2\n\nsources:\n  - name: raw\n    schema: raw\n    tables:\n{tables}"
    )
    for layer in ("staging", "intermediate", "marts"):
        models = [m for m in spec.models if m.layer == layer]
        (root / "models" / layer).mkdir()
        (root / "models" / layer / "schema.yml").write_text(_yaml_tests(models))
    for model in spec.models:
        write_model("dbt", root, spec, model)


def write_sqlmesh(root: Path, spec: Spec, threads: int) -> None:
    (root / "models").mkdir(parents=True)
    (root / "config.yaml").write_text(
        "gateways:\n  local:\n    connection:\n      type: duckdb\n      database: warehouse.duckdb\n"
        f"      concurrent_tasks: {threads}\n"
        "default_gateway: local\n\nmodel_defaults:\n  dialect: duckdb\n  start: '2024-01-01'\n"
    )
    columns = "".join(f"    {c}: {t}\n" for c, t in SOURCE_COLUMNS.items())
    (root / "external_models.yaml").write_text(
        "".join(f"- name: raw.src__{s}\n  columns:\n{columns}" for s in SOURCES)
    )
    for model in spec.models:
        write_model("sqlmesh", root, spec, model)


def write_raw(path: Path, spec: Spec) -> None:
    ref = _schema_ref(spec)
    statements = [
        {
            "name": m.asset,
            "schema": m.layer,
            "sql": model_sql(m, ref),
            "test": test_sql(m.asset, m.test),
        }
        for m in spec.models
    ]
    path.write_text(json.dumps({"sources": list(SOURCES), "models": statements}, indent=1))


def generate(out: Path, spec: Spec, threads: int = 4) -> dict[str, Path]:
    """Write ``data/``, ``gristmill/``, ``dbt/``, ``sqlmesh/`` and ``raw.json`` under ``out``."""
    data = write_data(out / "data", spec.rows)
    write_gristmill(out / "gristmill", spec, data)
    write_dbt(out / "dbt", spec, threads)
    write_sqlmesh(out / "sqlmesh", spec, threads)
    write_raw(out / "raw.json", spec)
    return data


def main() -> None:
    import argparse

    from bench.transform.spec import build_spec

    parser = argparse.ArgumentParser(description="Write the benchmark project in its three forms.")
    parser.add_argument("out", type=Path, help="an empty or missing folder")
    parser.add_argument("--models", type=int, default=300)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    spec = build_spec(args.models, args.rows)
    generate(args.out, spec)
    print(f"wrote {len(spec.models)} models ({spec.edges} edges, depth {spec.depth}) to {args.out}")


if __name__ == "__main__":
    main()
