"""The TPC-H-shaped project of the Spark benchmark: its data, and the same models for each tool.

Data: TPC-H at a scale factor, made by DuckDB's packaged ``tpch`` extension (the
``duckdb-extension-tpch`` dev dependency: no INSTALL, no download), one Parquet file per table
(the 8 of them) in ``bench/.work-tpch/sf<SF>/``, made once and reused.

Models, written once in DuckDB SQL as a user writes them (Gristmill lowers them for each engine):

- ``staging``: one ``view`` per source table, renaming its columns (``l_orderkey`` -> ``order_key``);
- ``core``: a small dimensional model, ``table`` models: ``dim_customer`` and ``dim_supplier``
  (denormalised with nation and region), ``dim_part``, ``fct_orders``, ``fct_lineitem`` (the
  line items with their order's date, customer and priority);
- ``marts``: TPC-H queries 1, 3, 5 and 10 over that model, each a ``table``.

The same SELECTs become the raw floor's statements (``CREATE TABLE … AS`` / ``CREATE VIEW … AS``
in dependency order) and the dbt project's models (``{{ source() }}``/``{{ ref() }}``, Spark SQL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).parents[1]
CACHE = BENCH / ".work-tpch"
TABLES = ("lineitem", "orders", "customer", "part", "supplier", "partsupp", "nation", "region")


@dataclass(frozen=True)
class Model:
    schema: str
    name: str
    kind: str  # "view" | "table"
    sql: str  # DuckDB SQL; `raw.tpch__<t>` for sources, `<schema>.<name>` for models

    @property
    def asset(self) -> str:
        return f"{self.schema}.{self.name}"


# -- data ------------------------------------------------------------------------------------------


def data_folder(sf: float) -> Path:
    """TPC-H at ``sf`` as Parquet, one file per table; generated on first use (a few minutes at SF1)."""
    folder = CACHE / f"sf{sf:g}"
    if all((folder / f"{t}.parquet").exists() for t in TABLES):
        return folder
    from gristmill._util.duckdb_extensions import connect  # setup only, never in a timed step

    print(f"[setup] generating TPC-H SF {sf:g} into {folder} (first run only) ...", flush=True)
    part = folder.with_name(folder.name + ".partial")
    part.mkdir(parents=True, exist_ok=True)
    con = connect(extensions=("tpch",))
    con.execute(f"CALL dbgen(sf = {sf})")
    for table in TABLES:
        con.execute(f"COPY {table} TO '{part / table}.parquet' (FORMAT parquet)")
    con.close()
    (CACHE / ".gitignore").write_text("*\n")
    part.rename(folder)  # whole or absent: a half-made folder is never reused
    return folder


# -- models ----------------------------------------------------------------------------------------

STAGING = {
    "lineitem": """select l_orderkey as order_key, l_linenumber as line_number, l_partkey as part_key,
       l_suppkey as supplier_key, l_quantity as quantity, l_extendedprice as extended_price,
       l_discount as discount, l_tax as tax, l_returnflag as return_flag,
       l_linestatus as line_status, l_shipdate as ship_date, l_commitdate as commit_date,
       l_receiptdate as receipt_date, l_shipmode as ship_mode
from raw.tpch__lineitem""",
    "orders": """select o_orderkey as order_key, o_custkey as customer_key, o_orderstatus as order_status,
       o_totalprice as total_price, o_orderdate as order_date, o_orderpriority as order_priority,
       o_shippriority as ship_priority
from raw.tpch__orders""",
    "customer": """select c_custkey as customer_key, c_name as customer_name, c_address as address,
       c_nationkey as nation_key, c_phone as phone, c_acctbal as account_balance,
       c_mktsegment as market_segment, c_comment as comment
from raw.tpch__customer""",
    "part": """select p_partkey as part_key, p_name as part_name, p_mfgr as manufacturer, p_brand as brand,
       p_type as part_type, p_size as part_size, p_container as container,
       p_retailprice as retail_price
from raw.tpch__part""",
    "supplier": """select s_suppkey as supplier_key, s_name as supplier_name, s_address as address,
       s_nationkey as nation_key, s_phone as phone, s_acctbal as account_balance
from raw.tpch__supplier""",
    "partsupp": """select ps_partkey as part_key, ps_suppkey as supplier_key,
       ps_availqty as available_quantity, ps_supplycost as supply_cost
from raw.tpch__partsupp""",
    "nation": """select n_nationkey as nation_key, n_name as nation_name, n_regionkey as region_key
from raw.tpch__nation""",
    "region": """select r_regionkey as region_key, r_name as region_name
from raw.tpch__region""",
}

CORE = {
    "dim_customer": """select c.customer_key, c.customer_name, c.address, c.phone, c.account_balance,
       c.market_segment, c.comment, c.nation_key, n.nation_name, r.region_name
from staging.stg_customer c
join staging.stg_nation n on c.nation_key = n.nation_key
join staging.stg_region r on n.region_key = r.region_key""",
    "dim_supplier": """select s.supplier_key, s.supplier_name, s.address, s.phone, s.account_balance,
       s.nation_key, n.nation_name, r.region_name
from staging.stg_supplier s
join staging.stg_nation n on s.nation_key = n.nation_key
join staging.stg_region r on n.region_key = r.region_key""",
    "dim_part": """select p.part_key, p.part_name, p.manufacturer, p.brand, p.part_type, p.part_size,
       p.container, p.retail_price, ps.min_supply_cost, ps.suppliers
from staging.stg_part p
left join (
    select part_key, min(supply_cost) as min_supply_cost, count(*) as suppliers
    from staging.stg_partsupp
    group by part_key
) ps on ps.part_key = p.part_key""",
    "fct_orders": """select o.order_key, o.customer_key, o.order_date, o.order_status, o.order_priority,
       o.ship_priority, o.total_price,
       year(o.order_date) as order_year
from staging.stg_orders o""",
    "fct_lineitem": """select l.order_key, l.line_number, o.customer_key, l.part_key, l.supplier_key,
       o.order_date, o.ship_priority, l.ship_date, l.commit_date, l.receipt_date,
       l.return_flag, l.line_status, l.ship_mode, l.quantity, l.extended_price, l.discount, l.tax,
       l.extended_price * (1 - l.discount) as net_revenue,
       l.extended_price * (1 - l.discount) * (1 + l.tax) as gross_charge
from staging.stg_lineitem l
join staging.stg_orders o on l.order_key = o.order_key""",
}

MARTS = {
    # TPC-H Q1: pricing summary report
    "q1_pricing_summary": """select return_flag, line_status,
       sum(quantity) as sum_qty,
       sum(extended_price) as sum_base_price,
       sum(net_revenue) as sum_disc_price,
       sum(gross_charge) as sum_charge,
       avg(quantity) as avg_qty,
       avg(extended_price) as avg_price,
       avg(discount) as avg_disc,
       count(*) as count_order
from core.fct_lineitem
where ship_date <= date '1998-12-01' - interval 90 day
group by return_flag, line_status
order by return_flag, line_status""",
    # TPC-H Q3: shipping priority
    "q3_shipping_priority": """select f.order_key, sum(f.net_revenue) as revenue, f.order_date,
       f.ship_priority
from core.fct_lineitem f
join core.dim_customer c on f.customer_key = c.customer_key
where c.market_segment = 'BUILDING'
  and f.order_date < date '1995-03-15'
  and f.ship_date > date '1995-03-15'
group by f.order_key, f.order_date, f.ship_priority
order by revenue desc, f.order_date
limit 10""",
    # TPC-H Q5: local supplier volume
    "q5_local_supplier_volume": """select c.nation_name, sum(f.net_revenue) as revenue
from core.fct_lineitem f
join core.dim_customer c on f.customer_key = c.customer_key
join core.dim_supplier s on f.supplier_key = s.supplier_key and s.nation_key = c.nation_key
where c.region_name = 'ASIA'
  and f.order_date >= date '1994-01-01'
  and f.order_date < date '1995-01-01'
group by c.nation_name
order by revenue desc""",
    # TPC-H Q10: returned item reporting
    "q10_returned_items": """select c.customer_key, c.customer_name, sum(f.net_revenue) as revenue,
       c.account_balance, c.nation_name, c.address, c.phone, c.comment
from core.fct_lineitem f
join core.dim_customer c on f.customer_key = c.customer_key
where f.order_date >= date '1993-10-01'
  and f.order_date < date '1994-01-01'
  and f.return_flag = 'R'
group by c.customer_key, c.customer_name, c.account_balance, c.phone, c.nation_name, c.address,
         c.comment
order by revenue desc, c.customer_key
limit 20""",
}


def models() -> list[Model]:
    """Every model, in an order where each comes after what it reads."""
    found = [Model("staging", f"stg_{t}", "view", sql) for t, sql in STAGING.items()]
    found += [Model("core", name, "table", sql) for name, sql in CORE.items()]
    found += [Model("marts", name, "table", sql) for name, sql in MARTS.items()]
    return found


_REFERENCE = re.compile(r"`(raw|staging|core|marts)`\.`(\w+)`")


def parse_compiled(output: str) -> dict[str, str]:
    """``gristmill compile --dialect spark``'s output as {model: its Spark SQL}: a ``-- schema.name``
    line, then the statement ending with ``;``."""
    found: dict[str, str] = {}
    name = None
    for line in output.splitlines():
        if line.startswith("-- ") and "." in line and " " not in line[3:].strip():
            name = line[3:].strip()
            found[name] = ""
        elif name is not None and line.strip():
            found[name] += line + "\n"
    return {name: sql.strip().removesuffix(";") for name, sql in found.items()}


def dbt_sql(model: Model, spark_sql: str) -> str:
    """The model as a dbt-spark user writes it: its Spark SQL, ``{{ source() }}`` and ``{{ ref() }}``
    where it names a table."""

    def jinja(match: re.Match[str]) -> str:
        schema, name = match.groups()
        if schema == "raw":
            return "{{ source('tpch', '" + name.removeprefix("tpch__") + "') }}"
        return "{{ ref('" + name + "') }}"

    body = _REFERENCE.sub(jinja, spark_sql)
    return "{{ config(materialized='" + model.kind + "', file_format='parquet') }}\n" + body + "\n"


# -- the Gristmill project -------------------------------------------------------------------------


def gristmill_project(root: Path, data: Path, *, spark: dict[str, str]) -> Path:
    """The project: 8 ``files`` sources over the Parquet files, the models, and two targets:
    ``local`` (DuckDB, the default) and ``big`` (Spark, ``spark`` is its settings as TOML values)."""
    (root / "sources").mkdir(parents=True)
    tables = "\n".join(f"  {t}: {{path: {data / t}.parquet}}" for t in TABLES)
    (root / "sources" / "tpch.yml").write_text(f"kind: files\ntables:\n{tables}\n")
    for model in models():
        folder = root / "models" / model.schema
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{model.name}.sql").write_text(f"-- kind: {model.kind}\n{model.sql}\n")
    big = "".join(f"{key} = {value}\n" for key, value in spark.items())
    (root / "gristmill.toml").write_text(
        'name = "tpch_bench"\ntarget = "local"\n\n'
        '[targets.local]\nengine = "duckdb"\nthreads = 2\n\n'
        f'[targets.big]\nengine = "spark"\n{big}'
    )
    return root


# -- the dbt project -------------------------------------------------------------------------------


def dbt_project(
    root: Path, compiled: dict[str, str], *, master: str, conf: dict[str, str], threads: int
) -> Path:
    """dbt-spark's project: the same models, ``method: session`` (a Spark session in dbt's own
    process, on ``master`` with ``conf``), sources the tables of schema ``raw``."""
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        "name: tpch_bench\nversion: '1.0'\nconfig-version: 2\nprofile: tpch_bench\n"
        "model-paths: [models]\n"
        "models:\n  tpch_bench:\n"
        + "".join(f"    {s}:\n      +schema: {s}\n" for s in ("staging", "core", "marts"))
    )
    # dbt's default names a custom schema <target schema>_<custom>; these are the plain names.
    (root / "macros").mkdir()
    (root / "macros" / "schema.sql").write_text(
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n"
        "{{ custom_schema_name or target.schema }}\n{%- endmacro %}\n"
    )
    tables = "".join(f"      - name: {t}\n        identifier: tpch__{t}\n" for t in TABLES)
    (root / "models" / "sources.yml").write_text(
        f"version: 2\nsources:\n  - name: tpch\n    schema: raw\n    tables:\n{tables}"
    )
    for model in models():
        folder = root / "models" / model.schema
        folder.mkdir(exist_ok=True)
        (folder / f"{model.name}.sql").write_text(dbt_sql(model, compiled[model.asset]))
    parameters = "".join(f"        {k}: '{v}'\n" for k, v in {"spark.master": master, **conf}.items())
    (root / "profiles.yml").write_text(
        "tpch_bench:\n  target: dev\n  outputs:\n    dev:\n      type: spark\n      method: session\n"
        f"      host: NA\n      schema: analytics\n      threads: {threads}\n"
        f"      server_side_parameters:\n{parameters}"
    )
    return root
