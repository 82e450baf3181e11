"""Plan a project in-process (run by the project venv's Python in a fresh process).

    python plan_inprocess.py PROJECT

Times ``Workspace(PROJECT).plan()`` — reading, parsing and validating every model (or taking the
parse from the state store's cache), the graph and the plan — after the imports, so interpreter
start-up is not included (the facade imports the runtime on first use: it is imported here
first, so the timing stays the call's own work). Prints JSON: wall_s, cpu_s, models (steps
planned), parsed (models parsed in this call rather than taken from the cache).
"""

from __future__ import annotations

import json
import sys
import time

import gristmill.runtime.planning  # noqa: F401  imported up front as before the facade became lazy
from gristmill.workspace import Workspace


def main() -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    workspace = Workspace(sys.argv[1])
    plan = workspace.plan()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    parsed = len(workspace.graph.parsed_now)
    workspace.close()
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "models": len(plan.steps), "parsed": parsed}))


if __name__ == "__main__":
    main()
