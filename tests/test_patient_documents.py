"""Ambiguous documents: duplicate keys, dates that are not plain ISO 8601, a birth after the as-of date."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from helpers import AS_OF, ROOT, one, patient, trial
from screening import DataError, SourceError, batch, patient_from_document
from screening.cli import app
from screening.dates import DateProblem, parse_date, parse_partial
from screening.patient.load import load_patient, parse_json
from screening.testing.command import run_test_command

SCREENING = str(Path(sys.executable).with_name("screening"))
TRIAL = str(ROOT / "trials" / "NCT00659217.crit")
EXPECTED = "expected YYYY-MM-DD, YYYY-MM or YYYY, or a date-time YYYY-MM-DDThh:mm:ss with Z or +hh:mm"


def problems(call) -> list[tuple[str, str]]:
    with pytest.raises(DataError) as caught:
        call()
    return [(p.path, p.message) for p in caught.value.problems]


def run(*args, cwd):
    return subprocess.run([SCREENING, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


# ---------------------------------------------------------------- duplicate keys
def test_duplicate_keys_are_refused_at_their_path():
    text = ('{"id": "a", "sex": "female", "id": "b", "observations": [{"code": "LOINC:1742-6", "value": 50, '
            '"value": 500}], "facts": {"smoker": true, "on dialysis": true, "on dialysis": false}}')
    assert problems(lambda: parse_json(text, "p.json")) == [
        ("$.id", "duplicate key 'id': a JSON object may give each key once"),
        ("$.observations[0].value", "duplicate key 'value': a JSON object may give each key once"),
        ('$.facts["on dialysis"]', "duplicate key 'on dialysis': a JSON object may give each key once"),
    ]


def test_check_refuses_a_duplicate_key_with_exit_2(tmp_path):
    (tmp_path / "p.json").write_text('{"id": "x",\n "birth_date": "1980-01-01",\n "birth_date": "2010-01-01"}')
    proc = run("check", TRIAL, "p.json", "--as-of", "2026-11-25", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "p.json: $.birth_date: duplicate key 'birth_date': a JSON object may give each key once"


# ---------------------------------------------------------------- lone surrogates
def test_a_lone_surrogate_is_refused_at_its_path_and_a_pair_is_text():
    text = ('{"id": "a\\ud83d\\ude00", "facts": {"x": "\\ud800", "k\\uDFFF": 1}, '
            '"observations": [{"code": "LOINC:1742-6", "value": 5, "display": "AL\\udc00T"}]}')
    assert problems(lambda: parse_json(text, "p.json")) == [  # an object's keys before its values
        ("$.facts", 'key "k\\udfff": not valid Unicode text: a lone surrogate \\udfff (half of a UTF-16 pair) '
                    "at character 2"),
        ("$.facts.x", "not valid Unicode text: a lone surrogate \\ud800 (half of a UTF-16 pair) at character 1"),
        ("$.observations[0].display",
         "not valid Unicode text: a lone surrogate \\udc00 (half of a UTF-16 pair) at character 3"),
    ]
    assert parse_json('{"id": "a\\ud83d\\ude00"}', "p.json") == {"id": "a\U0001F600"}  # a pair is one character
    with pytest.raises(DataError):  # a document built in Python is walked the same way
        patient_from_document({"id": "a", "facts": {"x": "\ud800"}})


def test_check_refuses_a_lone_surrogate_with_exit_2(tmp_path):
    (tmp_path / "p.json").write_text('{"id": "x", "sex": "male", "facts": {"smoker": "y\\ud800"}}')
    proc = run("check", TRIAL, "p.json", "--as-of", "2026-11-25", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == ("p.json: $.facts.smoker: not valid Unicode text: a lone surrogate \\ud800 "
                                   "(half of a UTF-16 pair) at character 2")


# ---------------------------------------------------------------- dates
@pytest.mark.parametrize("text, message", [
    ("1980-01-01Tgarbage", f"'1980-01-01Tgarbage' is not a date ({EXPECTED})"),
    ("1980-1-1", f"'1980-1-1' is not a date ({EXPECTED})"),
    (" 1980-01-01", f"' 1980-01-01' has spaces around it ({EXPECTED})"),
    ("1980-01-01 ", f"'1980-01-01 ' has spaces around it ({EXPECTED})"),
    ("+1980-01-01", f"'+1980-01-01' is not a date ({EXPECTED})"),
    ("１９８０", f"'１９８０' has characters that are not ASCII (digits must be 0-9) ({EXPECTED})"),
    ("1980-01-01 10:00", f"'1980-01-01 10:00' is not a date ({EXPECTED})"),
    ("1980-01-01T25:00", f"'1980-01-01T25:00' is not a date ({EXPECTED})"),
    ("1980-01-01T10:00+1:00", f"'1980-01-01T10:00+1:00' is not a date ({EXPECTED})"),
    ("1980-01-01T10:00:00.Z", f"'1980-01-01T10:00:00.Z' is not a date ({EXPECTED})"),
    ("19800101", f"'19800101' is not a date ({EXPECTED})"),
    ("1980-02-30", "'1980-02-30' is not a real date (day is out of range for month)"),
    ("1980-13", "'1980-13' is not a real date (bad month number 13; must be 1-12)"),
])
def test_dates_are_iso_8601_and_nothing_more(text, message):
    assert problems(lambda: patient_from_document({"id": "x", "birth_date": text})) == [("$.birth_date", message)]


@pytest.mark.parametrize("text, day", [
    ("1980", None), ("1980-07", None), ("1980-07-04", date(1980, 7, 4)),
    ("1980-07-04T10:30", date(1980, 7, 4)), ("1980-07-04T10:30:15", date(1980, 7, 4)),
    ("1980-07-04T23:59:59.123456Z", date(1980, 7, 4)), ("1980-07-04T00:00:00-05:00", date(1980, 7, 4)),
    ("1980-07-04T00:00:00+14:00", date(1980, 7, 4)),
])
def test_iso_dates_and_date_times_are_accepted_and_mean_the_date_written(text, day):
    lo, hi = parse_partial(text)
    if day is not None:
        assert lo == hi == day.toordinal()
    else:
        assert lo < hi


def test_bad_dates_in_records_are_refused_at_their_path(tmp_path):
    document = {"id": "x", "observations": [{"code": "LOINC:1742-6", "value": 5, "date": "2026-11-10T08:00 "}],
                "conditions": [{"code": "ICD10:M32", "onset": "2019-3"}]}
    (tmp_path / "p.json").write_text(json.dumps(document))
    proc = run("check", TRIAL, "p.json", "--as-of", "2026-11-25", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"p.json: $.observations[0].date: '2026-11-10T08:00 ' has spaces around it ({EXPECTED})",
        f"p.json: $.conditions[0].onset: '2019-3' is not a date ({EXPECTED})",
    ]


@pytest.mark.parametrize("text, message", [
    ("2026-11-25T00:00", "'2026-11-25T00:00' has a time (expected a date alone, YYYY-MM-DD)"),
    ("2026-11", "'2026-11' is not a full date (expected YYYY-MM-DD)"),
    (" 2026-11-25", "' 2026-11-25' has spaces around it (expected a full date YYYY-MM-DD)"),
    ("２０２６-11-25", "'２０２６-11-25' has characters that are not ASCII (digits must be 0-9) "
                     "(expected a full date YYYY-MM-DD)"),
    ("today", "'today' is not a date (expected a full date YYYY-MM-DD)"),
])
def test_as_of_is_exactly_yyyy_mm_dd_in_check_explain_and_batch(tmp_path, text, message):
    (tmp_path / "p.json").write_text('{"id": "x"}')
    for command in ("check", "explain"):
        proc = run(command, TRIAL, "p.json", "--as-of", text, cwd=tmp_path)
        assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (2, f"--as-of: {message}", "")
    result = CliRunner().invoke(app, ["batch", TRIAL, "--patients", str(tmp_path / "p.json"),
                                      "--out", str(tmp_path / "out"), "--as-of", text])
    assert (result.exit_code, result.stderr.strip()) == (2, f"--as-of: {message}")
    assert not (tmp_path / "out").exists()
    with pytest.raises(DateProblem):
        parse_date(text)


def test_a_case_files_as_of_is_exactly_yyyy_mm_dd(tmp_path):
    sample = ROOT / "patient_samples" / "p04_ineligible_alt_95_over_2x_uln.json"
    cases = tmp_path / "t.cases.yaml"
    cases.write_text(f"trial: {TRIAL}\nas_of: 2026-11-25T00:00\ncases:\n  - name: a\n    patient: {sample}\n"
                     "    decision: ineligible\n")
    with pytest.raises(SourceError) as caught:
        run_test_command([cases], out=Console(file=io.StringIO()), err=Console(file=io.StringIO()))
    assert (caught.value.first.span.line, caught.value.first.span.column, caught.value.first.message) == (
        2, 8, "malformed date in `as_of`: '2026-11-25T00:00' has a time (expected a date alone, YYYY-MM-DD)")
    proc = run("test", cases, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- birth after the as-of date
AGE_RULE = 'inclusion AGE "Adults" = age >= 18 years\n'


@pytest.mark.parametrize("birth, missing", [
    ("2030-02-01", "birth_date 2030-02-01 is after the as-of date 2026-11-25"),
    ("2027", "birth_date 2027 is after the as-of date 2026-11-25"),
    ("2026-12", "birth_date 2026-12 is after the as-of date 2026-11-25"),
])
def test_a_birth_after_the_as_of_date_is_named_not_called_missing(birth, missing):
    result = one(trial(AGE_RULE), patient(birth_date=birth))  # also checks the fast path agrees
    assert (result.verdict, result.value, result.missing) == ("unknown", None, [missing])
    assert missing in result.explanation


def test_a_missing_birth_date_is_still_plain_missing():
    result = one(trial(AGE_RULE), patient())
    assert (result.verdict, result.missing) == ("unknown", ["birth_date"])


def test_explain_prints_the_birth_after_the_as_of_date(tmp_path):
    (tmp_path / "p.json").write_text('{"id": "x", "birth_date": "2030-02-01", "sex": "female"}')
    proc = run("explain", TRIAL, "p.json", "--as-of", "2026-11-25", cwd=tmp_path)
    assert proc.returncode == 0
    out = " ".join(proc.stdout.split())
    assert "missing: birth_date 2030-02-01 is after the as-of date 2026-11-25" in out
    assert "birth date not recorded" not in out


def test_the_same_patient_screened_later_gets_an_age():
    record = patient(birth_date="2000-02-01")
    early = one(trial(AGE_RULE), record, as_of=date(1999, 1, 1))
    late = one(trial(AGE_RULE), record, as_of=AS_OF)
    assert early.missing == ["birth_date 2000-02-01 is after the as-of date 1999-01-01"]
    assert (late.verdict, late.missing) == ("pass", [])


def test_a_file_with_a_bad_date_is_refused_by_load_patient(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"id": "x", "birth_date": "1980-01-01Tgarbage"}')
    assert problems(lambda: load_patient(path)) == [("$.birth_date", f"'1980-01-01Tgarbage' is not a date ({EXPECTED})")]


def test_batch_reports_and_skips_duplicate_keys_and_bad_dates(tmp_path):
    rules = tmp_path / "t.crit"
    rules.write_text('trial "T-1"\n' + AGE_RULE)
    source = tmp_path / "p.ndjson"
    source.write_text('{"id": "a", "birth_date": "1980-01-01"}\n'
                      '{"id": "b", "id": "c"}\n'
                      '{"id": "d", "birth_date": "1980-01-01Tgarbage"}\n'
                      '{"id": "e", "birth_date": "2030-01-01"}\n')
    out, err = io.StringIO(), io.StringIO()
    code = batch.run_batch_command([rules], source, tmp_path / "out", AS_OF, workers=1,
                                   out=Console(file=out, width=200), err=Console(file=err, width=200))
    assert code == 1
    entries = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert [(e["line"], e["error"]) for e in entries] == [
        (2, "$.id: duplicate key 'id': a JSON object may give each key once"),
        (3, f"$.birth_date: '1980-01-01Tgarbage' is not a date ({EXPECTED})"),
    ]
    results = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [(r["patient"], r["decision"]) for r in results] == [("a", "eligible"), ("e", "undetermined")]
    assert results[1]["criteria"][0]["missing"] == ["birth_date 2030-01-01 is after the as-of date 2026-11-25"]


def test_a_date_of_year_one_is_shown_with_four_digits():
    from screening.dates import parse_partial, show

    assert show(*parse_partial("0001")) == "0001"
    assert show(*parse_partial("0001-01")) == "0001-01"
    assert show(*parse_partial("2019-03")) == "2019-03"


def test_a_csv_cell_holding_a_carriage_return_is_quoted():
    import csv as csvmodule

    line = batch.csv_line(batch.csv_row(["\rx", "a,b", "plain", 'say "hi"']))
    assert line == '"\'\rx","a,b",plain,"say ""hi"""\n'
    assert next(csvmodule.reader(io.StringIO(line, newline=""))) == ["'\rx", "a,b", "plain", 'say "hi"']
