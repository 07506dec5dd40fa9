"""FHIR bulk NDJSON ingestion (DuckDB, screening/population/fhir_ingest.py) against the per-patient FHIR reader.

The Synthea bundles of ../shared/data/synthea (or --bundles DIR) are copied --copies times under new
patient ids, written once as bundles (the per-patient reader's input) and once as a bulk export (one
``<Type>.ndjson`` per resource type). Both are read into the population store in the same run:

* per-patient: each bundle parsed (json), converted by fhir_to_patient, validated and added to the
  store's tables by the Python loader (``TableBuilder.add_document``): what a bundle-per-line input costs;
* bulk: ``ingest_fhir_bulk`` into a fresh DuckDB (SQL for every patient it can prove, the per-patient
  reader for the others).

Prints patients/s for each, the ratio, how many patients went through the Python reader, and whether
the two stores are equal row for row. Usage:

    python benchmarks/fhir_bulk.py [--copies 40] [--bundles DIR]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from screening.population.fhir_ingest import bundles_to_bulk, ingest_fhir_bulk  # noqa: E402
from screening.population.loader import TableBuilder  # noqa: E402
from screening.population.schema import TABLES  # noqa: E402


def copies_of(paths: list[Path], copies: int):
    """Each bundle's text, ``copies`` times, its patient id made unique per copy."""
    for k in range(copies):
        for path in paths:
            text = path.read_text(encoding="utf-8")
            bundle = json.loads(text)
            pid = next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
            yield text.replace(pid, f"{pid}-{k}") if k else text


def _rows(con_or_tables, name):
    if isinstance(con_or_tables, dict):
        rows = con_or_tables[name].to_pylist()
    else:
        rows = con_or_tables.sql(f"SELECT * FROM {name}").to_arrow_table().to_pylist()
    for row in rows:
        row.pop("source", None)
        if row.get("name") == "fhir_path":
            row["value_string"] = row["value_json"] = None
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=40)
    parser.add_argument("--bundles", type=Path, default=ROOT.parent / "shared" / "data" / "synthea")
    args = parser.parse_args()
    paths = sorted(args.bundles.glob("*.json"))
    if not paths:
        print(f"no bundles in {args.bundles}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="fhir_bulk_"))
    try:
        texts = list(copies_of(paths, args.copies))
        n = len(texts)
        bundles_to_bulk((json.loads(t) for t in texts), work / "export")
        size = sum(p.stat().st_size for p in (work / "export").iterdir())
        print(f"{n:,} patients ({len(paths)} Synthea bundles x {args.copies}); bulk export {size / 1e6:.1f} MB "
              f"in {len(list((work / 'export').iterdir()))} files")

        started = time.perf_counter()
        builder = TableBuilder()
        for i, text in enumerate(texts):
            builder.add_document(json.loads(text), f"bundle {i}")
        python_tables = builder.tables()
        python_s = time.perf_counter() - started

        import duckdb

        con = duckdb.connect()
        errors: list = []
        started = time.perf_counter()
        summary = ingest_fhir_bulk(con, work / "export", on_error=errors.append)
        bulk_s = time.perf_counter() - started

        same = all(_rows(con, name) == _rows(python_tables, name) for name in TABLES)
        print(f"per-patient FHIR reader (json + fhir_to_patient + validate + store rows): {python_s:7.2f} s  "
              f"{n / python_s:8,.0f} patients/s")
        print(f"bulk NDJSON on DuckDB (ingest_fhir_bulk):                                 {bulk_s:7.2f} s  "
              f"{n / bulk_s:8,.0f} patients/s   ratio {python_s / bulk_s:.2f}x")
        print(f"patients read by the Python reader inside the bulk run: {summary.python_path:,}; "
              f"errors: {len(errors)}; stores equal row for row: {same}")
        return 0 if same and not errors else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
