"""A metric definition's filter: MetricFlow's Jinja-ish SQL or the structured form of queries,
parsed to a condition over dimension references and nothing else."""

from __future__ import annotations

import pytest
from sqlglot import exp

from gristmill.project.metric_filters import Condition, Filter, parse_metric_filter, placeholder


def test_the_jinja_form_becomes_a_condition_over_references() -> None:
    parsed = parse_metric_filter(
        "{{ Dimension('customer__country') }} in ('DE', 'FR') and "
        "{{ TimeDimension('invoice_date', 'month') }} >= '2024-01-01' or {{ Entity('customer') }} is null"
    )
    assert isinstance(parsed, Condition)
    assert parsed.refs == ("customer__country", "invoice_date__month", "customer")
    columns = {c.name for c in parsed.tree.find_all(exp.Column)}
    assert columns == {placeholder(0), placeholder(1), placeholder(2)}
    grain = parse_metric_filter("{{ Dimension('invoice_date').grain('year') }} = '2024-01-01'")
    assert isinstance(grain, Condition) and grain.refs == ("invoice_date__year",)


def test_the_structured_form_is_a_query_filter() -> None:
    assert parse_metric_filter("country:in:DE,FR") == Filter("country", "in", ("DE", "FR"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ Dimension('country') }} = (select max(x) from secrets)", "may not use"),
        ("{{ Dimension('country') }} = upper('de')", "may not use"),
        ("{{ Dimension('country') }} = amount", 'filter uses "amount"'),
        ("{{ Dimension('country') }} = 'DE'; drop table x", "not a SQL condition"),
        ("{{ Metric('revenue', group_by=['country']) }} > 1", "nothing else in braces"),
        ("{{ Dimension('country') }} = 'DE' {% if x %}", "nothing else in braces"),
        ("{{ Entity('customer', 'month') }} = 1", "takes no grain"),
        ("country:like:%x%", "not dimension:operator:value"),
    ],
)
def test_anything_but_a_condition_over_dimensions_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        parse_metric_filter(text)
    assert message in str(caught.value)
