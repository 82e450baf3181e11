"""The ``gristmill`` command's entry point: what must be settled before the imports start.

A command is one short process whose imports build tens of thousands of objects that live as long
as it does. The collector would walk them again at every collection, and once more at exit: so it
pauses while they are built, and they are frozen out of its way once built and again at the end."""

from __future__ import annotations

import gc
import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["stream"]:
        # SQL and Arrow only: OpenBLAS's helper threads (numpy loads with pyarrow) would spin idle
        # for a while after start-up, on every core.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    collecting = gc.isenabled()
    gc.disable()
    from gristmill.cli.app import main as run

    gc.freeze()
    # Most of a verb's imports come later, on first use (the runtime, the engine, sqlglot): at the
    # default threshold (700) the collector ran ~150 times in a one-table load, walking every
    # module object again each time (~40 ms of CPU); at 20,000 it runs a few times. Cyclic garbage
    # is rare here and still collected, only later.
    gc.set_threshold(20_000, *gc.get_threshold()[1:])
    if collecting:
        gc.enable()
    try:
        run()
    finally:
        gc.freeze()
