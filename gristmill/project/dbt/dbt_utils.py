"""The dbt_utils package's common SQL macros (``dbt_utils.star``…), emitting DuckDB SQL built as sqlglot
ASTs. Each follows what dbt_utils produces on DuckDB, so results match; macros that query the
warehouse while compiling (get_column_values…) are refused with a clear error."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

from sqlglot import exp

from gristmill.project.dbt.crossdb import (
    DIALECT,
    CrossDb,
    as_list,
    from_table,
    func,
    parse,
    quoted,
    to_sql,
)
from gristmill.project.dbt.jinja import DbtError, Relation


class DbtUtils(CrossDb):
    """The dbt_utils package's SQL macros (``dbt_utils.star``…), for DuckDB."""

    def __init__(
        self,
        *,
        var: Callable[..., Any],
        columns: Callable[[Any], list[str]],
        database: str,
        executing: bool = True,
    ) -> None:
        self._var = var
        self._columns = columns
        self._database = database
        self._executing = executing

    def functions(self) -> dict[str, Callable[..., Any]]:
        names = [
            "generate_surrogate_key",
            "surrogate_key",
            "star",
            "get_filtered_columns_in_relation",
            "union_relations",
            "pivot",
            "unpivot",
            "deduplicate",
            "safe_add",
            "safe_subtract",
            "safe_divide",
            "group_by",
            "get_powers_of_two",
            "slugify",
            "nullcheck",
            "nullcheck_table",
            "pretty_time",
            "pretty_log_format",
            "log_info",
        ]
        refused = [
            "get_column_values",
            "get_relations_by_pattern",
            "get_relations_by_prefix",
            "get_query_results_as_dict",
            "get_single_value",
            "get_tables_by_pattern_sql",
            "get_intervals_between",
        ]
        found: dict[str, Callable[..., Any]] = {name: getattr(self, name) for name in names}
        found.update({name: _refuse(name) for name in refused})
        found["generate_series"] = self.generate_series_utils
        found["date_spine"] = self.date_spine_utils
        return {**super().functions(), **found}

    def namespace(self) -> Any:
        functions = self.functions()

        class Namespace:
            def __getattr__(self, name: str) -> Any:
                if name in functions:
                    return functions[name]
                raise DbtError(
                    f"dbt_utils.{name} is not supported",
                    hint="see docs/dbt.md for the dbt_utils macros Gristmill renders",
                )

        return Namespace()

    # keys
    def _key(self, fields: Sequence[Any], null: str) -> str:
        parts: list[exp.Expr] = []
        for number, field in enumerate(as_list(fields)):
            if number:
                parts.append(exp.Literal.string("-"))
            text = exp.cast(parse(field, "surrogate key"), self.type_string())
            parts.append(exp.Coalesce(this=text, expressions=[exp.Literal.string(null)]))
        return self.hash(self.concat(parts))

    def generate_surrogate_key(self, field_list: Sequence[Any]) -> str:
        empty = self._var("surrogate_key_treat_nulls_as_empty_strings", False)
        return self._key(field_list, "" if empty else "_dbt_utils_surrogate_key_null_")

    def surrogate_key(self, field_list: Any, *more: Any) -> str:
        fields = [*as_list(field_list), *more]
        return self._key(fields, "")

    # columns of a relation
    def get_filtered_columns_in_relation(
        self, from_: Any = None, except_: Any = None, **kwargs: Any
    ) -> list[str]:
        relation = kwargs.get("from", from_)
        skipped = {str(c).lower() for c in as_list(kwargs.get("except", except_))}
        return [c for c in self._columns(relation) if c.lower() not in skipped]

    def star(
        self,
        from_: Any = None,
        relation_alias: Any = False,
        except_: Any = None,
        prefix: str = "",
        suffix: str = "",
        quote_identifiers: bool = True,
        **kwargs: Any,
    ) -> str:
        if not self._executing:
            return "*"
        columns = self.get_filtered_columns_in_relation(
            kwargs.get("from", from_), kwargs.get("except", except_)
        )
        if not columns:
            raise DbtError("dbt_utils.star found no columns to select")
        items = []
        for name in columns:
            column = exp.column(
                exp.to_identifier(name, quoted=bool(quote_identifiers)), table=relation_alias or None
            )
            if prefix or suffix:
                items.append(
                    exp.alias_(
                        column, exp.to_identifier(f"{prefix}{name}{suffix}", quoted=bool(quote_identifiers))
                    )
                )
            else:
                items.append(column)
        return ",\n  ".join(to_sql(item) for item in items)

    def union_relations(
        self,
        relations: Sequence[Any],
        column_override: dict[str, str] | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        source_column_name: str = "_dbt_source_relation",
        where: str | None = None,
    ) -> str:
        if include and exclude:
            raise DbtError("union_relations takes an include list or an exclude list, not both")
        if not self._executing:
            return ""
        by_relation: list[tuple[Any, list[str]]] = []
        superset: dict[str, None] = {}
        for relation in relations:
            kept = [
                c
                for c in self._columns(relation)
                if not (exclude and c in exclude) and not (include and c not in include)
            ]
            by_relation.append((relation, kept))
            superset.update(dict.fromkeys(kept))
        if not superset:
            raise DbtError("union_relations found no columns to union")
        override = column_override or {}
        selects: list[exp.Query] = []
        for relation, kept in by_relation:
            label = exp.Literal.string(self._label(relation))
            items: list[exp.Expr] = [exp.alias_(exp.cast(label, self.type_string()), source_column_name)]
            for name in superset:
                value: exp.Expr = exp.column(quoted(name)) if name in kept else exp.null()
                if name in override:
                    value = exp.cast(value, override[name], dialect=DIALECT)
                items.append(exp.alias_(value, quoted(name)))
            select = exp.select(*items).from_(from_table(relation, "union_relations"))
            if where:
                select = select.where(parse(where, "union_relations where"))
            selects.append(select)
        return to_sql(reduce(_union_all, selects))

    def _label(self, relation: Any) -> str:
        if isinstance(relation, Relation):
            return f'"{self._database}"."{relation.schema}"."{relation.identifier}"'
        return str(relation)

    # reshaping
    def pivot(
        self,
        column: Any,
        values: Sequence[Any],
        alias: bool = True,
        agg: str = "sum",
        cmp: str = "=",
        prefix: str = "",
        suffix: str = "",
        then_value: Any = 1,
        else_value: Any = 0,
        quote_identifiers: bool = True,
        distinct: bool = False,
    ) -> str:
        items = []
        for value in values:
            literal = to_sql(exp.Literal.string(str(value)))
            condition = parse(f"{column} {cmp} {literal}", "pivot")
            case = exp.case().when(condition, parse(then_value, "pivot")).else_(parse(else_value, "pivot"))
            aggregate = func(str(agg), exp.Distinct(expressions=[case]) if distinct else case)
            if alias:
                name = f"{prefix}{value}{suffix}"
                label = (
                    exp.to_identifier(name, quoted=True)
                    if quote_identifiers
                    else exp.to_identifier(self.slugify(name))
                )
                items.append(exp.alias_(aggregate, label))
            else:
                items.append(aggregate)
        return ",\n  ".join(to_sql(item) for item in items)

    def unpivot(
        self,
        relation: Any = None,
        cast_to: str = "varchar",
        exclude: Sequence[str] | None = None,
        remove: Sequence[str] | None = None,
        field_name: str = "field_name",
        value_name: str = "value",
        quote_identifiers: bool = False,
    ) -> str:
        if relation is None:
            raise DbtError("unpivot needs a relation")
        if not self._executing:
            return ""
        kept = [str(c) for c in (exclude or [])]
        dropped = {c.lower() for c in [*kept, *(remove or [])]}
        selects: list[exp.Query] = []
        for name in self._columns(relation):
            if name.lower() in dropped:
                continue
            selects.append(
                exp.select(
                    *(exp.column(c) for c in kept),
                    exp.alias_(exp.cast(exp.Literal.string(name), self.type_string()), field_name),
                    exp.alias_(exp.cast(exp.column(quoted(name)), cast_to, dialect=DIALECT), value_name),
                ).from_(from_table(relation, "unpivot"))
            )
        if not selects:
            raise DbtError("unpivot found no columns to unpivot")
        return to_sql(reduce(_union_all, selects))

    def deduplicate(self, relation: Any, partition_by: str, order_by: str) -> str:
        """dbt_utils' default: the first row per partition, joined back on every column."""
        numbered = parse(
            f"select _inner.*, row_number() over (partition by {partition_by} order by {order_by}) as rn"
            " from __relation__ as _inner",
            "deduplicate",
        )
        query = parse(
            "select distinct data.* from __relation__ as data natural join row_numbered"
            " where row_numbered.rn = 1",
            "deduplicate",
        )
        for tree in (numbered, query):
            for table in tree.find_all(exp.Table):
                if table.name == "__relation__":
                    source = from_table(relation, "deduplicate")
                    source.set("alias", table.args.get("alias"))
                    table.replace(source)
        assert isinstance(query, exp.Select)
        return to_sql(query.with_("row_numbered", as_=numbered))

    # arithmetic
    def safe_add(self, field_list: Any, *more: Any) -> str:
        return self._safe_fold([*as_list(field_list), *more], exp.Add)

    def safe_subtract(self, field_list: Any, *more: Any) -> str:
        return self._safe_fold([*as_list(field_list), *more], exp.Sub)

    def _safe_fold(self, fields: list[Any], operator: type[exp.Binary]) -> str:
        parts: list[exp.Expr] = [
            exp.Coalesce(this=parse(f, "safe arithmetic"), expressions=[exp.Literal.number(0)])
            for f in fields
        ]
        return to_sql(reduce(lambda left, right: operator(this=left, expression=right), parts))

    def safe_divide(self, numerator: Any, denominator: Any) -> str:
        denominator_or_null = func(
            "nullif", exp.paren(parse(denominator, "safe_divide")), exp.Literal.number(0)
        )
        return to_sql(
            exp.Div(this=exp.paren(parse(numerator, "safe_divide")), expression=denominator_or_null)
        )

    # small helpers
    def group_by(self, n: int) -> str:
        return "group by " + ",".join(str(i) for i in range(1, int(n) + 1))

    def get_powers_of_two(self, upper_bound: int) -> int:
        if upper_bound <= 0:
            raise DbtError("upper bound must be positive")
        return next(i for i in range(1, 100) if upper_bound <= 2**i)

    def generate_series_utils(self, upper_bound: Any) -> str:
        """dbt_utils' series: numbers built from powers of two, so they come out as DOUBLE."""
        number = exp.cast(exp.column("generate_series"), "double")
        series = func("generate_series", exp.Literal.number(1), parse(upper_bound, "generate_series"))
        return to_sql(exp.select(exp.alias_(number, "generated_number")).from_(series))

    def date_spine_utils(self, datepart: str, start_date: Any, end_date: Any) -> str:
        return self.date_spine(datepart, start_date, end_date)

    def slugify(self, string: str) -> str:
        slug = re.sub(r"[^a-z0-9_]+", "_", re.sub(r"[ -]+", "_", str(string).lower()))
        return f"_{slug}" if slug[:1].isdigit() else slug

    def _nullchecks(self, cols: Sequence[Any]) -> list[exp.Expr]:
        names = [str(getattr(col, "column", col)) for col in cols]
        return [exp.alias_(func("nullif", exp.column(n), exp.Literal.string("")), n) for n in names]

    def nullcheck(self, cols: Sequence[Any]) -> str:
        return ", ".join(to_sql(item) for item in self._nullchecks(cols))

    def nullcheck_table(self, relation: Any) -> str:
        columns = self._nullchecks(self._columns(relation))
        return to_sql(exp.select(*columns).from_(from_table(relation, "nullcheck_table")))

    def pretty_time(self, format: str = "%H:%M:%S") -> str:
        return dt.datetime.now().strftime(format)

    def pretty_log_format(self, message: Any) -> str:
        return f"{self.pretty_time()} + {message}"

    def log_info(self, message: Any) -> str:
        return ""


def _union_all(left: exp.Query, right: exp.Query) -> exp.Query:
    return exp.union(left, right, distinct=False)


def _refuse(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise DbtError(
            f"dbt_utils.{name} queries the warehouse while compiling, which Gristmill does not do",
            hint="write the values into the model or a var in dbt_project.yml instead",
        )

    return refuse
