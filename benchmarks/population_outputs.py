"""The stages of `screening batch --engine duckdb`, timed one by one on one NDJSON population.

    .venv/bin/python benchmarks/population_outputs.py                  # 10,000 and 100,000 patients
    .venv/bin/python benchmarks/population_outputs.py --patients 10000 --trial trials/NCT00659217.crit

The run is the command's own (:class:`screening.population.run.ColumnarRun`), in this process, with each
stage method and each output file timed: ingestion (``build_store``), ``open_store``, ``screen_trials`` (the
generated SQL and the per-trial parts), then the outputs (results.parquet, results.jsonl, summary.csv, the
tally), plus the import time of the CLI module `batch` needs. Figures are wall seconds on this machine, one
run each; compare stages measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

AS_OF = date(2026, 11, 25)


def timed_run(trial: Path, patients: Path, out: Path) -> dict[str, float]:
    import io

    from rich.console import Console

    from screening.population import run as runmod

    times: dict[str, float] = {}

    def wrap(owner, name, label=None):
        original = getattr(owner, name, None)
        if original is None:
            return

        def timed(*args, **kwargs):
            key = label or name
            if name == "_copy":  # module function: label by the file written
                key = f"copy {Path(args[2]).name}"
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times[key] = times.get(key, 0.0) + time.perf_counter() - started
        setattr(owner, name, timed)

    for name in ("build_store", "open_store", "screen_trials", "write_outputs", "_sorted_results",
                 "_write_results_parquet", "_write_results_jsonl", "_write_summary", "_tally"):
        wrap(runmod.ColumnarRun, name)
    wrap(runmod, "_copy")
    sink = Console(file=io.StringIO())
    started = time.perf_counter()
    run = runmod.ColumnarRun([trial], patients, out, AS_OF, engine="duckdb", resume=False, explain=None,
                             out=sink, err=sink)
    times["compile rule set"] = time.perf_counter() - started
    started = time.perf_counter()
    run.execute()
    times["execute (total)"] = time.perf_counter() - started
    return times


def import_time() -> float:
    """Seconds to import the CLI and run `screening batch --help` in a fresh interpreter."""
    command = [sys.executable, "-c", "import time; t=time.perf_counter(); import screening.cli; "
               "print(time.perf_counter()-t)"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    return float(done.stdout.strip() or "nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, action="append", help="population sizes (default 10000 and 100000)")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--trial", type=Path, default=ROOT / "benchmarks" / "bench_rules.crit")
    parser.add_argument("--out", type=Path, default=Path("/tmp/screening-population-outputs"))
    args = parser.parse_args(argv)
    from population_engines import population_file

    print(f"load average {os.getloadavg()[0]:.1f}; import screening.cli: {import_time():.2f} s", flush=True)
    for n in args.patients or [10_000, 100_000]:
        path = population_file(n, None, args.seed)
        times = timed_run(args.trial, path, args.out / f"run-{n}")
        print(f"{n:,} patients, {args.trial.name}:", flush=True)
        for key, seconds in times.items():
            print(f"  {key:<32} {seconds:8.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
