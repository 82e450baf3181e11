"""Orchestration benchmark: framework overhead per task on a 200-asset braided DAG (Gristmill's runner,
a plain graphlib loop, `gristmill run`, Dagster's materialize()) and planning 2,000 assets."""
