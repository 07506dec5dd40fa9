"""The stages of `screening batch --engine duckdb`, timed one by one on one NDJSON population.

    .venv/bin/python benchmarks/population_outputs.py                  # 10,000 and 100,000 patients
    .venv/bin/python benchmarks/population_outputs.py --patients 10000 --trial trials/NCT00659217.crit

The run is the command's own (:class:`screening.population.run.ColumnarRun`), in this process, with each
stage method and each output file timed: ingestion (``build_store``), ``open_store``, ``screen_trials`` (the
generated SQL and the per-trial parts), then the outputs (results.parquet, results.jsonl, summary.csv, the
tally), plus the import time of the CLI module `batch` needs. Figures are wall seconds on this machine, one
run each; compare stages measured in the same run.

    .venv/bin/python benchmarks/population_outputs.py --before /tmp/base   # also time another checkout, side by side

``--before DIR`` times the same stages with the code of another checkout of the project (e.g. ``git archive
COMMIT | tar -x -C DIR``), each run in a fresh process, alternating before/after per population size.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def one(source: Path, trial: Path, path: Path, out: Path) -> dict:
    """The stage timings of one checkout, in a fresh process (its own imports)."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run([sys.executable, __file__, "--child", str(trial), str(path), str(out)], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    if argv is None and len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(timed_run(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, action="append", help="population sizes (default 10000 and 100000)")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--trial", type=Path, default=ROOT / "benchmarks" / "bench_rules.crit")
    parser.add_argument("--out", type=Path, default=Path("/tmp/screening-population-outputs"))
    parser.add_argument("--before", type=Path, help="another checkout of the project, timed the same way")
    args = parser.parse_args(argv)
    from population_engines import population_file

    print(f"load average {os.getloadavg()[0]:.1f}; import screening.cli: {import_time():.2f} s", flush=True)
    for n in args.patients or [10_000, 100_000]:
        path = population_file(n, None, args.seed)
        columns = {}
        if args.before:
            columns["before"] = one(args.before.resolve(), args.trial, path, args.out / f"before-{n}")
        columns["after" if args.before else "seconds"] = one(ROOT, args.trial, path, args.out / f"run-{n}")
        print(f"{n:,} patients, {args.trial.name} (load average {os.getloadavg()[0]:.1f}):", flush=True)
        print(f"  {'stage':<32}" + "".join(f"{name:>10}" for name in columns), flush=True)
        keys = list(dict.fromkeys(k for times in columns.values() for k in times))
        for key in keys:
            print(f"  {key:<32}" + "".join(f"{times[key]:10.2f}" if key in times else f"{'-':>10}"
                                          for times in columns.values()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
