"""How a full build's cost grows with the number of models: Gristmill on its default storage
against dbt-duckdb (run + test), each size measured in one go so the ratio holds on a busy machine.

    .venv/bin/python -m bench.transform --models 100,300,600,1000,2000 [--skip-peers] [--repeat N]

For each size: a fresh project of that many models (the same layered spec as the 300-model
benchmark), `gristmill run` (land + build + one check per model) and, unless skipped, `dbt run`
followed by `dbt test` on the same SQL; then the ratio and the cost of each added model between
sizes (CPU seconds of the whole process tree, interpreter start included).
"""

from __future__ import annotations

import os
import shutil
import statistics
from pathlib import Path

from bench.transform import peers
from bench.transform.emit import generate
from bench.transform.measure import run
from bench.transform.spec import build_spec

Env = dict[str, str | None]


def curve(
    sizes: list[int],
    work: Path,
    env: Env,
    *,
    rows: int,
    threads: int,
    dbt: bool,
    repeat: int,
    baseline: Path | None = None,
) -> list[dict[str, float | int | None]]:
    """``baseline``: another copy of the ``gristmill`` package (e.g. the main branch's), built
    on the same project in the same repetition, to show what a change did."""
    gristmill = Path(env.get("GRISTMILL_VENV") or "") / "gristmill"
    found: list[dict[str, float | int | None]] = []
    for size in sizes:
        spec = build_spec(size, rows)
        ours: list[float] = []
        theirs: list[float] = []
        before: list[float] = []
        for rep in range(repeat):
            folder = work / f"curve-{size}-{rep}"
            generate(folder, spec, threads=threads)
            done = run(
                [gristmill, "run"],
                folder / "gristmill",
                {k: v for k, v in env.items() if k != "GRISTMILL_VENV"},
            )
            if not done.ok:
                print(f"  {size} models: gristmill run FAILED: {done.failure()}")
            ours.append(done.cpu)
            if baseline is not None:
                shutil.rmtree(folder / "gristmill" / ".gristmill", ignore_errors=True)
                python = Path(env.get("GRISTMILL_VENV") or "") / "python"
                plain = {k: v for k, v in env.items() if k != "GRISTMILL_VENV"}
                old = run(
                    [python, "-m", "gristmill", "run"],
                    folder / "gristmill",
                    {**plain, "PYTHONPATH": str(baseline)},
                )
                if not old.ok:
                    print(f"  {size} models: baseline run FAILED: {old.failure()}")
                before.append(old.cpu)
            if dbt:
                peers.load_sources(peers.DBT, folder / "dbt", folder / "data")
                built = peers.dbt(folder / "dbt", "run")
                tested = peers.dbt(folder / "dbt", "test")
                theirs.append(built.cpu + tested.cpu)
            shutil.rmtree(folder, ignore_errors=True)
            line = f"  {size:>5} models, repetition {rep + 1}: gristmill {ours[-1]:7.2f} CPU-s"
            line += f" (load average {os.getloadavg()[0]:.1f})"
            if before:
                line += f", baseline {before[-1]:7.2f} CPU-s"
            if theirs:
                line += f", dbt run + test {theirs[-1]:7.2f} CPU-s, ratio {ours[-1] / theirs[-1]:.2f}x"
            print(line, flush=True)
        ratios = [a / b for a, b in zip(ours, theirs, strict=False) if b > 0]
        found.append(
            {
                "models": size,
                "gristmill": statistics.median(ours),
                "dbt": statistics.median(theirs) if theirs else None,
                "ratio": statistics.median(ratios) if ratios else None,
                "baseline": statistics.median(before) if before else None,
                "baseline_ratio": statistics.median(
                    [a / b for a, b in zip(before, theirs, strict=False) if b > 0]
                )
                if before and theirs
                else None,
            }
        )
    print(
        f"\n{'models':>7}{'gristmill cpu s':>17}{'dbt cpu s':>11}{'ratio':>8}{'ms/added model (gm, dbt)':>27}"
    )
    previous: dict[str, float | int | None] | None = None
    for row in found:
        added = ""
        if previous is not None:
            span = int(row["models"] or 0) - int(previous["models"] or 0)
            mine = (float(row["gristmill"] or 0) - float(previous["gristmill"] or 0)) / span * 1000
            added = f"{mine:.0f}"
            if row["dbt"] is not None and previous["dbt"] is not None:
                added += f", {(float(row['dbt']) - float(previous['dbt'])) / span * 1000:.0f}"
        dbt_cpu = "-" if row["dbt"] is None else f"{row['dbt']:.2f}"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        print(f"{row['models']:>7}{row['gristmill']:>17.2f}{dbt_cpu:>11}{ratio:>8}{added:>27}")
        if row["baseline"] is not None:
            old = "" if row["baseline_ratio"] is None else f" ({row['baseline_ratio']:.2f}x dbt)"
            print(f"{'':>7}{'baseline ' + format(row['baseline'], '.2f'):>17}{old}")
        previous = row
    return found
