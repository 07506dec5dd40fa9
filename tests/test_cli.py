"""The command line as a user runs it: exit codes, one clear message for bad input, no tracebacks.

Commands run in a temporary folder outside the repository, so an installed package must find
its grammar and catalogue on its own.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, SHARED

SCREENING = str(Path(sys.executable).with_name("screening"))
TRIAL = str(ROOT / "trials" / "NCT00659217.crit")

PATIENT = {
    "id": "P-001", "birth_date": "1984-03-15", "sex": "female",
    "observations": [
        {"code": "LOINC:1742-6", "value": 95, "unit": "U/L", "reference_range": {"low": 7, "high": 40, "unit": "U/L"},
         "date": "2026-11-10"},
        {"code": "LOINC:5048-4", "value": "positive", "date": "2026-10-01"},
    ],
    "conditions": [{"code": "ICD10:M32.14", "onset": "2019-03", "status": "active"}],
    "medications": [], "procedures": [], "facts": {"informed_consent_capable": True},
}


def run(*args, cwd):
    return subprocess.run([SCREENING, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture
def patient_file(tmp_path):
    path = tmp_path / "p1.json"
    path.write_text(json.dumps(PATIENT))
    return path


def test_check_json_follows_the_contract(tmp_path, patient_file):
    proc = run("check", TRIAL, patient_file, "--as-of", "2026-11-25", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["trial"], data["patient"], data["as_of"]) == ("NCT00659217", "P-001", "2026-11-25")
    e6 = next(c for c in data["criteria"] if c["id"] == "E6")
    assert (e6["kind"], e6["verdict"], e6["value"]) == ("exclusion", "unknown", None)
    assert e6["missing"] == ["fact transaminase_rise_due_to_active_lupus"]
    assert e6["text"] == "Transaminases greater than 2 times normal unless due to active lupus."
    assert "ALT 95 U/L on 2026-11-10; limit 2 x ULN: ULN 40 U/L (from the observation) = 80 U/L; over by 15 U/L" \
        in e6["explanation"]


def test_check_several_patients_gives_an_array_and_text_prints_as_of(tmp_path, patient_file):
    proc = run("check", TRIAL, patient_file, patient_file, "--as-of", "2026-11-25", "--format", "json", cwd=tmp_path)
    assert [d["patient"] for d in json.loads(proc.stdout)] == ["P-001", "P-001"]
    text = run("check", TRIAL, patient_file, "--as-of", "2026-11-25", cwd=tmp_path)
    assert text.returncode == 0
    # lupus nephritis without a failed cyclophosphamide course: I4 fails
    assert "as of 2026-11-25" in text.stdout and "INELIGIBLE" in text.stdout
    assert "1 fail" in text.stdout


def test_explain_shows_evidence_limit_margin_and_missing(tmp_path, patient_file):
    proc = run("explain", TRIAL, patient_file, "--as-of", "2026-11-25", cwd=tmp_path)
    assert proc.returncode == 0
    out = " ".join(proc.stdout.split())
    assert "E6 (exclusion) UNKNOWN" in out
    assert "over by 15 U/L" in out
    assert "missing: fact transaminase_rise_due_to_active_lupus" in out
    assert "AGE (inclusion)" not in out  # passing criteria are not explained without --all


@pytest.mark.parametrize("content, expected", [
    ('trial "X"\ninclusion I1 "a" = ALT <= 2.5 x\n', "bad.crit:2:"),
    ('trial "X"\ninclusion I1 "a" = platelets >= 100 x 10^9/furlong\n', "unknown unit"),
    ('trial "X"\nexclusion E1 "a" = ALT > 2 mg/dL\n', "incompatible units"),
    ('trial "X"\ninclusion I1 "a" = ALTT > 3 x ULN\n', "did you mean `ALT`"),
])
def test_bad_rule_file_exits_2_with_one_positioned_message(tmp_path, patient_file, content, expected):
    (tmp_path / "bad.crit").write_text(content)
    proc = run("check", "bad.crit", patient_file, cwd=tmp_path)
    assert proc.returncode == 2
    assert expected in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("bad.crit:2:")


@pytest.mark.parametrize("document, expected", [
    ('{"id": "x", "birth_date": "2020-13-01"}', "$.birth_date: '2020-13-01' is not a real date"),
    ('{"id": "x", "observations": [{"code": "LOINC:1742-6", "value": [1]}]}', "$.observations[0].value"),
    ('{"id": "x", "sex": "F"}', "$.sex"),
    ('{"id": "x", "conditions": [{"code": "ICD9:250"}]}', "unknown code system 'ICD9'"),
    ('{"id": "x",\n "sex": }', "line 2 column 9"),
    ('[1, 2]', "a patient must be a JSON object"),
    ('{"resourceType": "Observation"}', "$.resourceType"),
])
def test_bad_patient_json_exits_2_naming_the_json_path(tmp_path, document, expected):
    (tmp_path / "bad.json").write_text(document)
    proc = run("check", TRIAL, "bad.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("bad.json: ")


def test_bad_as_of_and_missing_files_exit_2(tmp_path, patient_file):
    proc = run("check", TRIAL, patient_file, "--as-of", "2026-02-30", cwd=tmp_path)
    assert (proc.returncode, "--as-of" in proc.stderr) == (2, True)
    assert run("check", "nope.crit", patient_file, cwd=tmp_path).returncode == 2
    missing = run("check", TRIAL, "nope.json", cwd=tmp_path)
    assert missing.returncode == 2 and "cannot read file" in missing.stderr


def test_lint_reports_every_problem_of_every_file(tmp_path):
    (tmp_path / "a.crit").write_text('trial "A"\ninclusion I1 "a" = ALTT > 1 U/L\ninclusion I2 "b" = WBC > 3 mg/dL\n')
    (tmp_path / "b.crit").write_text('trial "B"\ninclusion I1 "a" = age >= 18\n')
    proc = run("lint", "a.crit", "b.crit", TRIAL, cwd=tmp_path)
    assert proc.returncode == 2
    assert "a.crit:2:20: unknown analyte `ALTT`" in proc.stderr
    assert "a.crit:3:26: incompatible units" in proc.stderr
    assert "2 problems found" in proc.stderr
    assert "ok: b.crit: trial B, 1 criteria" in proc.stdout
    assert "ok: " + TRIAL + ": trial NCT00659217, 10 criteria" in proc.stdout


def test_schema_is_the_patient_json_schema(tmp_path):
    proc = run("schema", cwd=tmp_path)
    schema = json.loads(proc.stdout)
    assert schema["title"] == "screening patient, version 1"
    assert schema["required"] == ["id"]
    assert set(schema["properties"]["sex"]["anyOf"][0]["enum"]) == {"female", "male", "other", "unknown"}


def test_convert_fhir_writes_patient_json_and_reports_drops(tmp_path):
    bundles = sorted((SHARED / "data" / "synthea").glob("*.json"))
    if not bundles:
        pytest.skip("shared Synthea data not available")
    proc = run("convert-fhir", bundles[0], "-o", "out.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    converted = json.loads((tmp_path / "out.json").read_text())
    assert converted["version"] == 1 and converted["observations"]
    assert "dropped" in proc.stderr
    check = run("check", TRIAL, "out.json", bundles[0], "--as-of", "2026-11-25", "--format", "json", cwd=tmp_path)
    assert check.returncode == 0
    a, b = json.loads(check.stdout)
    assert [c["verdict"] for c in a["criteria"]] == [c["verdict"] for c in b["criteria"]]
