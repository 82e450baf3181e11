"""Reading ``dashboards/*.md``: blocks, filters and prose parsed with their lines; every mistake
a ``file:line`` error at load time (unknown block, bad chart type, unknown metric or table, SQL
that is no SELECT or that the guard refuses)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gristmill.dashboards.reading import check_guarded
from gristmill.errors import ConfigError
from gristmill.project import load_project
from gristmill.project.dashboard_specs import ChartBlock, MetricBlock, Prose, SqlBlock, parse_dashboard
from gristmill.project.dashboards import load_dashboards
from gristmill.project.scaffold import create_demo

ASSETS = ["marts.sales", "marts.dim_customer"]
METRICS = ["revenue"]

GOOD = """\
---
title: Sales
filters:
  - name: country
    type: select
    from: "select distinct country from marts.dim_customer"
---
# Sales

Some *prose*.

```sql name=by_country
select country, sum(amount) as amount from marts.sales
where {{ filters.country }} is null or country = {{ filters.country }}
group by 1
```

```metric name=monthly
metric: revenue
grain: month
by: [country]
where: "country:eq:{{ filters.country }}"
```

```chart
type: bar
data: by_country
x: country
y: amount
```

```python
print("not a block: shown as code")
```
"""


def load(tmp_path: Path, text: str, name: str = "sales") -> dict[str, object]:
    folder = tmp_path / "dashboards"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.md").write_text(textwrap.dedent(text))
    return load_dashboards(tmp_path, ASSETS, METRICS)  # type: ignore[return-value]


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text)
    return str(raised.value)


def test_blocks_filters_and_prose_are_read_with_their_lines() -> None:
    d = parse_dashboard(GOOD, "dashboards/sales.md", "sales")
    assert d.title == "Sales"
    (f,) = d.filters
    assert (f.name, f.type, f.options_sql) == (
        "country",
        "select",
        "select distinct country from marts.dim_customer",
    )
    kinds = [type(p) for p in d.parts]
    assert kinds == [Prose, SqlBlock, MetricBlock, ChartBlock, Prose]
    sql = d.data["by_country"]
    assert isinstance(sql, SqlBlock) and sql.line == 12 and sql.filters == ("country", "country")
    metric = d.data["monthly"]
    assert isinstance(metric, MetricBlock)
    assert metric.columns == ("metric_time", "country", "revenue") and metric.line == 18
    assert d.charts[0].line == 25
    assert "<em>prose</em>" in d.parts[0].html  # type: ignore[union-attr]
    assert "not a block" in d.parts[-1].html  # type: ignore[union-attr]


def test_raw_html_in_prose_is_text_not_markup() -> None:
    d = parse_dashboard("<script>alert(1)</script>\n", "dashboards/x.md", "x")
    assert "<script>" not in d.parts[0].html  # type: ignore[union-attr]


def test_the_title_falls_back_to_the_first_heading_then_the_name() -> None:
    assert parse_dashboard("# Hello\n", "d.md", "d").title == "Hello"
    assert parse_dashboard("text\n", "d.md", "d").title == "d"


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("```chart\ntype: pie\ndata: x\n```\n", ":2", 'chart type "pie"'),
        ("```sql name=a\nselect 1\n```\n\n```chart\ntype: line\ndata: b\n```\n", ":5", 'chart data "b"'),
        ("```sql\nselect 1\n```\n", ":1", "needs a name"),
        ("```sql name=a\nselect 1\n```\n```sql name=a\nselect 2\n```\n", ":4", "defined twice"),
        ("```sql name=a\nselect {{ filters.nope }}\n```\n", ":1", 'no filter "nope"'),
        ("```sql name=a\nselect {{ 1 + 1 }}\n```\n", ":1", "page filters only"),
        ("```chart\ntype: line\ndata: a\ncolour: red\n```\n", ":1", "unknown key 'colour'"),
        ("```metric\nmetric: profit\n```\n", ":1", 'unknown metric "profit"'),
        ("```metric\nmetric: revenue\ngrain: fortnight\n```\n", ":1", 'unknown grain "fortnight"'),
        ("```metric\nmetric: revenue\nwhere: country=DE\n```\n", ":1", "dimension:operator:value"),
        ("\n\n```sql name=a\nselect * from marts.nope\n```\n", ":3", '"marts.nope" is not a table'),
        ("```sql name=a\ndelete from marts.sales\n```\n", ":1", "one SELECT"),
        ("```sql name=a\nselect 1; select 2\n```\n", ":1", "one SELECT"),
        ("```sql name=a\nselect * from sales\n```\n", ":1", "needs its schema"),
        ("```sql name=a\nselect * from read_csv('/etc/passwd')\n```\n", ":1", "table functions"),
        ("```sql name=a\nselect from where\n```\n", ":1", "does not parse"),
        (
            "```metric name=m\nmetric: revenue\n```\n```chart\ntype: line\ndata: m\nx: metric_time\n```\n",
            ":4",
            'chart column "metric_time"',
        ),
        ("---\nfilters: [{name: c, type: slider}]\n---\n", ":1", 'unknown type "slider"'),
        ("---\ntitle: [unclosed\n---\n", ":", "front matter is not YAML"),
        ("---\ntitle: x\n", ":1", "never closed"),
    ],
)
def test_mistakes_are_file_line_errors(tmp_path: Path, text: str, where: str, says: str) -> None:
    message = error(tmp_path, text)
    assert message.startswith(f"dashboards/sales.md{where}"), message
    assert says in message


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("select getenv('HOME')", "getenv() is not allowed"),
        ("select * from marts.sales, lateral (select 1)", "not allowed"),
        ("select current_setting('x')", "not allowed"),
    ],
)
def test_the_guard_refuses_what_it_refuses_with_file_and_line(tmp_path: Path, sql: str, says: str) -> None:
    (dashboard,) = load(tmp_path, f"text\n\n```sql name=a\n{sql}\n```\n").values()
    with pytest.raises(ConfigError) as raised:
        check_guarded(dashboard, ASSETS)  # type: ignore[arg-type]
    assert str(raised.value).startswith("dashboards/sales.md:3: ")
    assert says in str(raised.value)


def test_the_project_loader_reads_and_checks_the_dashboards(tmp_path: Path) -> None:
    root = create_demo(tmp_path / "shop")
    project = load_project(root)
    assert list(project.dashboards) == ["revenue"]
    revenue = project.dashboards["revenue"]
    assert [c.type for c in revenue.charts] == ["big_number", "line", "bar", "table"]
    (root / "dashboards" / "broken.md").write_text("# B\n\n```metric\nmetric: profit\n```\n")
    with pytest.raises(ConfigError) as raised:
        load_project(root)
    assert str(raised.value).startswith('dashboards/broken.md:3: unknown metric "profit"')
