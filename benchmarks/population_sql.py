"""The population engine (SQL on DuckDB) beside the per-patient engine, on the benchmark population.

    python benchmarks/population_sql.py [N] [--seed S]

Generates N patients (benchmarks/population.py), writes them into the store's tables with the Python
loader (timed apart: bulk ingestion without Python per row belongs to the NDJSON/Parquet readers), then
screens them against NCT00659217 and the 20-criterion benchmark rule set, restricted to the criteria the
SQL generator translates (the others are listed), with:

* DuckDB: dictionary tables + the generated query (planning included), one run over all patients;
* the per-patient fast path (Trial.values) over the same, already loaded, patients;

and checks that both give the same value for every criterion of every patient. Prints figures and ratios
measured in the same run.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from population import generate  # noqa: E402

from screening import compile_text, patient_from_document  # noqa: E402
from screening.population import Unsupported, plan  # noqa: E402
from screening.population import duckdb as popduck  # noqa: E402
from screening.population.loader import TableBuilder  # noqa: E402

AS_OF = date(2026, 11, 25)


def translatable(trial):
    checked = trial.checked
    kept, refused = [], []
    for criterion in checked.criteria:
        try:
            plan(dataclasses.replace(checked, criteria=[criterion]), AS_OF)
            kept.append(criterion)
        except Unsupported as exc:
            refused.append(f"{criterion.id}: {exc}")
    return dataclasses.replace(checked, criteria=kept), refused


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=20000)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args(argv)
    documents = list(generate(args.n, args.seed))

    start = time.perf_counter()
    builder = TableBuilder()
    for document in documents:
        builder.add_document(document)
    tables = builder.tables()
    load_tables = time.perf_counter() - start
    start = time.perf_counter()
    patients = [patient_from_document(d) for d in documents]
    load_patients = time.perf_counter() - start
    print(f"{args.n:,} patients; Python loader into the store {load_tables:.2f} s; "
          f"patient_from_document {load_patients:.2f} s (neither is in the figures below)")

    con = popduck.connect(tables)
    start = time.perf_counter()
    popduck.build_dictionaries(con)
    dictionaries = time.perf_counter() - start
    print(f"shared dictionary tables (units, codes, texts, scores, doses): {dictionaries:.2f} s")
    for path in (ROOT / "trials" / "NCT00659217.crit", ROOT / "benchmarks" / "bench_rules.crit"):
        trial = compile_text(path.read_text(encoding="utf-8"), str(path))
        checked, refused = translatable(trial)
        ids = [c.id for c in checked.criteria]
        start = time.perf_counter()
        the_plan = plan(checked, AS_OF)
        generate_s = time.perf_counter() - start
        start = time.perf_counter()
        wide = popduck.screen_trial(con, checked, AS_OF, shared_ready=True)
        duck = time.perf_counter() - start
        start = time.perf_counter()
        values = [trial.values(p, AS_OF) for p in patients]
        python = time.perf_counter() - start
        index = {c.id: i for i, c in enumerate(trial.criteria)}
        rows = {r["patient_id"]: r for r in wide.select(["patient_id"] + ids).to_pylist()}
        differ = 0
        for patient, vals in zip(patients, values):
            row = rows[patient.id]
            for cid in ids:
                applies, value = vals[index[cid]]
                expected = None if applies is False else value
                got = row[cid]
                if applies is None and got != expected:  # moot applicability: the value is kept either way
                    continue
                if got != expected:
                    differ += 1
        print(f"\n{path.name}: {len(ids)} of {len(trial.criteria)} criteria translated"
              + (f"; refused: {'; '.join(refused)}" if refused else ""))
        print(f"  SQL generated in {generate_s * 1000:.0f} ms ({len(the_plan.sql) / 1024:.0f} KiB)")
        print(f"  DuckDB (plan + run):     {duck:7.2f} s  {args.n / duck:10,.0f} patients/s")
        print(f"  per-patient fast path:   {python:7.2f} s  {args.n / python:10,.0f} patients/s")
        print(f"  ratio DuckDB / per-patient: {python / duck:.1f}x; criterion values that differ: {differ}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
