"""Where ``gristmill check``'s time goes: each SQL statement it sends, with its wall and CPU time.

    .venv/bin/python -m bench.quality.trace [PROJECT]    # default: bench/.work-quality/gristmill

Runs ``gristmill check`` once in this process, on the project the benchmark left behind and with
the benchmark's snapshot of the source, timing every statement at the DuckDB engine's two entry
points (``_run``: execute; ``query``: a query fetched as Arrow), and writes them in full to
``trace.sql`` beside the project. CPU is this process's user+sys time (DuckDB's threads
included). A diagnosis, not a measurement of record.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).parents[2]
WORK = REPO / "bench" / ".work-quality"

Log = list[tuple[str, float, float]]


def _timed(function: Callable[..., Any], log: Log) -> Callable[..., Any]:
    def wrapper(self: object, sql: object, *args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(self, sql, *args, **kwargs)
        finally:
            text = (
                sql if isinstance(sql, str) else getattr(sql, "sql", lambda **_: str(sql))(dialect="duckdb")
            )
            log.append((" ".join(str(text).split()), time.perf_counter() - wall, time.process_time() - cpu))

    return wrapper


def main() -> None:
    project = Path(sys.argv[1]) if len(sys.argv) > 1 else WORK / "gristmill"
    snapshot = project.parent / "src"
    if snapshot.exists():
        sys.path.insert(0, str(snapshot))
    from gristmill.cli.app import main as gristmill
    from gristmill.engines.duckdb.engine import DuckDBEngine

    log: Log = []
    DuckDBEngine._run = _timed(DuckDBEngine._run, log)  # type: ignore[method-assign]
    DuckDBEngine.query = _timed(DuckDBEngine.query, log)  # type: ignore[method-assign]
    os.chdir(project)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        gristmill(["check"])
    except SystemExit:
        pass
    except Exception as err:  # report it, and show what was traced so far
        print(f"gristmill check raised {type(err).__name__}: {err}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"\n{len(log)} statements; the command took {wall:.2f} s wall, {cpu:.2f} s cpu in-process")
    print(f"{'wall s':>8}{'cpu s':>8}  statement")
    for text, took, used in log:
        print(f"{took:>8.3f}{used:>8.3f}  {text[:150]}")
    print(f"{sum(t for _, t, _ in log):>8.3f}{sum(c for _, _, c in log):>8.3f}  total of the statements")
    full = project.parent / "trace.sql"
    full.write_text(
        "".join(f"-- {took:.3f} s wall, {used:.3f} s cpu\n{text};\n\n" for text, took, used in log)
    )
    print(f"the statements in full: {full}")


if __name__ == "__main__":
    main()
