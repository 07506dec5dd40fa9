"""The columnar engines' output files: summary.csv written by DuckDB equals, byte for byte, what the
per-row Python writer (row_from_result + csv_row + Python's csv module) made of the same results."""
from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

from cli_helpers import run  # noqa: E402
from population_gen import population  # noqa: E402

from screening.batch import NOT_APPLICABLE, csv_header, csv_row  # noqa: E402
from screening.population import run as popruns  # noqa: E402
from screening.reports.worklist import row_from_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_rules.crit"
NCT = ROOT / "trials" / "NCT00659217.crit"
TINY = ROOT / "tests" / "data" / "population_tiny.crit"


def reference_summary(con, trials) -> bytes:
    """summary.csv as the per-row writer made it before it was columnar (kept here as the specification):
    one row_from_result per result, csv_row's formula guard, Python's csv module."""
    header = csv_header(trials)
    offsets, width = [], 0
    for trial in trials:
        offsets.append(width)
        width += len(trial.criteria)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(csv_row(header))
    rows = con.execute("SELECT input, patient, trial_index, trial, strftime(as_of, '%Y-%m-%d'), decision, "
                       "decision_reason, criteria FROM results").fetchall()
    for key, patient, index, trial_id, as_of, decision, reason, criteria in rows:
        cells = [""] * width
        for position, criterion in enumerate(criteria):
            cells[offsets[index] + position] = (NOT_APPLICABLE if criterion["applicable"] is False
                                                else criterion["verdict"])
        work = row_from_result({"input": key, "patient": patient, "trial": trial_id, "as_of": as_of,
                                "decision": decision, "decision_reason": reason, "criteria": criteria}).cells()
        writer.writerow(csv_row(["" if v is None else v for v in (
            key, patient, work["label"], trial_id, as_of, decision, work["items_missing"], work["deciding"],
            work["to_obtain"], work["review_questions"], *cells)]))
    return text.getvalue().encode("utf-8")


def columnar_summary(con, trials, tmp_path: Path) -> bytes:
    popruns.write_summary(con, trials, tmp_path / "summary.csv")
    return (tmp_path / "summary.csv").read_bytes()


def test_the_whitespace_class_is_pythons():
    import re

    expected = "".join(f"\\x{{{c:x}}}" for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert re.sub(r"\\x\{([0-9a-f]+)\}", lambda m: m.group(0), popruns.PYTHON_SPACE) == expected


# every shape of result the worklist columns read: ids and inputs a spreadsheet would run, quotes, commas,
# newlines, Unicode spaces, first letters whose capital is two letters, deaths, review and n/a criteria
def C(cid, verdict, missing=(), applicable=True, reviews=()):
    return {"id": cid, "verdict": verdict, "value": None, "applicable": applicable,
            "missing": None if missing is None else list(missing), "reviews": list(reviews)}


CRAFTED = [
    ("pop.ndjson:1", "P1", 0, "eligible", None, [C("I1", "pass"), C("I2", "pass", applicable=False), C("E1", "pass")]),
    ("dir/sub\\pop.ndjson:2", "=HYPERLINK(\"x\")", 0, "undetermined", None,
     [C("I1", "unknown", ["  fact  consent\u2028given ", "ALT result of 2026-01: no value"]),
      C("I2", "review", ["fact consent given", "ß-hCG result", "ǆ thing", "", " \t "], reviews=["judge it"]),
      C("E1", "pass")]),
    ("<patient>", "-1", 0, "undetermined", "patient may have died on or before the as-of date (date of death 2026)",
     [C("I1", "pass"), C("I2", "unknown", ["é, \"quoted\", a,b"]), C("E1", "unknown", None)]),
    ("", "P,4", 0, "ineligible", "patient died on 2020-05-05",
     [C("I1", "fail", ["x"]), C("I2", "fail", applicable=False), C("E1", "fail")]),
    (None, None, 0, "ineligible", None, [C("I1", "unknown", ["a"]), C("I2", "pass"), C("E1", "fail", [" ", "\tb\n c"])]),
    ("x/P6", "P6", 1, "undetermined", None, [C("J1", "review", reviews=["look"]), C("J2", "unknown", ["@name", "+1", "e\u0301tat", "\u0149x"])]),
    ("pop.ndjson:7", "", 1, "undetermined", "  \u3000 ", [C("J1", "pass"), C("J2", "pass")]),
    ("pop.ndjson:8", "P8", 1, "eligible", "died after", [C("J1", "pass"), C("J2", "pass", applicable=False)]),
]


def crafted_table(con) -> list:
    criterion = "STRUCT(id VARCHAR, verdict VARCHAR, value BOOLEAN, applicable BOOLEAN, missing VARCHAR[], reviews VARCHAR[])"
    con.execute(f"CREATE TEMP TABLE results (input VARCHAR, patient VARCHAR, trial_index INTEGER, trial VARCHAR, "
                f"as_of DATE, decision VARCHAR, decision_reason VARCHAR, criteria {criterion}[])")
    for key, patient, index, decision, reason, criteria in CRAFTED:
        con.execute("INSERT INTO results VALUES (?, ?, ?, ?, DATE '2026-11-25', ?, ?, ?)",
                    [key, patient, index, ["T-1", "=T2"][index], decision, reason, criteria])
    one = SimpleNamespace(id="T-1", criteria=[SimpleNamespace(id=i, draft=i == "I2") for i in ("I1", "I2", "E1")])
    two = SimpleNamespace(id="=T2", criteria=[SimpleNamespace(id=i, draft=False) for i in ("J1", "J2")])
    return [one, two]


def test_summary_rows_equal_the_per_row_writer_on_crafted_results(tmp_path):
    con = duckdb.connect()
    trials = crafted_table(con)
    expected = reference_summary(con, trials)
    assert columnar_summary(con, trials, tmp_path) == expected
    rows = list(csv.reader(io.StringIO(expected.decode())))
    # the values a user reads: the worklist columns and the guard, as the per-row writer gave them
    assert rows[2][:10] == ["dir/sub\\pop.ndjson:2", "'=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\") (pop.ndjson:2)", "T-1",
                            "2026-11-25", "undetermined", "6", "I1 unknown; I2 review",
                            "Fact consent given; ALT result of 2026-01: no value; SS-hCG result; \u01c4 thing; ",
                            "Judge it (review)"]  # the SQL engines' review reasons are review questions too
    assert rows[3][:3] == ["<patient>", "'-1", "'-1"]  # no file to name
    assert rows[3][6:9] == ["2", "I2 unknown; E1 unknown",
                            "Is the patient alive? (patient may have died on or before the as-of date (date of death "
                            "2026)); \u00c9, \"quoted\", a,b"]
    assert rows[4][2] == "P,4" and rows[4][6:8] == ["0", "I1 fail: missing: x; I2 fail: does not apply; E1 fail"]
    assert rows[5][1:3] == ["", "None"] and rows[5][7] == "E1 fail: missing: , b c"
    assert rows[6][2:4] == ["P6", "'=T2"] and rows[6][8] == "'@name; +1; E\u0301tat; \u02bcNx"
    assert rows[6][6] == "5" and rows[6][9] == "Look (review)"
    assert rows[7][2] == " (pop.ndjson:7)" and rows[7][6:9] == ["1", "  \u3000 ", "Is the patient alive? ()"]
    assert rows[0][10:] == ["T-1:I1", "T-1:I2 (draft)", "T-1:E1", "'=T2:J1", "'=T2:J2"]
    assert rows[1][10:] == ["pass", "n/a", "pass", "", ""] and rows[6][10:] == ["", "", "", "review", "unknown"]


def test_items_already_on_one_line_give_the_same_summary(tmp_path):
    """When every missing item and review reason is on one line (as rule sets word them) the query skips
    collapsing their whitespace; the file is still the per-row writer's, capitals and fail reasons included."""
    con = duckdb.connect()
    trials = crafted_table(con)
    assert popruns._item_texts(con)[1] is False  # the crafted rows hold items to collapse
    con.execute("DELETE FROM results WHERE patient = '=HYPERLINK(\"x\")'")
    capitals, one_line = popruns._item_texts(con)
    assert one_line is True and capitals["é"] == "É" and capitals["ŉ"] == "ʼN" and "@" not in capitals
    expected = reference_summary(con, trials)
    assert columnar_summary(con, trials, tmp_path) == expected
    rows = list(csv.reader(io.StringIO(expected.decode())))
    assert rows[4][7] == "E1 fail: missing: , b c"  # a fail reason is still collapsed
    assert rows[5][8] == "'@name; +1; E\u0301tat; \u02bcNx"


def test_cells_led_by_a_tab_or_carriage_return_are_guarded(tmp_path):
    con = duckdb.connect()
    trials = crafted_table(con)
    con.execute("UPDATE results SET patient = '\tP1' WHERE patient = 'P1'")
    assert columnar_summary(con, trials, tmp_path) == reference_summary(con, trials)
    con.execute("UPDATE results SET patient = '\rP8' WHERE patient = 'P8'")  # quoted, unlike Python 3.11 (above)
    rows = list(csv.reader(io.StringIO(columnar_summary(con, trials, tmp_path).decode(), newline="")))
    assert rows[1][1:3] == ["'\tP1", "'\tP1 (pop.ndjson:1)"] and rows[8][1:3] == ["'\rP8", "'\rP8 (pop.ndjson:8)"]


def test_a_carriage_return_is_quoted(tmp_path):
    """Python 3.11's csv module leaves a bare carriage return in a cell, which ends the row for CSV readers;
    the columnar writer quotes it, so the cell reads back whole."""
    con = duckdb.connect()
    trials = crafted_table(con)
    con.execute("UPDATE results SET patient = 'a\rb' WHERE patient = 'P1'")
    rows = list(csv.reader(io.StringIO(columnar_summary(con, trials, tmp_path).decode(), newline="")))
    assert rows[1][1:3] == ["a\rb", "a\rb (pop.ndjson:1)"]


# ---------------------------------------------------------------- through the command
HOSTILE = [
    {"id": "=cmd()", "birth_date": "1970", "sex": "female"},
    {"id": "a,b \"q\"\nline\ttab ß", "birth_date": "1970-02", "sex": "male", "conditions": []},
    {"id": "\u2028@x", "birth_date": "1990", "sex": "female", "deceased": "2026"},
    {"id": "eligible for TINY", "birth_date": "1970-05-01", "sex": "male", "conditions": [{"code": "ICD10:E11.9"}],
     "facts": {"informed_consent": True}},
]
TRIALS = (BENCH, NCT, TINY)
N = 244


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outputs")
    documents = population(240, seed=7) + HOSTILE
    (folder / "=pop, 1.ndjson").write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
    done = {}
    for engine in ("duckdb", "python"):
        proc = run("batch", *TRIALS, "--patients", "=pop, 1.ndjson", "--out", engine, "--as-of", "2026-11-25",
                   "--engine", engine, "--terminology", "none", *(("--workers", "1") if engine == "python" else ()),
                   cwd=folder)
        assert proc.returncode in (0, 1), proc.stderr
        done[engine] = folder / engine
    return done


def test_summary_csv_of_a_run_equals_the_per_row_writer(runs, tmp_path):
    from screening.batch import load_trials

    trials = [t.trial for t in load_trials(list(TRIALS))]
    con = duckdb.connect()
    index = "CASE trial " + " ".join(f"WHEN '{t.id}' THEN {i}" for i, t in enumerate(trials)) + " END"
    con.execute(f"CREATE TEMP TABLE results AS SELECT *, {index} AS trial_index FROM "
                f"read_parquet('{runs['duckdb'] / 'results.parquet'}')")
    written = (runs["duckdb"] / "summary.csv").read_bytes()
    assert written == reference_summary(con, trials)
    rows = list(csv.DictReader(io.StringIO(written.decode(), newline="")))
    assert len(rows) == len(TRIALS) * N
    assert {r["decision"] for r in rows} == {"eligible", "ineligible", "undetermined"}
    assert any(v == "n/a" for r in rows for v in r.values())
    assert any(r["to_obtain"].startswith("Is the patient alive?") for r in rows)
    # in input order, then the trials in the order given
    order = [(int(r["input"].rsplit(":", 1)[1]), r["trial"]) for r in rows]
    ids = [t.id for t in trials]
    assert order == sorted(order, key=lambda o: (o[0], ids.index(o[1])))
    hostile = [r for r in rows if r["input"] == "'=pop, 1.ndjson:241"]
    assert hostile[0]["patient"] == "'=cmd()" and hostile[0]["label"] == "'=cmd() (=pop, 1.ndjson:241)"


def test_summary_csv_agrees_with_the_python_engine(runs):
    """The same rows, labels, decisions, counts and verdicts (n/a included) as the per-patient engine; it
    words the reasons and questions from its explanations, which the SQL engine does not build."""
    def summary(engine):
        with (runs[engine] / "summary.csv").open(newline="", encoding="utf-8") as stream:
            return [row[:6] + row[10:] for row in csv.reader(stream)]

    duck, python = summary("duckdb"), summary("python")
    assert len(duck) == 1 + len(TRIALS) * N
    assert duck == python
