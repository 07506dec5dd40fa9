"""The generated SQL of a rule set beside the hand-written DuckDB query, on the same population, in one run.

    python benchmarks/population_sql_query.py NDJSON [--store DIR] [--rules A.crit,B.crit] [--repeat N]

The store is built once from NDJSON (screening.population.ingest) into DIR (default: a temporary folder), or
read from DIR/*.parquet when it is there already. Then, for each rule set, `screen_trial`'s parts are timed
apart: the plan and its dictionary tables, the intermediate tables (normalised results, record passes), the
query itself (planning included), and DuckDB's planning alone (EXPLAIN). Beside them, the hand-written query
(benchmarks/handwritten_bench.sql), which parses the whole NDJSON file and decides the same 20 criteria, and
the ratio. Wall time and process CPU time (both threads) are printed: on a shared machine CPU time is the
steadier figure. Each figure is the best of --repeat runs.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from screening import compile_text  # noqa: E402
from screening.population import duckdb as popduck  # noqa: E402
from screening.population import schema  # noqa: E402
from screening.population.sql import plan as make_plan  # noqa: E402

AS_OF = date(2026, 11, 25)
RULES = [ROOT / "benchmarks" / "bench_rules.crit", ROOT / "trials" / "NCT00659217.crit"]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """(best wall, best CPU, last result) of ``repeat`` calls."""
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(repeat):
        w, c = time.perf_counter(), cpu()
        result = fn()
        best_wall, best_cpu = min(best_wall, time.perf_counter() - w), min(best_cpu, cpu() - c)
    return best_wall, best_cpu, result


def store_connection(ndjson: Path, folder: Path):
    con = duckdb.connect()
    if not (folder / "patients.parquet").is_file():
        from screening.population.ingest import ingest_ndjson

        folder.mkdir(parents=True, exist_ok=True)
        ingest_ndjson(con, ndjson, on_error=lambda entry: None)
        for name in schema.TABLES:
            con.execute(f"COPY {name} TO '{folder / (name + '.parquet')}' (FORMAT parquet)")
        con = duckdb.connect()
    for name in schema.TABLES:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{folder / (name + '.parquet')}')")
    return con


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ndjson", type=Path)
    parser.add_argument("--store", type=Path)
    parser.add_argument("--rules", default=",".join(str(p) for p in RULES))
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as scratch:
        con = store_connection(args.ndjson, args.store or Path(scratch) / "store")
        patients = con.execute("SELECT count(*) FROM patients").fetchone()[0]
        hand_sql = (ROOT / "benchmarks" / "handwritten_bench.sql").read_text(encoding="utf-8")
        hand = duckdb.connect()
        h_wall, h_cpu, _ = timed(lambda: hand.execute(hand_sql, {"path": str(args.ndjson), "as_of": AS_OF}).fetchall(),
                                 args.repeat)
        print(f"{patients:,} patients; hand-written query (parses the NDJSON file too): {h_wall:.3f} s, CPU {h_cpu:.3f} s")
        popduck.build_dictionaries(con)
        for path in args.rules.split(","):
            path = Path(path)
            trial = compile_text(path.read_text(encoding="utf-8"), str(path), base_dir=path.parent)

            def prepare():
                plan = make_plan(trial.checked, AS_OF)
                popduck.build_plan_dictionaries(con, plan)
                return plan

            p_wall, p_cpu, plan = timed(prepare, args.repeat)

            def intermediate():
                for name, query in plan.prepare:
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")

            i_wall, i_cpu, _ = timed(intermediate, args.repeat)

            def run():
                with popduck._optimizers_off(con, popduck.SLOW_OPTIMIZERS):
                    return con.execute(plan.sql).to_arrow_table()

            def explain():
                with popduck._optimizers_off(con, popduck.SLOW_OPTIMIZERS):
                    return con.execute("EXPLAIN " + plan.sql).fetchall()

            e_wall, e_cpu, _ = timed(explain, args.repeat)
            q_wall, q_cpu, table = timed(run, args.repeat)
            s_wall, s_cpu, _ = timed(lambda: popduck.screen_trial(con, trial, AS_OF, shared_ready=True), args.repeat)
            print(f"{trial.checked.trial_id} ({len(trial.checked.criteria)} criteria, query {len(plan.sql):,} characters, "
                  f"{table.num_rows:,} rows)")
            print(f"  plan + dictionary tables  {p_wall:7.3f} s  CPU {p_cpu:7.3f} s")
            print(f"  intermediate tables       {i_wall:7.3f} s  CPU {i_cpu:7.3f} s  ({len(plan.prepare)} tables)")
            print(f"  query (planning included) {q_wall:7.3f} s  CPU {q_cpu:7.3f} s  (planning alone: {e_wall:.3f} s, "
                  f"CPU {e_cpu:.3f} s)")
            print(f"  screen_trial, all of it   {s_wall:7.3f} s  CPU {s_cpu:7.3f} s  = {s_wall / h_wall:.1f}x the "
                  f"hand-written query's wall time, {s_cpu / h_cpu:.1f}x its CPU time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
