"""Population engines side by side: the columnar limit, the hand-written Python screener, and
`screening batch --engine duckdb | python | spark`, on one NDJSON population, in one run.

    .venv/bin/python benchmarks/population_engines.py                      # 100,000 patients
    .venv/bin/python benchmarks/population_engines.py --patients 1000000   # the 1,000,000 figure
    .venv/bin/python benchmarks/population_engines.py --ten-million        # also 10,000,000 from Parquet
    .venv/bin/python benchmarks/population_engines.py --skip python,spark  # leave engines out

Figures (wall time, patients per second, ratios) are printed as they are measured, then a summary
table; ``--json`` also prints one JSON object. Every engine reads the same file, one after the other:

* **hand-written DuckDB query** (``handwritten_bench.sql``, bench_rules.crit written by hand): the
  columnar limit. Its decisions are compared with the per-patient engine's (it simplifies some
  corner cases, so a few differ; the count is printed);
* **hand-written Python screener**: ``bench.make_baseline`` over every patient, single process,
  from the NDJSON line (``patient_from_text``, then the hand-written criteria): end to end, and the
  evaluation alone;
* **ingestion**: the DuckDB ingestion of the NDJSON file into the store (screening.population.ingest),
  the part of `batch --engine duckdb` that does not depend on the rule set;
* **batch --engine duckdb / python / spark**: the command itself (a subprocess, end to end: reading,
  validation, screening, writing results), per rule set. A rule set the SQL generator cannot
  translate yet is reported as such. Spark's JVM start-up is measured apart.

Ratios are throughput ratios (baseline time / engine time): the issue asks `batch --engine duckdb` for
at least 2x the Python screener and 0.5x the hand-written query.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

AS_OF = date(2026, 11, 25)
BENCH_RULES = ROOT / "benchmarks" / "bench_rules.crit"
NCT = ROOT / "trials" / "NCT00659217.crit"
SCREENING = [str(Path(sys.executable).parent / "screening")]


def say(text: str) -> None:
    print(text, flush=True)


def population_file(n: int, path: Path | None, seed: int) -> Path:
    import population  # benchmarks/population.py

    path = path or Path(f"/tmp/screening-pop-{n}-{seed}.ndjson")
    if path.exists():
        return path
    say(f"writing {n:,} patients to {path} ...")
    with path.open("w", encoding="utf-8") as stream:
        for document in population.generate(n, seed=seed):
            stream.write(json.dumps(document, separators=(",", ":")) + "\n")
    return path


def handwritten_duckdb(path: Path) -> tuple[float, dict]:
    import duckdb

    sql = (ROOT / "benchmarks" / "handwritten_bench.sql").read_text(encoding="utf-8")
    con = duckdb.connect()
    started = time.perf_counter()
    rows = con.execute(sql, {"path": str(path), "as_of": AS_OF}).fetchall()
    return time.perf_counter() - started, dict(rows)


def python_screener(path: Path) -> tuple[float, float, dict]:
    from bench import make_baseline

    from screening.patient.load import patient_from_text

    baseline = make_baseline(AS_OF)
    decisions, evaluating = {}, 0.0
    started = time.perf_counter()
    with path.open("r", encoding="utf-8") as stream:
        for line in stream:
            patient = patient_from_text(line, one_line=True)
            t = time.perf_counter()
            values = baseline(patient)
            evaluating += time.perf_counter() - t
            decisions[patient.id] = values
    return time.perf_counter() - started, evaluating, decisions


def ingestion(path: Path) -> tuple[float, object]:
    import duckdb

    from screening.population.ingest import ingest_ndjson

    con = duckdb.connect()
    started = time.perf_counter()
    summary = ingest_ndjson(con, path, on_error=lambda entry: None)
    return time.perf_counter() - started, summary


def batch(engine: str, trial: Path, patients: Path, out: Path, extra=()) -> dict:
    """Run the command in a subprocess; wall time, exit status, the peak memory it printed, its decisions."""
    command = SCREENING + ["batch", str(trial), "--patients", str(patients), "--out", str(out), "--as-of",
                           AS_OF.isoformat(), "--engine", engine, "--restart", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    result = {"engine": engine, "trial": trial.name, "wall": wall, "status": done.returncode}
    if done.returncode not in (0, 1):
        result["error"] = (done.stderr.strip().splitlines() or ["?"])[-1][:300]
        return result
    memory = re.search(r"peak memory ([0-9,]+) MB", done.stdout)
    result["peak_mb"] = int(memory.group(1).replace(",", "")) if memory else None
    with (out / "summary.csv").open(newline="", encoding="utf-8") as stream:
        result["decisions"] = {row["patient"]: row["decision"] for row in csv.DictReader(stream)}
    return result


def spark_startup() -> float | None:
    try:
        from screening.population.spark import SparkUnavailable, spark_session
    except ImportError:
        return None
    started = time.perf_counter()
    try:
        session = spark_session("startup-probe")
    except SparkUnavailable as exc:
        say(f"spark: {exc}")
        return None
    elapsed = time.perf_counter() - started
    session.stop()
    return elapsed


def ten_million(store_from: Path, out: Path, factor: int) -> dict:
    """A 10,000,000-patient store (the 100,000-patient store copied ``factor`` times under new ids), screened
    from Parquet by `batch --engine duckdb`."""
    import duckdb

    from screening.population import schema

    big = out / "store-10m"
    big.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    for name in schema.TABLES:
        source = store_from / f"{name}.parquet"
        columns = ", ".join(f"patient_id || '-' || k AS patient_id" if f.name == "patient_id" else f'"{f.name}"'
                            for f in schema.TABLES[name])
        con.execute(f"COPY (SELECT {columns} FROM read_parquet('{source}'), range({factor}) r(k)) "
                    f"TO '{big / (name + '.parquet')}' (FORMAT parquet)")
    return {"store": str(big)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--ndjson", type=Path)
    parser.add_argument("--out", type=Path, default=Path("/tmp/screening-population-engines"))
    parser.add_argument("--skip", default="", help="comma-separated: handwritten,python-screener,ingestion,duckdb,"
                                                   "python,spark")
    parser.add_argument("--ten-million", action="store_true", help="also 10,000,000 patients from Parquet x 20 criteria")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    args.out.mkdir(parents=True, exist_ok=True)
    n = args.patients
    say(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.1f}")
    path = population_file(n, args.ndjson, args.seed)
    say(f"population: {n:,} patients, {path.stat().st_size / 1e6:,.0f} MB of NDJSON ({path})")
    figures: dict = {"patients": n}

    def rate(seconds: float) -> str:
        return f"{seconds:,.2f} s ({n / seconds:,.0f} patients/s)"

    if "handwritten" not in skip:
        seconds, hand = handwritten_duckdb(path)
        figures["handwritten_duckdb"] = seconds
        say(f"hand-written DuckDB query, bench_rules.crit: {rate(seconds)}")
    if "python-screener" not in skip:
        seconds, evaluating, _values = python_screener(path)
        figures["python_screener"] = seconds
        figures["python_screener_evaluation"] = evaluating
        say(f"hand-written Python screener, bench_rules.crit: {rate(seconds)} end to end from NDJSON; "
            f"the hand-written criteria alone {evaluating:,.2f} s")
    if "ingestion" not in skip:
        seconds, summary = ingestion(path)
        figures["ingestion"] = seconds
        say(f"ingestion into the store (DuckDB): {rate(seconds)}; {summary.python_path:,} lines read by the "
            "per-patient reader")
    runs = []
    startup = None
    for trial in (BENCH_RULES, NCT):
        for engine in ("duckdb", "python", "spark"):
            if engine in skip:
                continue
            if engine == "spark" and startup is None:
                startup = spark_startup()
                figures["spark_jvm_startup"] = startup
                if startup is None:
                    skip.add("spark")
                    continue
                say(f"spark: JVM and session start-up {startup:,.1f} s (counted apart)")
            extra = ("--workers", "2") if engine == "python" else ()
            result = batch(engine, trial, path, args.out / f"{engine}-{trial.stem}", extra)
            runs.append(result)
            if "error" in result:
                say(f"batch --engine {engine}, {trial.name}: not measured: {result['error']}")
            else:
                say(f"batch --engine {engine}, {trial.name}: {rate(result['wall'])}, peak memory "
                    f"{result.get('peak_mb')} MB")
    # agreement and ratios
    by = {(r["engine"], r["trial"]): r for r in runs if "error" not in r}
    reference = by.get(("python", BENCH_RULES.name))
    if reference and "handwritten_duckdb" in figures:
        same = sum(hand.get(p) == d for p, d in reference["decisions"].items())
        figures["handwritten_agreement"] = same
        say(f"hand-written query vs the per-patient engine: same decision for {same:,} of "
            f"{len(reference['decisions']):,} patients")
    for trial in (BENCH_RULES, NCT):
        python = by.get(("python", trial.name))
        for engine in ("duckdb", "spark"):
            mine = by.get((engine, trial.name))
            if mine and python:
                differ = sum(mine["decisions"].get(p) != d for p, d in python["decisions"].items())
                say(f"{engine} vs python, {trial.name}: {differ:,} decisions differ")
                figures[f"{engine}_differences_{trial.stem}"] = differ
    duck = by.get(("duckdb", BENCH_RULES.name))
    if duck:
        if "python_screener" in figures:
            say(f"ratio batch --engine duckdb / hand-written Python screener: "
                f"{figures['python_screener'] / duck['wall']:.2f}x (target >= 2x)")
        if "handwritten_duckdb" in figures:
            say(f"ratio batch --engine duckdb / hand-written DuckDB query: "
                f"{figures['handwritten_duckdb'] / duck['wall']:.2f}x (target >= 0.5x)")
    if "ingestion" in figures and "handwritten_duckdb" in figures:
        say(f"ratio ingestion alone / hand-written DuckDB query: {figures['handwritten_duckdb'] / figures['ingestion']:.2f}x")
    if args.ten_million:
        store = args.out / "duckdb-bench_rules" / "store"
        if not store.is_dir():
            store = args.out / "store-100k"
            import duckdb

            from screening.population.ingest import ingest_ndjson
            from screening.population import schema

            con = duckdb.connect()
            ingest_ndjson(con, path, on_error=lambda entry: None)
            store.mkdir(parents=True, exist_ok=True)
            for name in schema.TABLES:
                con.execute(f"COPY {name} TO '{store / (name + '.parquet')}' (FORMAT parquet)")
        big = ten_million(store, args.out, max(1, 10_000_000 // n))
        result = batch("duckdb", BENCH_RULES, Path(big["store"]), args.out / "duckdb-10m")
        figures["ten_million"] = {k: v for k, v in result.items() if k != "decisions"}
        say(f"10,000,000 patients from Parquet x bench_rules.crit: {result.get('wall', 0):,.1f} s, peak memory "
            f"{result.get('peak_mb')} MB" if "error" not in result else f"10,000,000: not measured: {result['error']}")
    figures["runs"] = [{k: v for k, v in r.items() if k != "decisions"} for r in runs]
    if args.json:
        print(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
