"""Mistakes in metrics/*.yml are found when the project loads, each at its file and line: a
misspelt key, a semantic model over no asset, a metric over an unknown measure or metric, a time
dimension that is not one, derived metrics that read each other in a loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.errors import ConfigError
from gristmill.workspace import Workspace

SOURCE = "kind: files\npath: data/orders.csv\ntables:\n  orders: {}\n"
FILES = {
    "sources/shop.yml": SOURCE,
    "data/orders.csv": "order_id,amount,ordered_at\n1,5.5,2024-01-02\n",
    "models/marts/orders.sql": "-- kind: table\nselect * from raw.shop__orders\n",
}
MODEL = """\
semantic_models:
  - name: orders
    model: ref('orders')
    defaults:
      agg_time_dimension: ordered_at
    dimensions:
      - name: ordered_at
        type: time
      - name: country
        type: categorical
    measures:
      - name: amount
        agg: sum
"""


def error_of(root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        Workspace(root)
    return caught.value


def load(make_project: Callable[..., Path], metrics: str) -> ConfigError:
    return error_of(make_project({**FILES, "metrics/shop.yml": metrics}))


def test_a_valid_file_loads_with_every_metric(make_project: Callable[..., Path]) -> None:
    metrics = MODEL + "metrics:\n  - name: amount\n    type: simple\n    type_params: {measure: amount}\n"
    workspace = Workspace(make_project({**FILES, "metrics/shop.yml": metrics}))
    assert [m.name for m in workspace.metrics()] == ["amount"]
    assert workspace.metrics()[0].location == "metrics/shop.yml:15"


def test_an_unknown_measure_is_named_at_its_line(make_project: Callable[..., Path]) -> None:
    err = load(
        make_project,
        MODEL + "metrics:\n  - name: a\n    type: simple\n    type_params:\n      measure: amonut\n",
    )
    assert str(err).startswith('metrics/shop.yml:18: unknown measure "amonut"')
    assert err.hint == 'did you mean "amount"?'


def test_a_semantic_model_over_no_asset_is_an_error(make_project: Callable[..., Path]) -> None:
    err = load(make_project, MODEL.replace("ref('orders')", "ref('ordres')"))
    assert str(err).startswith("metrics/shop.yml:3: model \"ref('ordres')\" is no model or source table")
    assert err.hint == 'did you mean "orders"?'


def test_an_unknown_time_dimension_is_an_error(make_project: Callable[..., Path]) -> None:
    err = load(make_project, MODEL.replace("agg_time_dimension: ordered_at", "agg_time_dimension: order_at"))
    assert str(err).startswith('metrics/shop.yml:5: unknown dimension "order_at" in semantic model "orders"')
    err = load(make_project, MODEL.replace("agg_time_dimension: ordered_at", "agg_time_dimension: country"))
    assert "is not a time dimension" in str(err) and str(err).startswith("metrics/shop.yml:5:")


def test_a_misspelt_key_and_a_wrong_aggregation_are_errors(make_project: Callable[..., Path]) -> None:
    err = load(make_project, MODEL.replace("agg: sum", "agg: sum\n        exrp: amount"))
    assert str(err).startswith('metrics/shop.yml:14: unknown key "semantic_models.0.measures.0.exrp"')
    assert err.hint == 'did you mean "expr"?'
    err = load(make_project, MODEL.replace("agg: sum", "agg: total"))
    assert str(err).startswith("metrics/shop.yml:13: semantic_models.0.measures.0.agg: Input should be")


def test_derived_metrics_name_only_their_inputs_and_never_loop(make_project: Callable[..., Path]) -> None:
    simple = "  - name: amount\n    type: simple\n    type_params: {measure: amount}\n"
    derived = "  - name: d\n    type: derived\n    type_params:\n      expr: amount - other\n"
    derived += "      metrics: [amount]\n"
    err = load(make_project, MODEL + "metrics:\n" + simple + derived)
    assert str(err).startswith('metrics/shop.yml:21: derived metric "d" uses "other"')
    loop = (
        "  - name: a\n    type: derived\n    type_params: {expr: b, metrics: [b]}\n"
        "  - name: b\n    type: ratio\n    type_params: {numerator: a, denominator: amount}\n"
    )
    err = load(make_project, MODEL + "metrics:\n" + simple + loop)
    assert "metrics read each other in a loop" in str(err) and str(err).startswith("metrics/shop.yml:")
    err = load(
        make_project,
        MODEL + "metrics:\n  - name: r\n    type: ratio\n    type_params: {numerator: x, denominator: y}\n",
    )
    assert str(err).startswith('metrics/shop.yml:17: unknown metric "x"')


def test_a_cumulative_window_must_be_a_length_of_time(make_project: Callable[..., Path]) -> None:
    cumulative = "  - name: c\n    type: cumulative\n    type_params: {measure: amount, window: soon}\n"
    err = load(make_project, MODEL + "metrics:\n" + cumulative)
    assert 'window "soon" is not a length of time' in str(err) and str(err).startswith("metrics/shop.yml:17")


CUSTOMERS = """\
  - name: customers
    model: ref('orders')
    entities:
      - {name: customer, type: foreign, expr: order_id}
    dimensions:
      - {name: segment, type: categorical}
"""
WITH_ENTITY = MODEL.replace(
    "    dimensions:\n",
    "    entities:\n      - {name: customer, type: foreign, expr: order_id}\n    dimensions:\n",
    1,
)
SIMPLE = "  - name: amount\n    type: simple\n    type_params: {measure: amount}\n"


def test_a_metric_filter_is_checked_at_its_line(make_project: Callable[..., Path]) -> None:
    err = load(
        make_project, MODEL + "metrics:\n" + SIMPLE + "    filter: \"{{ Dimension('contry') }} = 'DE'\"\n"
    )
    assert str(err).startswith(
        'metrics/shop.yml:18: filter: "contry" is no dimension of semantic model "orders"'
    )
    err = load(
        make_project, MODEL + "metrics:\n" + SIMPLE + "    filter: \"{{ Dimension('country') }} = amount\"\n"
    )
    assert str(err).startswith('metrics/shop.yml:18: filter uses "amount"') or "filter" in str(err)
    err = load(
        make_project,
        MODEL
        + "metrics:\n"
        + SIMPLE
        + "    filter: \"(select 1) = 1 or {{ Dimension('country') }} = 'x'\"\n",
    )
    assert "may not use" in str(err) and str(err).startswith("metrics/shop.yml:18:")
    err = load(make_project, MODEL + "metrics:\n" + SIMPLE + "    filter: 'country:like:%x%'\n")
    assert "not dimension:operator:value" in str(err)
    ratio = "  - name: r\n    type: ratio\n    type_params:\n"
    ratio += "      numerator: {name: amount, filter: 'contry:eq:x'}\n"
    err = load(make_project, MODEL + "metrics:\n" + SIMPLE + ratio + "      denominator: amount\n")
    assert str(err).startswith('metrics/shop.yml:21: filter: "contry" is no dimension')


def test_a_join_that_would_fan_out_is_refused_where_a_filter_needs_it(
    make_project: Callable[..., Path],
) -> None:
    metrics = WITH_ENTITY + CUSTOMERS + "metrics:\n" + SIMPLE + "    filter: 'customer__segment:eq:a'\n"
    err = load(make_project, metrics)
    assert "would repeat the rows" in str(err) and "fan-out" in str(err)
    assert err.hint == '"customer" must be a primary or unique entity of "customers"'


def test_materialize_and_conversion_are_checked(make_project: Callable[..., Path]) -> None:
    distinct = MODEL.replace("agg: sum", "agg: count_distinct")
    err = load(make_project, distinct + "metrics:\n" + SIMPLE + "    materialize: daily\n")
    assert str(err).startswith(
        'metrics/shop.yml:18: metric "amount" cannot be materialized: measure "amount"'
    )
    err = load(make_project, MODEL + "metrics:\n" + SIMPLE + "    materialize: yearly\n")
    assert "materialize" in str(err)
    err = load(make_project, MODEL + "metrics:\n" + SIMPLE + "    materialize: hourly\n")
    assert "its time dimension holds days, nothing finer" in str(err)
    conversion = (
        "  - name: c\n    type: conversion\n    type_params:\n      conversion_type_params:\n"
        "        base_measure: amount\n        conversion_measure: amount\n        entity: user\n"
    )
    err = load(make_project, MODEL + "metrics:\n" + conversion)
    assert str(err).startswith('metrics/shop.yml:21: entity "user" is no entity of semantic model "orders"')


def test_a_pre_aggregation_never_replaces_a_model(make_project: Callable[..., Path]) -> None:
    files = {**FILES, "models/metrics/amount_daily.sql": "-- kind: table\nselect 1 as x\n"}
    metrics = MODEL + "metrics:\n" + SIMPLE + "    materialize: daily\n"
    root = make_project({**files, "metrics/shop.yml": metrics})
    err = error_of(root)
    assert "metrics.amount_daily" in str(err) and "already a model" in str(err)
    (root / "models" / "metrics" / "amount_daily.sql").unlink()
    workspace = Workspace(root)
    model = workspace.project.models["metrics.amount_daily"]
    assert model.kind == "table" and "marts.orders" in model.sql and model.file == "metrics/shop.yml"
