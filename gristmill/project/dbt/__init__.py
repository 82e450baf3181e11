"""Run a dbt project folder as it is: its models, seeds, snapshots, macros and schema tests become
Gristmill models, a files source and checks. See docs/dbt.md for what is supported."""

from gristmill.project.dbt.config import DBT_PROJECT_FILE, is_dbt_project
from gristmill.project.dbt.loader import load_dbt_project

__all__ = ["DBT_PROJECT_FILE", "is_dbt_project", "load_dbt_project"]
