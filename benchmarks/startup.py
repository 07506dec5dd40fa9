"""Start-up benchmark: `screening check` of one patient, as a user runs it, cold and warm.

    .venv/bin/python benchmarks/startup.py                 # 11 runs of each (about a minute)
    .venv/bin/python benchmarks/startup.py --runs 31       # steadier medians
    .venv/bin/python benchmarks/startup.py --json          # also one JSON object with every figure

Every figure is the median over N runs of a separate process (the installed `screening` script,
started as a shell would), measured in this one run, side by side with two baselines:

- ``python -c pass``: the interpreter alone, the floor of any command;
- ``python -c "import screening"``: the package's own imports (pydantic, lark, the IR ...).

The command is ``screening check trials/NCT00659217.crit <patient> --as-of 2026-11-25
--terminology T``, run

- ``no cache``: with ``--no-cache``, i.e. what every run cost before the cache (build the Lark
  parser, the UCUM unit registry, parse, check, expand value sets, generate the fast path);
- ``cold``: with an empty cache folder each time (the first run after an install, an upgrade or
  an edit of the rule file; it also writes the cache);
- ``warm``: with the cache filled by an earlier run (every later run);

for T = ``none`` and T = ``trials/terminology`` (the fixture release files, loaded into a
temporary store on every run, as that option does). Modules run from their compiled bytecode,
as after an installation (written to a private folder, PYTHONPYCACHEPREFIX); when the package has
no bytecode beside it (a checkout under PYTHONDONTWRITEBYTECODE=1), two more rows show a warm
and an uncached run with the package compiled from source each time. Wall time is what a user waits; CPU time
(user + system of the child) is printed beside it because it varies less on a shared machine.
The run asserts that warm and uncached runs print the same bytes.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SCREENING = str(Path(sys.executable).with_name("screening"))
TARGET = 0.4  # seconds, warm, one patient (issue 10)


def timed(argv: list[str], env: dict) -> tuple[float, float, bytes]:
    """(wall seconds, child CPU seconds, stdout) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def measure(name: str, argv: list[str], env: dict, runs: int, fresh_cache: Path | None = None) -> dict:
    walls, cpus, out = [], [], b""
    for i in range(runs):
        run_env = env
        if fresh_cache is not None:
            folder = fresh_cache / f"run{i}"
            run_env = {**env, "SCREENING_CACHE_DIR": str(folder)}
        wall, cpu, out = timed(argv, run_env)
        walls.append(wall)
        cpus.append(cpu)
        if fresh_cache is not None:
            shutil.rmtree(fresh_cache / f"run{i}", ignore_errors=True)
    return {"name": name, "median_s": statistics.median(walls), "min_s": min(walls),
            "cpu_median_s": statistics.median(cpus), "runs": runs, "stdout": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="runs of each command (default 11)")
    parser.add_argument("--patient", default="patient_samples/p01_eligible_female_si_units.json")
    parser.add_argument("--trial", default="trials/NCT00659217.crit")
    parser.add_argument("--json", action="store_true", help="also print one JSON object with every figure")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="screening-startup-"))
    env = {**os.environ, "SCREENING_CACHE_DIR": str(work / "warm"), "COLUMNS": "120"}
    for name in ("SCREENING_CACHE", "SCREENING_TERMINOLOGY", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    # as installed: every module's bytecode compiled (pip does it at install time; a checkout writes
    # __pycache__), here into a private folder so that the working tree is not touched
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    # as in a sandbox with PYTHONDONTWRITEBYTECODE=1 and no __pycache__ beside the package: every
    # module of the package is compiled from source on every run (installed dependencies keep theirs)
    source_env = {k: v for k, v in env.items() if k != "PYTHONPYCACHEPREFIX"}
    source_env["PYTHONDONTWRITEBYTECODE"] = "1"
    package_pyc = any((ROOT / "screening").glob("__pycache__/*.pyc"))
    checks = {t: ["check", args.trial, args.patient, "--as-of", "2026-11-25", "--terminology", t, "--format", "json"]
              for t in ("none", "trials/terminology")}
    try:
        for argv in ([PYTHON, "-c", "import screening.cli"], [SCREENING, *checks["trials/terminology"]]):
            timed(argv, env)  # compiles the bytecode (not counted)
        rows = [measure("python -c pass", [PYTHON, "-c", "pass"], env, args.runs),
                measure('python -c "import screening"', [PYTHON, "-c", "import screening"], env, args.runs)]
        for terminology, check in checks.items():
            label = f"check, --terminology {terminology}"
            rows.append(measure(f"{label}: no cache", [SCREENING, "--no-cache", *check], env, args.runs))
            rows.append(measure(f"{label}: cold", [SCREENING, *check], env, args.runs, fresh_cache=work / "cold"))
            timed([SCREENING, *check], env)  # fills the warm cache
            rows.append(measure(f"{label}: warm", [SCREENING, *check], env, args.runs))
            assert rows[-1]["stdout"] == rows[-3]["stdout"], "a warm run printed something else than an uncached one"
        if not package_pyc:
            rows.append(measure("check, --terminology none: warm, package from source", [SCREENING, *checks["none"]],
                                source_env, args.runs))
            rows.append(measure("check, --terminology none: no cache, package from source",
                                [SCREENING, "--no-cache", *checks["none"]], source_env, args.runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base, imports = rows[0]["median_s"], rows[1]["median_s"]
    print(f"screening check, one patient ({args.patient}), median of {args.runs} runs per row; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':56} {'wall s':>8} {'min s':>7} {'cpu s':>7} {'x pass':>7} {'x import':>9}")
    for row in rows:
        print(f"{row['name']:56} {row['median_s']:8.3f} {row['min_s']:7.3f} {row['cpu_median_s']:7.3f} "
              f"{row['median_s'] / base:7.1f} {row['median_s'] / imports:9.2f}")
    by_name = {r["name"]: r for r in rows}
    for terminology in ("none", "trials/terminology"):
        label = f"check, --terminology {terminology}"
        warm, nocache = by_name[f"{label}: warm"]["median_s"], by_name[f"{label}: no cache"]["median_s"]
        verdict = "under" if warm < TARGET else "OVER"
        print(f"{label}: warm {warm:.3f} s ({verdict} the {TARGET} s target), {nocache / warm:.1f}x faster than "
              f"no cache; {warm - imports:+.3f} s over `import screening`")
    if args.json:
        print(json.dumps({"runs": args.runs, "patient": args.patient, "target_s": TARGET, "rows": [
            {k: v for k, v in r.items() if k != "stdout"} for r in rows]}))


if __name__ == "__main__":
    main()
