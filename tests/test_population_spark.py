"""The same generated SQL on Spark local mode (screening.population.spark): for every bundled rule set,
every criterion's value, applicability, verdict, missing items and review reasons, and the decision,
equal DuckDB's and the per-patient engine's on the differential test's generated population.

One JVM for the module (its start-up is 10 to 60 s). The population is small (``SCREENING_SPARK_N``,
default 24) because Spark's cost on a tiny population is its fixed cost per statement, not the rows;
the differential test (tests/test_population_differential.py) runs DuckDB on a larger one. Skipped,
saying why, only when PySpark or a Java runtime cannot be had (.ci/run installs Java when it can)."""
from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

pytest.importorskip("duckdb")
pyspark = pytest.importorskip("pyspark", reason="PySpark is not installed (pip install -e '.[spark]')")

from screening import compile_text, patient_from_document  # noqa: E402
from screening.population import duckdb as popduck  # noqa: E402
from screening.population import spark as spark_engine  # noqa: E402
from screening.population.loader import tables_from_documents  # noqa: E402
from screening.population.sql import plan  # noqa: E402

from population_gen import population  # noqa: E402

if not spark_engine.java_available():
    pytest.skip("no Java runtime for Spark local mode (install openjdk-17-jre-headless or set JAVA_HOME)",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 11, 25)
N = int(os.environ.get("SCREENING_SPARK_N", "24"))
# every bundled rule set, and the test rule set of records, facts, age, sex and review
BUNDLED = sorted((ROOT / "trials").glob("*.crit")) + [ROOT / "benchmarks" / "bench_rules.crit",
                                                      ROOT / "tests" / "data" / "population_tiny.crit"]


@pytest.fixture(scope="module")
def session():
    spark = spark_engine.spark_session("screening-tests")
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def documents():
    documents = population(N, 10)
    documents[0].pop("conditions", None)  # a list not provided: unknown, never false
    return documents


@pytest.fixture(scope="module")
def store(documents, session):
    con = popduck.connect(tables_from_documents(documents))
    popduck.build_dictionaries(con)
    return con, spark_engine.SparkScreener.from_duckdb(con, session)


def _rows(table, ids):
    rows = {}
    for row in table.to_pylist():
        for cid in ids:  # missing items and review reasons are sets (docs/population.md)
            row[f"{cid}__missing"] = sorted(row[f"{cid}__missing"])
            row[f"{cid}__reviews"] = sorted(row[f"{cid}__reviews"])
        rows[row["patient_id"]] = row
    return rows


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_spark_gives_the_verdicts_of_duckdb_and_of_the_per_patient_engine(path, store, documents):
    con, screener = store
    trial = compile_text(path.read_text(encoding="utf-8"), str(path))
    ids = [c.id for c in trial.criteria]
    on_duckdb = _rows(popduck.screen_trial(con, trial, AS_OF, shared_ready=True), ids)
    on_spark = _rows(screener.screen_trial(trial, AS_OF), ids)
    assert set(on_spark) == {d["id"] for d in documents}
    differences = [(pid, column, on_duckdb[pid][column], value) for pid, row in on_spark.items()
                   for column, value in row.items() if on_duckdb[pid][column] != value]
    assert not differences, f"{path.name}: Spark differs from DuckDB: {differences[:10]}"
    verdicts = set()
    for document in documents:
        result = trial.screen(patient_from_document(document, f"{document['id']}.json"), AS_OF, explain=False)
        row = on_spark[document["id"]]
        assert (row["decision"], row["decision_reason"]) == (result.decision, result.decision_reason)
        for c in result.criteria:
            assert (row[c.id], row[f"{c.id}__applies"], row[f"{c.id}__verdict"], row[f"{c.id}__missing"]) == \
                (c.value, c.applicable, c.verdict, sorted(set(c.missing))), f"{document['id']} {c.id}"
            verdicts.add(c.verdict)
    assert {"pass", "fail", "unknown"} <= verdicts  # the population exercises all three


def test_spark_rewrites_keep_duckdbs_meaning(session):
    """Each DuckDB function rewritten for Spark, run on both engines over the same values."""
    import duckdb

    queries = {
        "mean": "SELECT list_reduce(xs, lambda a, b: a + b) / len(xs) AS r FROM (SELECT [CAST(1.5 AS DOUBLE), 2.0, 4.5] AS xs)",
        "mean of none": "SELECT list_reduce(xs, lambda a, b: a + b) AS r FROM (SELECT CAST(NULL AS DOUBLE[]) AS xs)",
        "one item": "SELECT list_reduce([CAST(7 AS DOUBLE)], lambda a, b: a + b) AS r",
        "any": "SELECT list_bool_or([NULL, FALSE, TRUE]) AS r",
        "any of nulls": "SELECT list_bool_or([CAST(NULL AS BOOLEAN)]) AS r",
        "all": "SELECT list_bool_and([TRUE, NULL, FALSE]) AS r",
        "least of one": "SELECT least(CAST(3 AS INTEGER)) AS r",
        "%g": "SELECT [printf('%.6g', x), printf('%g', x), printf('%.4g', x)] AS r FROM (SELECT unnest([CAST(77 AS DOUBLE), "
              "1000000.0, 0.000123, 123456789.0, 1.5, 0.1, 2.5e-7, 100000.0, -42.25]) AS x) ORDER BY x",
        "star replace": "SELECT * REPLACE (start_lo AS end_lo) FROM (SELECT DATE '2020-01-02' AS start_lo, "
                        "CAST(NULL AS DATE) AS end_lo)",
    }
    for name, query in queries.items():
        if name == "star replace":  # the rewrite reads the store table's columns: use one
            continue
        expected = [tuple(r) for r in duckdb.sql(query).fetchall()]
        got = [tuple(r) for r in session.sql(spark_engine.to_spark(query)).collect()]
        assert got == expected, name
    with pytest.raises(Exception, match="empty input list"):
        duckdb.sql("SELECT list_reduce(CAST([] AS DOUBLE[]), lambda a, b: a + b)").fetchall()
    with pytest.raises(Exception, match="empty input list"):  # an error on both engines, never a number
        session.sql(spark_engine.to_spark("SELECT list_reduce(CAST([] AS DOUBLE[]), lambda a, b: a + b)")).collect()


def test_the_spark_statements_are_the_duckdb_plan_transpiled_by_sqlglot():
    path = ROOT / "trials" / "NCT00659217.crit"
    trial = compile_text(path.read_text(encoding="utf-8"), str(path))
    the_plan = plan(trial.checked, AS_OF)
    steps = spark_engine.plan_stages(the_plan)
    names = [name for name, _ in steps]
    assert names[-1] == "" and "nobs" in names and "layer0" in names  # the result last, intermediate tables first
    assert names.index("nobs") < names.index("layer0")  # read after it is made
    atoms = [name for name in names if name.startswith("a") and name[1:].isdigit()]
    assert atoms and max(names.index(a) for a in atoms) < names.index("layer0")  # each atom's table its own statement
    assert all(f"JOIN {a} AS {a} ON" in dict(steps)["layer0"] for a in atoms)  # and layer0 joins its stored rows
    assert len(names) == len(set(names))
    text = " ".join(sql for _, sql in steps)
    assert "list_bool" in the_plan.sql and "list_reduce" not in text.lower() and "LIST_BOOL" not in text.upper()
    assert "lambda " not in text and "REPLACE (" not in text.upper()
    assert len(steps[-1][1]) < len(the_plan.sql) / 3  # the per-patient row computed apart
    one = spark_engine.plan_stages(the_plan, staged=False)
    assert [name for name, _ in one] == [name for name, _ in the_plan.prepare] + [""]


def test_batch_engine_spark_writes_the_results_of_duckdb(tmp_path, documents):
    """The command end to end: Spark reads the store's Parquet files; same summary as --engine duckdb."""
    from typer.testing import CliRunner

    from screening.cli import app

    path = tmp_path / "pop.ndjson"
    path.write_text("".join(json.dumps(d) + "\n" for d in documents[:12]), encoding="utf-8")
    trial = ROOT / "tests" / "data" / "population_tiny.crit"
    screened = []  # the patients Spark screened, rule set by rule set
    original = spark_engine.SparkScreener.screen_trial

    def screen_trial(self, trial, as_of):
        table = original(self, trial, as_of)
        screened.append(table.num_rows)
        return table

    summaries = {}
    for engine, extra in (("duckdb", []), ("spark", []), ("spark-sliced", ["--slice-patients", "5"])):
        if engine == "spark-sliced":
            screened.clear()
            spark_engine.SparkScreener.screen_trial = screen_trial
        out = tmp_path / engine
        done = CliRunner().invoke(app, ["batch", str(trial), "--patients", str(path), "--out", str(out),
                                        "--engine", engine.split("-")[0], "--as-of", AS_OF.isoformat(), *extra])
        spark_engine.SparkScreener.screen_trial = original
        assert done.exit_code in (0, 1), done.output
        summaries[engine] = (out / "summary.csv").read_text(encoding="utf-8")
    assert summaries["spark"] == summaries["duckdb"]
    assert summaries["spark"].count("\n") == 13
    # three slices of patients (5, 5, 2), each read by Spark from the store's files narrowed to the slice
    assert summaries["spark-sliced"] == summaries["duckdb"]
    assert len(json.loads((tmp_path / "spark-sliced" / "progress.json").read_text())["slices"]) == 2
    assert screened == [5, 5, 2]  # Spark read only each slice's patients


def test_the_session_keeps_little_of_its_finished_work(session):
    """A run of many slices must not fill the driver's heap with the status store's record of finished statements."""
    conf = session.sparkContext.getConf()
    assert {key: conf.get(key) for key in spark_engine.RETENTION_SETTINGS} == {
        "spark.sql.ui.retainedExecutions": "20", "spark.ui.retainedJobs": "50", "spark.ui.retainedStages": "50",
        "spark.ui.retainedTasks": "5000"}
