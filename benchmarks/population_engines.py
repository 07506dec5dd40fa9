"""Population engines side by side: the columnar limit, the hand-written Python screener, and
`screening batch --engine duckdb | python | spark`, on one NDJSON population, in one run.

    .venv/bin/python benchmarks/population_engines.py                      # 100,000 patients
    .venv/bin/python benchmarks/population_engines.py --patients 1000000   # the 1,000,000 figure
    .venv/bin/python benchmarks/population_engines.py --ten-million        # also 10,000,000 from Parquet
    .venv/bin/python benchmarks/population_engines.py --skip python,spark  # leave engines out

Figures (wall time, patients per second, ratios) are printed as they are measured, then the agreement
counts and ratios; ``--json`` also prints one JSON object. Every engine reads the same file, one after
the other:

* **hand-written DuckDB query** of each rule set (``handwritten_bench.sql``, ``handwritten_nct.sql``): the
  columnar limit. Its decisions are compared with the per-patient engine's (the bench_rules query
  simplifies some corner cases, so a few differ; the counts are printed);
* **hand-written Python screener (json.loads + dicts)** (``handwritten_screener.py``): the issue's
  single-process Python baseline, each NDJSON line read with ``json.loads`` and the 20 criteria applied to
  the dict; its decisions are compared with the per-patient engine's too;
* **our loader + hand-written criteria**: ``bench.make_baseline`` over every patient read by our strict
  per-patient loader (``patient_from_text``): end to end, and the evaluation alone (where the loader's cost
  shows);
* **ingestion**: the DuckDB ingestion of the NDJSON file into the store (screening.population.ingest),
  the part of `batch --engine duckdb` that does not depend on the rule set;
* **batch --engine duckdb / python / spark**: the command itself (a subprocess, end to end: reading,
  validation, screening, writing results), per rule set. A rule set the SQL generator cannot
  translate yet is reported as such. Spark's JVM start-up is measured apart. For the columnar
  engines a ``phases:`` line follows, from the stage timings the run records in its progress.json:
  ingestion, writing the store's Parquet files, screening, outputs, and the rest of the wall time
  (start-up: imports, compiling the rule sets; and exit).

Ratios are throughput ratios (baseline time / engine time): the issue asks `batch --engine duckdb` for
at least 2x the hand-written Python screener (json.loads + dicts) and 0.5x the hand-written query.

Memory stays bounded whatever ``--patients``: decisions are written to files under ``--out`` and compared
by DuckDB, never held in Python dicts; ``--ten-million`` builds its Parquet store by DuckDB ``COPY``.
The per-patient engine's decisions come from ``batch --engine python``; with ``--skip python`` the
duckdb engine's stand in (said so in the output).
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


HANDWRITTEN_SQL = {"bench_rules.crit": "handwritten_bench.sql", "NCT00659217.crit": "handwritten_nct.sql"}


def handwritten_duckdb(path: Path, query: str, decisions: Path) -> float:
    """The hand-written query over the NDJSON file; its decisions (id, decision) saved to ``decisions``
    (Parquet) by a COPY outside the timing."""
    import duckdb

    sql = (ROOT / "benchmarks" / query).read_text(encoding="utf-8")
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(f"CREATE TEMP TABLE hand AS {sql}", {"path": str(path), "as_of": AS_OF})
    elapsed = time.perf_counter() - started
    con.execute(f"COPY (SELECT id AS patient, decision FROM hand) TO '{decisions}' (FORMAT parquet)")
    con.close()
    return elapsed


def json_screener(path: Path, decisions: Path) -> float:
    """The hand-written single-process Python screener (json.loads + dicts); decisions written as CSV as they
    come (the cost of writing a result, as any screener has)."""
    from handwritten_screener import screen

    loads = json.loads
    started = time.perf_counter()
    with path.open("rb") as stream, decisions.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["patient", "decision"])
        for line in stream:
            if line.strip():
                doc = loads(line)
                writer.writerow((doc.get("id"), screen(doc)))
    return time.perf_counter() - started


def python_screener(path: Path) -> tuple[float, float, int]:
    """Our loader (patient_from_text) + the hand-written criteria (bench.make_baseline): end to end, the
    evaluation alone, and the number of patients (nothing per patient is kept)."""
    from bench import make_baseline

    from screening.patient.load import patient_from_text

    baseline = make_baseline(AS_OF)
    evaluating, count = 0.0, 0
    started = time.perf_counter()
    with path.open("r", encoding="utf-8") as stream:
        for line in stream:
            patient = patient_from_text(line, one_line=True)
            t = time.perf_counter()
            baseline(patient)
            evaluating += time.perf_counter() - t
            count += 1
    return time.perf_counter() - started, evaluating, count


def decisions_of(path: Path) -> str:
    """A query of (patient, decision) from a summary.csv, a decisions CSV or a Parquet file."""
    if path.suffix == ".parquet":
        return f"SELECT patient, decision FROM read_parquet('{path}')"
    return (f"SELECT patient, decision FROM read_csv('{path}', header = true, all_varchar = true, delim = ',', "
            f"quote = '\"', escape = '\"')")


def disagreements(mine: Path, reference: Path) -> tuple[int, int]:
    """(patients whose decisions differ, including those only one side has; patients of the reference), by DuckDB."""
    import duckdb

    con = duckdb.connect()
    differ, total = con.execute(
        f"SELECT count(*) FILTER (a.decision IS DISTINCT FROM b.decision), count(b.patient) "
        f"FROM ({decisions_of(mine)}) a FULL JOIN ({decisions_of(reference)}) b USING (patient)").fetchall()[0]
    con.close()
    return differ, total


def verdict_disagreements(mine: Path, reference: Path) -> tuple[int, int, str]:
    """Two summary.csv files (one column per criterion, its verdict) compared row for row by DuckDB: the patients
    whose decision or any criterion's verdict differs (or who are in one file only), the number of criteria, and
    the criteria that differ with their counts."""
    import duckdb

    con = duckdb.connect()
    read = "read_csv('{}', header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"')"
    con.execute(f"CREATE TEMP TABLE a AS SELECT * FROM {read.format(mine)}")
    con.execute(f"CREATE TEMP TABLE b AS SELECT * FROM {read.format(reference)}")
    columns = [row[0] for row in con.execute("DESCRIBE b").fetchall()]
    # the decision and each criterion's verdict; the worklist's text columns (label, items_missing, deciding,
    # to_obtain, review_questions) are worded from explanations by the per-patient engine only (batch.md)
    compared = ["decision"] + columns[columns.index("review_questions") + 1:]
    quoted = {c: '"' + c.replace('"', '""') + '"' for c in compared}
    counts = con.execute(
        "SELECT count(*) FILTER (a.patient IS NULL OR b.patient IS NULL OR "
        + " OR ".join(f"a.{quoted[c]} IS DISTINCT FROM b.{quoted[c]}" for c in compared) + "), "
        + ", ".join(f"count(*) FILTER (a.{quoted[c]} IS DISTINCT FROM b.{quoted[c]})" for c in compared)
        + " FROM a FULL JOIN b USING (patient, trial)").fetchall()[0]
    con.close()
    by_column = ", ".join(f"{c}: {n:,}" for c, n in zip(compared, counts[1:]) if n)
    return counts[0], len(compared) - 1, by_column


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
    result["summary"] = out / "summary.csv"
    if engine != "python":
        result["phases"] = phases(out / "progress.json", wall)
    return result


def phases(progress: Path, wall: float) -> dict[str, float]:
    """Where a columnar run's time went, from the stage timings it records in progress.json (docs/population.md):
    ingestion, writing the store's Parquet files, screening, outputs, and the rest of the wall time (start-up:
    imports, compiling the rule sets; exit)."""
    try:
        timings = json.loads(progress.read_text(encoding="utf-8")).get("timings") or {}
    except (OSError, ValueError):
        return {}
    shown = {name: timings[name] for name in ("ingestion", "store write", "screening", "outputs") if name in timings}
    shown["start-up and the rest"] = max(0.0, wall - sum(shown.values()))
    return shown


def phases_text(result: dict) -> str:
    return ", ".join(f"{name} {seconds:,.2f} s" for name, seconds in (result.get("phases") or {}).items())


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
    """A big store (the given store copied ``factor`` times under new ids), written by DuckDB COPY one table at a
    time (streamed, memory bounded by DuckDB's limit), for `batch --engine duckdb` to screen from Parquet."""
    import duckdb

    from screening.population import schema

    big = out / "store-big"
    big.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET temp_directory = '{out / 'duckdb-tmp'}'")
    for name in schema.TABLES:
        source = store_from / f"{name}.parquet"
        if not source.is_file():
            continue
        columns = ", ".join(f"patient_id || '-' || k AS patient_id" if f.name == "patient_id" else f'"{f.name}"'
                            for f in schema.TABLES[name])
        con.execute(f"COPY (SELECT {columns} FROM read_parquet('{source}'), range({factor}) r(k)) "
                    f"TO '{big / (name + '.parquet')}' (FORMAT parquet)")
    con.close()
    return {"store": str(big)}


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--ndjson", type=Path)
    parser.add_argument("--out", type=Path, default=Path("/tmp/screening-population-engines"))
    parser.add_argument("--skip", default="", help="comma-separated: handwritten,json-screener,python-screener,"
                                                   "ingestion,duckdb,python,spark,nct")
    parser.add_argument("--ten-million", action="store_true", help="also 10,000,000 patients from Parquet x 20 criteria")
    parser.add_argument("--big-size", type=int, default=10_000_000,
                        help="the patients of the --ten-million store (default 10,000,000; smaller to try the path)")
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
    trials = [BENCH_RULES] + ([] if "nct" in skip else [NCT])

    def rate(seconds: float) -> str:
        return f"{seconds:,.2f} s ({n / seconds:,.0f} patients/s)"

    hand_files: dict[str, Path] = {}
    if "handwritten" not in skip:
        for trial in trials:
            decisions = args.out / f"handwritten-{trial.stem}.parquet"
            seconds = handwritten_duckdb(path, HANDWRITTEN_SQL[trial.name], decisions)
            figures[f"handwritten_duckdb_{trial.stem}"] = seconds
            hand_files[trial.name] = decisions
            say(f"hand-written DuckDB query, {trial.name}: {rate(seconds)}")
    json_file = args.out / "json-screener-bench_rules.csv"
    if "json-screener" not in skip:
        seconds = json_screener(path, json_file)
        figures["json_screener"] = seconds
        say(f"hand-written Python screener (json.loads + dicts), bench_rules.crit: {rate(seconds)}")
    if "python-screener" not in skip:
        seconds, evaluating, _count = python_screener(path)
        figures["loader_screener"] = seconds
        figures["loader_screener_evaluation"] = evaluating
        say(f"our loader + hand-written criteria, bench_rules.crit: {rate(seconds)} end to end from NDJSON "
            f"(patient_from_text); the hand-written criteria alone {evaluating:,.2f} s")
    if "ingestion" not in skip:
        seconds, summary = ingestion(path)
        figures["ingestion"] = seconds
        say(f"ingestion into the store (DuckDB): {rate(seconds)}; {summary.plain_path:,} lines proven by the typed "
            f"parse (plain path), {summary.python_path:,} read by the per-patient reader")
    runs = []
    startup = None
    for trial in trials:
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
                if result.get("phases"):
                    say(f"  phases: {phases_text(result)}")
    # agreement with the per-patient engine (batch --engine python), by DuckDB over the decision files
    by = {(r["engine"], r["trial"]): r for r in runs if "error" not in r}
    for trial in trials:
        reference = by.get(("python", trial.name))
        label = "the per-patient engine"
        if reference is None and by.get(("duckdb", trial.name)):
            reference, label = by[("duckdb", trial.name)], "batch --engine duckdb (python skipped)"
        if reference is None:
            continue
        mine = [("hand-written DuckDB query", hand_files.get(trial.name), f"handwritten_{trial.stem}")]
        if trial == BENCH_RULES and "json_screener" in figures:
            mine.append(("hand-written Python screener (json.loads + dicts)", json_file, "json_screener"))
        mine += [(f"batch --engine {e}", by[(e, trial.name)]["summary"], f"{e}_{trial.stem}")
                 for e in ("duckdb", "spark") if (e, trial.name) in by and by[(e, trial.name)] is not reference]
        for name, decisions, key in mine:
            if decisions is None:
                continue
            differ, total = disagreements(decisions, reference["summary"])
            figures[f"{key}_disagreements"] = differ
            say(f"{name} vs {label}, {trial.name}: {differ:,} of {total:,} decisions differ")
            if name.startswith("batch --engine") and label == "the per-patient engine":
                rows, criteria, by_column = verdict_disagreements(decisions, reference["summary"])
                figures[f"{key}_verdict_disagreements"] = rows
                say(f"{name} vs {label}, {trial.name}: the verdicts of all {criteria} criteria: {rows:,} of {total:,} "
                    f"patients differ in any" + (f" ({by_column})" if by_column else ""))
    for trial in trials:
        duck = by.get(("duckdb", trial.name))
        if not duck:
            continue
        if trial == BENCH_RULES and "json_screener" in figures:
            say(f"ratio batch --engine duckdb / hand-written Python screener (json.loads + dicts), {trial.name}: "
                f"{figures['json_screener'] / duck['wall']:.2f}x (target >= 2x)")
        if trial == BENCH_RULES and "loader_screener" in figures:
            say(f"ratio batch --engine duckdb / our loader + hand-written criteria, {trial.name}: "
                f"{figures['loader_screener'] / duck['wall']:.2f}x")
        hand = figures.get(f"handwritten_duckdb_{trial.stem}")
        if hand:
            say(f"ratio batch --engine duckdb / hand-written DuckDB query, {trial.name}: {hand / duck['wall']:.2f}x "
                "(target >= 0.5x)")
    if "ingestion" in figures and "handwritten_duckdb_bench_rules" in figures:
        say(f"ratio ingestion alone / hand-written DuckDB query: "
            f"{figures['handwritten_duckdb_bench_rules'] / figures['ingestion']:.2f}x")
    if args.ten_million:
        store = args.out / "duckdb-bench_rules" / "store"
        if not store.is_dir():
            store = args.out / "store-small"
            import duckdb

            from screening.population import schema
            from screening.population.ingest import ingest_ndjson

            con = duckdb.connect()
            ingest_ndjson(con, path, on_error=lambda entry: None)
            store.mkdir(parents=True, exist_ok=True)
            for name in schema.TABLES:
                con.execute(f"COPY {name} TO '{store / (name + '.parquet')}' (FORMAT parquet)")
            con.close()
        factor = max(1, args.big_size // n)
        started = time.perf_counter()
        big = ten_million(store, args.out, factor)
        say(f"{factor * n:,}-patient Parquet store written in {time.perf_counter() - started:,.1f} s "
            f"({big['store']})")
        result = batch("duckdb", BENCH_RULES, Path(big["store"]), args.out / "duckdb-big")
        figures["ten_million"] = {k: str(v) if isinstance(v, Path) else v for k, v in result.items()}
        figures["ten_million"]["patients"] = factor * n
        say(f"{factor * n:,} patients from Parquet x bench_rules.crit: {result.get('wall', 0):,.1f} s, peak memory "
            f"{result.get('peak_mb')} MB" if "error" not in result else f"{factor * n:,}: not measured: {result['error']}")
        if result.get("phases"):
            say(f"  phases: {phases_text(result)}")
    figures["runs"] = [{k: str(v) if isinstance(v, Path) else v for k, v in r.items()} for r in runs]
    figures["benchmark_peak_mb"] = round(peak_mb())
    say(f"this script's own peak memory: {figures['benchmark_peak_mb']:,} MB")
    if args.json:
        print(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
