"""Unit tests of models: each model's own SQL over fixture rows in a private, empty engine of the
project's kind (DuckDB in memory where the kind cannot make one that takes Arrow), its result
compared with the expected rows. The warehouse is never opened, so tests work before the first
``gristmill run`` and never change published data."""

from gristmill.runtime.unittests.prepare import model_of, select_tests
from gristmill.runtime.unittests.results import UnitTestResult, UnitTestRun
from gristmill.runtime.unittests.run import run_unit_tests

__all__ = ["UnitTestResult", "UnitTestRun", "model_of", "run_unit_tests", "select_tests"]
