"""The same generated SQL on Spark local mode (screening.population.spark): verdicts equal DuckDB's and the
per-patient engine's. One JVM for the module (its start-up is 10 to 60 s); skipped, saying why, only when
PySpark or a Java runtime cannot be had (.ci/run installs Java when it can)."""
from __future__ import annotations

import importlib.util
import json
from datetime import date
from pathlib import Path

import pytest

pytest.importorskip("duckdb")
pyspark = pytest.importorskip("pyspark", reason="PySpark is not installed (pip install -e '.[spark]')")

from screening.compile import compile_trial  # noqa: E402
from screening.patient.load import patient_from_text  # noqa: E402
from screening.population import spark as spark_engine  # noqa: E402

if not spark_engine.java_available():
    pytest.skip("no Java runtime for Spark local mode (install openjdk-17-jre-headless or set JAVA_HOME)",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 11, 25)


def _population(n: int, seed: int) -> list[dict]:
    spec = importlib.util.spec_from_file_location("population", ROOT / "benchmarks" / "population.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.generate(n, seed=seed))


@pytest.fixture(scope="module")
def session():
    spark = spark_engine.spark_session("screening-tests")
    yield spark
    spark.stop()


def test_spark_gives_the_verdicts_of_duckdb_and_of_the_per_patient_engine(tmp_path, session):
    import duckdb

    from screening.population.duckdb import screen_trial
    from screening.population.ingest import ingest_ndjson

    documents = _population(60, seed=11)
    documents[0].pop("conditions", None)  # a list not provided: I2 unknown
    documents[1]["birth_date"] = "1951"  # a partial birth date straddling the age limit
    documents[2]["facts"] = {"informed_consent": False}
    path = tmp_path / "pop.ndjson"
    path.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
    con = duckdb.connect()
    ingest_ndjson(con, path, on_error=lambda entry: pytest.fail(str(entry)))
    trial = compile_trial(ROOT / "tests" / "data" / "population_tiny.crit")
    on_duckdb = screen_trial(con, trial, AS_OF)
    on_spark = spark_engine.SparkScreener.from_duckdb(con, session).screen_trial(trial, AS_OF)
    ids = [c.id for c in trial.criteria]
    columns = ["patient_id", "decision"] + [f"{i}__verdict" for i in ids] + ids
    duck_rows = on_duckdb.select(columns).sort_by("patient_id").to_pylist()
    spark_rows = on_spark.select(columns).sort_by("patient_id").to_pylist()
    assert spark_rows == duck_rows
    for row, line in zip(sorted(duck_rows, key=lambda r: r["patient_id"]),
                         sorted(path.read_text().splitlines(), key=lambda l: json.loads(l)["id"])):
        result = trial.screen(patient_from_text(line), AS_OF, explain=False)
        assert row["decision"] == result.decision
        assert [row[f"{i}__verdict"] for i in ids] == [c.verdict for c in result.criteria]
    verdicts = {row["I2__verdict"] for row in spark_rows}
    assert {"pass", "fail", "unknown"} <= verdicts  # the population exercises all three


def test_the_spark_query_is_the_duckdb_plan_transpiled_by_sqlglot():
    from screening.population.sql import plan

    trial = compile_trial(ROOT / "tests" / "data" / "population_tiny.crit")
    text = spark_engine.spark_sql(plan(trial.checked, AS_OF))
    assert "list_bool" in plan(trial.checked, AS_OF).sql  # DuckDB's spelling in the plan ...
    assert "LIST_BOOL" not in text.upper() and "lambda " not in text  # ... rewritten for Spark
    assert text.startswith("WITH ")
