from __future__ import annotations

from gristmill.plan.classes import propagate

EDGES = {
    ("staging.customers", "email"): (("raw.customers", "email"),),
    ("marts.dim_customer", "email_upper"): (("staging.customers", "email"),),
    ("marts.dim_customer", "contact"): (("staging.customers", "email"), ("staging.customers", "phone")),
    ("marts.kpis", "customers"): (("staging.customers", "email"),),
    ("marts.kpis", "top_email"): (("marts.dim_customer", "email_upper"),),
    ("marts.kpis", "buckets"): (("staging.customers", "email"),),
}
EXPRESSIONS = {
    ("marts.dim_customer", "email_upper"): "UPPER(customers.email)",
    ("marts.kpis", "customers"): "COUNT(DISTINCT c.email)",
    ("marts.kpis", "top_email"): "MAX(email_upper)",
    ("marts.kpis", "buckets"): "COUNT(CASE WHEN email LIKE '%x' THEN email END)",
}


def test_classes_flow_through_expressions_not_allowed_aggregates() -> None:
    got = propagate(
        {"raw.customers": {"email": "email"}, "staging.customers": {"phone": "phone"}},
        EDGES,
        expressions=EXPRESSIONS,
    )
    assert got["marts.dim_customer"] == {"email_upper": {"email"}, "contact": {"email", "phone"}}
    assert got["marts.kpis"] == {"top_email": {"email"}, "buckets": {"email"}}


def test_an_aggregate_the_policy_does_not_allow_passes_the_class() -> None:
    got = propagate(
        {"raw.customers": {"email": "email"}}, EDGES, expressions=EXPRESSIONS, allowed_aggregates=()
    )
    assert got["marts.kpis"]["customers"] == {"email"}
