"""`screening batch --engine duckdb` and `screening query`, as a user runs them."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

pytest.importorskip("duckdb")

from cli_helpers import run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "population_tiny.crit"

PATIENTS = [
    # eligible: adult man with type 2 diabetes who consented
    {"id": "P1", "birth_date": "1970-05-01", "sex": "male", "conditions": [{"code": "ICD10:E11.9"}],
     "facts": {"informed_consent": True}},
    # undetermined only for want of the consent fact
    {"id": "P2", "birth_date": "1960", "sex": "male", "conditions": [{"code": "ICD10:E11.65"}], "facts": {}},
    # ineligible: a woman
    {"id": "P3", "birth_date": "1970-05-01", "sex": "female", "conditions": [{"code": "ICD10:E11.9"}],
     "facts": {"informed_consent": True}},
    # undetermined for want of the conditions list and the consent
    {"id": "P4", "birth_date": "1970-05-01", "sex": "male"},
]


def write_population(tmp_path: Path) -> Path:
    lines = [json.dumps(p) for p in PATIENTS[:2]] + ['{"id":"BAD","birth_date":"1980-02-30"}', ""] + \
        [json.dumps(p) for p in PATIENTS[2:]]
    path = tmp_path / "pop.ndjson"
    if not path.exists():  # written once: a run records the input's size and modification time
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def batch(tmp_path, *extra, out="run"):
    pop = write_population(tmp_path)
    return run("batch", TINY, "--patients", "pop.ndjson", "--out", out, "--as-of", "2026-11-25", *extra,
               cwd=tmp_path)


def test_duckdb_batch_writes_results_summary_and_errors(tmp_path):
    proc = batch(tmp_path)
    assert proc.returncode == 1, proc.stderr  # complete, one bad line skipped
    assert "pop.ndjson:3: $.birth_date: '1980-02-30' is not a real date" in proc.stderr
    out = tmp_path / "run"
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["input"], r["patient"], r["decision"]) for r in results] == [
        ("pop.ndjson:1", "P1", "eligible"), ("pop.ndjson:2", "P2", "undetermined"),
        ("pop.ndjson:5", "P3", "ineligible"), ("pop.ndjson:6", "P4", "undetermined")]
    p2 = results[1]["criteria"]
    assert [(c["id"], c["verdict"]) for c in p2] == [("I1", "pass"), ("I2", "pass"), ("I3", "unknown"), ("E1", "pass")]
    assert p2[2]["missing"] == ["fact informed_consent"]
    rows = list(csv.reader(io.StringIO((out / "summary.csv").read_text())))
    assert rows[0] == ["input", "patient", "label", "trial", "as_of", "decision", "items_missing", "deciding",
                       "to_obtain", "review_questions", "I1", "I2", "I3", "E1"]
    assert rows[2][:7] == ["pop.ndjson:2", "P2", "P2 (pop.ndjson:2)", "TINY-001", "2026-11-25", "undetermined", "1"]
    assert rows[2][7:] == ["I3 unknown", "Fact informed_consent", "", "pass", "pass", "unknown", "pass"]
    assert rows[3] == ["pop.ndjson:5", "P3", "P3 (pop.ndjson:5)", "TINY-001", "2026-11-25", "ineligible", "0",
                       "E1 fail", "", "", "pass", "pass", "pass", "fail"]
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(e["input"], e["line"]) for e in errors] == [("pop.ndjson:3", 3)]
    import pyarrow.parquet as pq

    table = pq.read_table(out / "results.parquet")
    assert table.column("patient").to_pylist() == ["P1", "P2", "P3", "P4"]
    assert table.column("criteria")[0].as_py()[0]["verdict"] == "pass"
    progress = json.loads((out / "progress.json").read_text())
    assert progress["stages"]["outputs"] is True and progress["engine"] == "duckdb"


def test_the_python_engine_gives_the_same_decisions(tmp_path):
    duck = batch(tmp_path, out="duck")
    python = batch(tmp_path, "--engine", "python", "--workers", "1", out="py")
    assert duck.returncode == python.returncode == 1
    def decisions(folder):
        return [(r["input"], r["patient"], r["decision"], [c["verdict"] for c in r["criteria"]])
                for r in map(json.loads, (tmp_path / folder / "results.jsonl").read_text().splitlines())]
    assert decisions("duck") == decisions("py")
    # the same rows, labels, counts and verdicts; the per-patient engine words the reasons and questions
    # from its explanations, which the SQL engine does not build (docs/batch.md)
    def summary(folder):
        rows = list(csv.reader(io.StringIO((tmp_path / folder / "summary.csv").read_text())))
        return [row[:7] + row[10:] for row in rows]
    assert summary("duck") == summary("py")


def test_explanations_only_for_the_patients_asked_for(tmp_path):
    proc = batch(tmp_path, "--explain", "eligible,P4")
    assert proc.returncode == 1, proc.stderr
    explained = [json.loads(line) for line in (tmp_path / "run" / "explanations.jsonl").read_text().splitlines()]
    assert [(e["input"], e["patient"], e["decision"]) for e in explained] == [
        ("pop.ndjson:1", "P1", "eligible"), ("pop.ndjson:6", "P4", "undetermined")]
    assert explained[0]["criteria"][0]["explanation"]  # the per-patient engine's full report
    assert "internal" not in proc.stderr


def test_a_complete_run_is_not_repeated_and_a_changed_command_is_refused(tmp_path):
    first = batch(tmp_path)
    assert first.returncode == 1
    again = batch(tmp_path)
    assert again.returncode == 1 and "nothing to do" in again.stdout
    other = batch(tmp_path, "--explain", "eligible")
    assert other.returncode == 2 and "differs from this command" in other.stderr and "explain" in other.stderr
    assert "Traceback" not in other.stderr


def test_a_changed_input_is_refused(tmp_path):
    assert batch(tmp_path).returncode == 1
    import os

    pop = tmp_path / "pop.ndjson"
    os.utime(pop, ns=(1, 1))  # same content, another modification time: the run cannot tell it is the same
    proc = run("batch", TINY, "--patients", "pop.ndjson", "--out", "run", "--as-of", "2026-11-25", cwd=tmp_path)
    assert proc.returncode == 2 and "patients: the run used" in proc.stderr and "--restart" in proc.stderr


def test_resume_after_the_store_stage(tmp_path):
    pop = write_population(tmp_path)
    out = tmp_path / "run"
    args = ("batch", TINY, "--patients", "pop.ndjson", "--out", out, "--as-of", "2026-11-25")
    assert run(*args, cwd=tmp_path).returncode == 1
    whole = (out / "results.jsonl").read_text()
    state = json.loads((out / "progress.json").read_text())
    state["stages"] = {"store": state["stages"]["store"]}
    state["trials_done"] = {}
    (out / "progress.json").write_text(json.dumps(state))
    (out / "results.jsonl").write_text("half a line")
    resumed = run(*args, cwd=tmp_path)
    assert resumed.returncode == 1
    assert "pop.ndjson:3" not in resumed.stderr  # the store was not read again
    assert (out / "results.jsonl").read_text() == whole


@pytest.mark.parametrize("extra, message", [
    (("--engine", "sql"), "--engine: 'sql' is not one of duckdb, spark, python"),
    (("--engine", "python", "--explain", "eligible"), "--explain is for --engine duckdb or spark"),
    (("--explain", ""), "--explain: '' is not a list"),
    (("--engine", "python", "--slice-patients", "10"), "--slice-patients is for --engine duckdb or spark"),
])
def test_bad_arguments_exit_2_with_one_message(tmp_path, extra, message):
    proc = batch(tmp_path, *extra)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_rule_set_the_generator_cannot_translate(tmp_path, monkeypatch):
    # every construct of the language is translated today: take one translation out (in this process, so the
    # command runs in-process) to see what a rule set with a construct the generator refuses gets
    from datetime import date

    from typer.testing import CliRunner

    from screening import ir
    from screening.cli import app
    from screening.compile import compile_trial
    from screening.population import sql as popsql
    from screening.population.sql import Unsupported, plan

    pop = write_population(tmp_path)
    rules = tmp_path / "occasions.crit"
    rules.write_text('trial "OCC"\nvalueset biopsy = LOCAL:biopsy\ninclusion I1 "x" = '
                     'ALT > 2 x ULN on at least 2 occasions within 7 days after procedure biopsy\n', encoding="utf-8")
    monkeypatch.delitem(popsql.ATOMS, ir.AnchoredLabTest)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Unsupported, match="AnchoredLabTest .* has no SQL translation"):
        plan(compile_trial(rules).checked, date(2026, 11, 25))
    runner = CliRunner()
    # asked for explicitly: refused before any work
    refused = runner.invoke(app, ["batch", str(rules), "--patients", str(pop), "--out", str(tmp_path / "a"),
                                  "--as-of", "2026-11-25", "--engine", "duckdb"])
    assert refused.exit_code == 2
    assert "cannot screen this rule set yet" in refused.stderr and "use --engine python" in refused.stderr
    assert not (tmp_path / "a" / "store").exists()
    # by default: the python engine screens it, and says why
    fallback = runner.invoke(app, ["batch", str(rules), "--patients", str(pop), "--out", str(tmp_path / "b"),
                                   "--as-of", "2026-11-25", "--workers", "1"])
    assert fallback.exit_code == 1, fallback.stderr  # the bad line
    assert "note: " in fallback.stderr and "screening with --engine python" in fallback.stderr
    assert len((tmp_path / "b" / "results.jsonl").read_text().splitlines()) == 4


def test_query_eligible_and_needs_one_item(tmp_path):
    assert batch(tmp_path).returncode == 1
    eligible = run("query", tmp_path / "run", "--eligible", cwd=tmp_path)
    assert eligible.returncode == 0, eligible.stderr
    assert eligible.stdout.splitlines() == ["input,patient,trial,decision", "pop.ndjson:1,P1,TINY-001,eligible"]
    needs = run("query", tmp_path / "run", "--needs", "fact informed_consent", "--trial", "TINY-001", cwd=tmp_path)
    assert needs.returncode == 0, needs.stderr
    # P2 lacks only the consent; P4 lacks the conditions list too
    assert needs.stdout.splitlines() == ["input,patient,trial,decision,missing",
                                         "pop.ndjson:2,P2,TINY-001,undetermined,fact informed_consent"]
    unknown_trial = run("query", tmp_path / "run", "--eligible", "--trial", "NOPE", cwd=tmp_path)
    assert unknown_trial.returncode == 2 and "--trial: 'NOPE' is not a trial" in unknown_trial.stderr
    both = run("query", tmp_path / "run", "--eligible", "--needs", "x", cwd=tmp_path)
    assert both.returncode == 2 and "exactly one of --eligible and --needs" in both.stderr
    missing = run("query", tmp_path / "nothing", "--eligible", cwd=tmp_path)
    assert missing.returncode == 2 and "no results.parquet" in missing.stderr


def test_explain_names_ids_spelled_like_decisions_or_holding_commas():
    from screening.population.run import ExplainSpec, UsageError

    assert ExplainSpec.parse("eligible, P4 ,id:eligible") == ExplainSpec(("eligible",), ("P4", "eligible"))
    with pytest.raises(UsageError, match="id:ID for an id spelled like a decision"):
        ExplainSpec.parse("P1,,P2")


def test_explain_takes_the_ids_of_a_file_exactly_as_written(tmp_path):
    from screening.population.run import ExplainSpec, UsageError

    (tmp_path / "ids.txt").write_text("Doe, Jane\n P7 \neligible\n")
    assert ExplainSpec.parse(f"@{tmp_path / 'ids.txt'}") == ExplainSpec((), ("Doe, Jane", " P7 ", "eligible"))
    (tmp_path / "empty.txt").write_text("P1\n\nP2\n")
    with pytest.raises(UsageError, match="one patient id per line"):
        ExplainSpec.parse(f"@{tmp_path / 'empty.txt'}")
    with pytest.raises(UsageError, match="cannot be read"):
        ExplainSpec.parse(f"@{tmp_path / 'none.txt'}")
