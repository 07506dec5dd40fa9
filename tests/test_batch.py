"""`screening batch`: streaming many patients against several trials, bad records, resume."""
from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from screening import batch, compile_trial, patient_from_document
from screening.cli import app
from screening.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
NCT = ROOT / "trials" / "NCT00659217.crit"
SYNTHEA = ROOT.parent / "shared" / "data" / "synthea"
LUPE = SYNTHEA / "Lupe_Little_f8a42e66-8c03-4ee6-85e3-3817c2942de1.json"
AS_OF = date(2026, 11, 25)

SMALL_RULES = '''trial "SMALL-1"
title "A small inline rule set"
inclusion A1 "Adult" = age >= 18
inclusion H1 "HbA1c below 9 %" = HbA1c < 9 %
exclusion X1 "Smoker" = fact smoker
'''


def make_patient(i: int) -> dict:
    doc: dict = {"id": f"P{i:03d}", "birth_date": f"{1950 + (i * 7) % 65}-0{1 + i % 9}-15",
                 "sex": ("female", "male")[i % 2]}
    if i % 5 != 4:  # every fifth patient has no observations at all: unknowns
        doc["observations"] = [
            {"code": "LOINC:4548-4", "value": 6 + i % 6, "unit": "%", "date": "2026-10-01"},
            {"code": "LOINC:1742-6", "value": 20 + 10 * (i % 9), "unit": "U/L", "date": "2026-11-01",
             "reference_range": {"low": 7, "high": 40, "unit": "U/L"}},
        ]
    if i % 3 == 0:
        doc["conditions"] = [{"code": "ICD10:M32.14", "onset": "2019-03", "status": "active"}]
    if i % 4 != 3:
        doc["facts"] = {"smoker": i % 4 == 0, "informed_consent_capable": True}
    return doc


@pytest.fixture
def small(tmp_path) -> Path:
    path = tmp_path / "small.crit"
    path.write_text(SMALL_RULES)
    return path


def write_ndjson(path: Path, lines: list) -> Path:
    """Write documents (dicts, one JSON line each) and raw strings (written as they are)."""
    with path.open("w", encoding="utf-8") as stream:
        for item in lines:
            stream.write((item if isinstance(item, str) else json.dumps(item)) + "\n")
    return path


def run(trials, patients, out_dir, **options):
    """run_batch_command with captured consoles -> (exit code, stdout text, stderr text)."""
    out, err = io.StringIO(), io.StringIO()
    options.setdefault("workers", 1)
    code = batch.run_batch_command([Path(t) for t in trials], Path(patients), Path(out_dir), options.pop("as_of", AS_OF),
                                   out=Console(file=out, width=200), err=Console(file=err, width=200), **options)
    return code, out.getvalue(), err.getvalue()


def results(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()]


def csv_rows(out_dir: Path) -> list[list[str]]:
    with (out_dir / "summary.csv").open(newline="", encoding="utf-8") as stream:
        return list(csv.reader(stream))


def errors(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "errors.jsonl").read_text(encoding="utf-8").splitlines()]


def outputs(out_dir: Path) -> dict[str, bytes]:
    return {name: (out_dir / name).read_bytes() for name in batch.OUTPUTS}


def progress(out_dir: Path) -> dict:
    return json.loads((out_dir / "progress.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------ results and summary
def test_ndjson_two_trials_follow_the_check_contract(tmp_path, small):
    docs = [make_patient(i) for i in range(15)]
    source = write_ndjson(tmp_path / "pts.ndjson", docs)
    code, out, err = run([NCT, small], source, tmp_path / "out")
    assert (code, err) == (0, "")
    lines = results(tmp_path / "out")
    assert len(lines) == 30
    trials = [compile_trial(NCT), compile_trial(small)]
    for index, line in enumerate(lines):
        number, trial = index // 2 + 1, trials[index % 2]
        key = f"{source}:{number}"
        assert line.pop("input") == key
        # exactly what `check --format json` prints for this patient, source = the record's key
        assert line == trial.screen(patient_from_document(docs[number - 1], key), AS_OF).to_dict()
    # specific patients: P000 smokes, P001 is an adult non-smoker with HbA1c 7 %
    p0 = lines[1]
    assert (p0["trial"], p0["patient"], p0["decision"]) == ("SMALL-1", "P000", "ineligible")
    assert {c["id"]: c["verdict"] for c in p0["criteria"]} == {"A1": "pass", "H1": "pass", "X1": "fail"}
    p1 = lines[3]
    assert (p1["patient"], p1["decision"]) == ("P001", "eligible")
    p14 = lines[29]  # no observations: HbA1c is unknown
    assert (p14["patient"], p14["decision"]) == ("P014", "undetermined")
    h1 = p14["criteria"][1]
    assert (h1["id"], h1["verdict"], h1["missing"]) == ("H1", "unknown", ["HbA1c: no observations provided"])
    # the summary table at the end
    assert "Decisions" in out and "SMALL-1" in out and "NCT00659217" in out
    assert "Criteria that exclude most often" in out and "Data most often missing" in out
    assert "15 patient records, 30 results (2 trials)" in out
    state = progress(tmp_path / "out")
    assert state["state"] == "complete" and state["records"] == 15
    assert state["tally"]["trials"]["SMALL-1"]["decisions"]["ineligible"] == sum(
        1 for line in lines if line["trial"] == "SMALL-1" and line["decision"] == "ineligible")


def test_summary_csv_has_one_row_per_pair_and_one_column_per_criterion(tmp_path, small):
    source = write_ndjson(tmp_path / "pts.ndjson", [make_patient(i) for i in range(5)])
    assert run([NCT, small], source, tmp_path / "two")[0] == 0
    rows = csv_rows(tmp_path / "two")
    nct = compile_trial(NCT)
    header = rows[0]
    assert header[:10] == ["input", "patient", "label", "trial", "as_of", "decision", "items_missing", "deciding",
                           "to_obtain", "review_questions"]
    assert header[10:] == [f"NCT00659217:{c.id}" for c in nct.criteria] + ["SMALL-1:A1", "SMALL-1:H1", "SMALL-1:X1"]
    assert len(rows) == 1 + 10
    row = dict(zip(header, rows[2]))  # P000 against SMALL-1
    assert (row["input"], row["patient"], row["trial"], row["as_of"], row["decision"]) == \
        (f"{source}:1", "P000", "SMALL-1", "2026-11-25", "ineligible")
    assert (row["SMALL-1:A1"], row["SMALL-1:H1"], row["SMALL-1:X1"]) == ("pass", "pass", "fail")
    assert all(row[f"NCT00659217:{c.id}"] == "" for c in nct.criteria)
    # one trial: the columns are the criterion ids
    assert run([small], source, tmp_path / "one")[0] == 0
    rows = csv_rows(tmp_path / "one")
    assert rows[0] == ["input", "patient", "label", "trial", "as_of", "decision", "items_missing", "deciding",
                       "to_obtain", "review_questions", "A1", "H1", "X1"]
    x1_fail = rows[1][7]
    assert x1_fail.startswith("X1 fail: ")
    assert rows[1] == [f"{source}:1", "P000", "P000 (pts.ndjson:1)", "SMALL-1", "2026-11-25", "ineligible", "0", x1_fail,
                       "", "", "pass", "pass", "fail"]


def test_folder_input_is_recursive_sorted_and_keyed_by_path(tmp_path, small):
    folder = tmp_path / "pts"
    (folder / "b").mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps(make_patient(1)))
    (folder / "b" / "c.json").write_text(json.dumps(make_patient(2)))
    (folder / "b" / "a.json").write_text(json.dumps(make_patient(3)))
    (folder / "notes.txt").write_text("not a patient")
    (folder / ".hidden.json").write_text("{")
    out_dir = folder / "out"  # inside the folder: its progress.json must not be read as a patient
    code, _, err = run([small], folder, out_dir)
    assert (code, err) == (0, "")
    keys = [line["input"] for line in results(out_dir)]
    assert keys == [str(folder / "a.json"), str(folder / "b" / "a.json"), str(folder / "b" / "c.json")]
    assert [line["patient"] for line in results(out_dir)] == ["P001", "P003", "P002"]
    assert results(out_dir)[0]["source"] == str(folder / "a.json")
    # a second run resumes a complete run: nothing to do, nothing written twice
    code, out, _ = run([small], folder, out_dir)
    assert code == 0 and "nothing to do" in out and len(results(out_dir)) == 3
    # a single .json file is one record
    code, _, _ = run([small], folder / "a.json", tmp_path / "single")
    assert code == 0 and [line["patient"] for line in results(tmp_path / "single")] == ["P001"]


# ------------------------------------------------------------------ bad records
BAD_LINES = [make_patient(0), make_patient(1), '{"id": "P-broken", "birth_date": ', make_patient(3),
             {"id": "P-bad-date", "birth_date": "1980-13-45"}, "", "[1, 2]", make_patient(7)]


def test_bad_records_are_reported_with_their_line_and_skipped(tmp_path, small):
    source = write_ndjson(tmp_path / "pts.ndjson", BAD_LINES)
    code, out, err = run([small], source, tmp_path / "out")
    assert code == 1  # completed, but records were skipped
    assert [line["patient"] for line in results(tmp_path / "out")] == ["P000", "P001", "P003", "P007"]
    assert [line["input"] for line in results(tmp_path / "out")] == [f"{source}:{n}" for n in (1, 2, 4, 8)]
    bad = errors(tmp_path / "out")
    assert [(e["input"], e["line"]) for e in bad] == [(f"{source}:3", 3), (f"{source}:5", 5), (f"{source}:7", 7)]
    assert bad[0]["problems"][0]["code"] == "json" and bad[0]["error"].startswith("column 34: not valid JSON")
    assert bad[1]["problems"][0]["path"] == "$.birth_date" and bad[1]["error"].startswith("$.birth_date: ")
    assert "a patient must be a JSON object" in bad[2]["error"]
    lines = err.splitlines()
    assert lines[0].startswith(f"{source}:3: column 34: not valid JSON")
    assert lines[1].startswith(f"{source}:5: $.birth_date: ")
    assert "warning: 3 bad patient records skipped" in out
    assert progress(tmp_path / "out")["tally"]["bad"] == 3
    assert len(csv_rows(tmp_path / "out")) == 1 + 4


def test_odd_text_in_a_record_does_not_break_the_outputs(tmp_path, small):
    lone_surrogate = '{"id": "P-\\ud800", "birth_date": "1980-01-01"}'  # valid JSON, not valid text
    source = write_ndjson(tmp_path / "pts.ndjson", [lone_surrogate, {"id": "Zoë :100: [bold]x[/bold]"}])
    code, _, err = run([small], source, tmp_path / "out")
    assert code == 1 and err.startswith(f"{source}:1: $.id: ")
    assert [line["patient"] for line in results(tmp_path / "out")] == ["Zoë :100: [bold]x[/bold]"]
    assert csv_rows(tmp_path / "out")[1][1] == "Zoë :100: [bold]x[/bold]"


def test_bad_file_in_a_folder_names_the_file_and_the_json_line(tmp_path, small):
    folder = tmp_path / "pts"
    folder.mkdir()
    (folder / "a.json").write_text('{\n  "id": "A",\n  "sex": \n}\n')
    (folder / "b.json").write_text(json.dumps(make_patient(2)))
    code, _, err = run([small], folder, tmp_path / "out")
    assert code == 1
    (entry,) = errors(tmp_path / "out")
    assert (entry["input"], entry["line"]) == (str(folder / "a.json"), 4)
    assert err.startswith(f"{folder / 'a.json'}: line 4 column 1: not valid JSON")
    assert [line["patient"] for line in results(tmp_path / "out")] == ["P002"]


@pytest.mark.skipif(not LUPE.is_file(), reason=f"no Synthea data at {SYNTHEA}")
def test_fhir_bundles_in_ndjson_are_converted(tmp_path, small):
    bundle = json.loads(LUPE.read_text(encoding="utf-8"))
    source = write_ndjson(tmp_path / "mixed.ndjson", [make_patient(1), bundle])
    code, _, err = run([NCT, small], source, tmp_path / "out")
    assert (code, err) == (0, "")
    lines = results(tmp_path / "out")
    assert [line["input"] for line in lines] == [f"{source}:1"] * 2 + [f"{source}:2"] * 2
    record = patient_from_document(bundle, f"{source}:2")
    for line, trial in zip(lines[2:], (compile_trial(NCT), compile_trial(small))):
        expected = trial.screen(record, AS_OF)
        assert line["patient"] == expected.patient == record.id
        assert line["decision"] == expected.decision
        assert {c["id"]: c["verdict"] for c in line["criteria"]} == {c.id: c.verdict for c in expected.criteria}


# ------------------------------------------------------------------ workers
def test_two_workers_write_the_same_files_as_one(tmp_path, small):
    lines = [make_patient(i) for i in range(40)]
    lines[10:10] = BAD_LINES[2:7]
    source = write_ndjson(tmp_path / "pts.ndjson", lines)
    one = run([NCT, small], source, tmp_path / "one", workers=1, chunk_size=3)
    two = run([NCT, small], source, tmp_path / "two", workers=2, chunk_size=3)
    assert one[0] == two[0] == 1
    assert outputs(tmp_path / "one") == outputs(tmp_path / "two")
    assert len(results(tmp_path / "two")) == 82 and len(errors(tmp_path / "two")) == 3
    assert progress(tmp_path / "one")["tally"] == progress(tmp_path / "two")["tally"]


# ------------------------------------------------------------------ resume
def test_resume_after_an_interruption_mid_line_loses_and_duplicates_nothing(tmp_path, small, monkeypatch):
    lines = [make_patient(i) for i in range(30)]
    lines[7:7] = BAD_LINES[2:5]
    source = write_ndjson(tmp_path / "pts.ndjson", lines)
    out_dir = tmp_path / "out"
    snapshots: list[dict] = []
    original = batch.BatchRun.checkpoint

    def recording(self, complete=False):
        original(self, complete)
        snapshots.append(progress(out_dir))

    monkeypatch.setattr(batch.BatchRun, "checkpoint", recording)
    assert run([small], source, out_dir, chunk_size=4, checkpoint_seconds=0)[0] == 1
    monkeypatch.setattr(batch.BatchRun, "checkpoint", original)
    reference, reference_tally = outputs(out_dir), progress(out_dir)["tally"]
    assert len(snapshots) > 5

    # the process "died" after checkpoint 4 while writing later chunks: each output holds more
    # than the checkpoint says, the last line cut in the middle
    earlier = snapshots[4]
    assert earlier["state"] == "running" and 0 < earlier["records"] < 33
    (out_dir / "progress.json").write_text(json.dumps(earlier))
    for name, size in earlier["outputs"].items():
        data, cut = reference[name], size
        first = data.find(b"\n", size)  # one whole line after the checkpoint, then half of the next
        if first > 0:
            second = data.find(b"\n", first + 1)
            cut = first + 1 + max(1, (second - first) // 2) if second > 0 else first + 1
        (out_dir / name).write_bytes(data[:cut])
    assert (out_dir / "results.jsonl").stat().st_size > earlier["outputs"]["results.jsonl"]

    code, out, _ = run([small], source, out_dir)
    assert code == 1
    assert f"resuming after {earlier['records']} patient records" in out
    assert outputs(out_dir) == reference
    keys = [line["input"] for line in results(out_dir)]
    assert len(keys) == len(set(keys)) == 31  # 33 lines, 2 of them bad
    assert progress(out_dir)["tally"] == reference_tally


@pytest.mark.parametrize("kind", ["ndjson", "folder"])
def test_ctrl_c_saves_a_checkpoint_and_the_run_resumes(tmp_path, small, monkeypatch, kind):
    if kind == "ndjson":
        source = write_ndjson(tmp_path / "pts.ndjson", [make_patient(i) for i in range(25)])
    else:
        source = tmp_path / "pts"
        for i in range(25):
            (source / f"site{i % 3}").mkdir(parents=True, exist_ok=True)
            (source / f"site{i % 3}" / f"p{i:02d}.json").write_text(json.dumps(make_patient(i)))
    assert run([small], source, tmp_path / "clean")[0] == 0
    calls = {"n": 0}
    original = batch.Screener.chunk

    def interrupted(self, records):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, records)

    monkeypatch.setattr(batch.Screener, "chunk", interrupted)
    code, _, err = run([small], source, tmp_path / "out", chunk_size=3, checkpoint_seconds=3600)
    assert code == 130 and "run the same command again to resume" in err
    assert progress(tmp_path / "out")["records"] == 9
    monkeypatch.setattr(batch.Screener, "chunk", original)
    code, out, _ = run([small], source, tmp_path / "out")
    assert code == 0 and "resuming after 9 patient records" in out
    assert outputs(tmp_path / "out") == outputs(tmp_path / "clean")
    assert len(results(tmp_path / "out")) == 25


KILLED_RUN = """
import sys, time
from datetime import date
from pathlib import Path
from screening import batch
slow = batch.Screener.chunk
def chunk(self, records):
    time.sleep(0.04)
    return slow(self, records)
batch.Screener.chunk = chunk   # inherited by the forked workers
trials, patients, out = sys.argv[1:]
sys.exit(batch.run_batch_command([Path(t) for t in trials.split(",")], Path(patients), Path(out), date(2026, 11, 25),
                                 workers=2, chunk_size=2, checkpoint_seconds=0))
"""


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def test_a_killed_run_resumes_without_duplicates_or_losses(tmp_path, small):
    source = write_ndjson(tmp_path / "pts.ndjson", [make_patient(i) for i in range(160)])
    trials = [NCT, small]
    assert run(trials, source, tmp_path / "clean", workers=2)[0] == 0
    out_dir = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, ",".join(map(str, trials)), str(source), str(out_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                if progress(out_dir)["records"] >= 30:
                    break
            except (OSError, ValueError):
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = progress(out_dir)
    assert state["state"] == "running" and 30 <= state["records"] < 160
    if Path("/proc").is_dir():  # the orphaned workers notice that their parent is gone and end
        deadline = time.monotonic() + 10
        while _processes_mentioning(str(out_dir)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _processes_mentioning(str(out_dir))
    code, out, _ = run(trials, source, out_dir, workers=2)
    assert code == 0 and "resuming after" in out
    assert outputs(out_dir) == outputs(tmp_path / "clean")
    keys = [(line["input"], line["trial"]) for line in results(out_dir)]
    assert len(keys) == len(set(keys)) == 320


def test_resume_refuses_a_changed_trial_and_restart_starts_over(tmp_path, small):
    source = write_ndjson(tmp_path / "pts.ndjson", [make_patient(i) for i in range(6)])
    out_dir = tmp_path / "out"
    assert run([small], source, out_dir)[0] == 0
    small.write_text(SMALL_RULES.replace("age >= 18", "age >= 21"))
    with pytest.raises(UsageError, match=r"small\.crit changed since the run started[\s\S]*--restart"):
        run([small], source, out_dir)
    with pytest.raises(UsageError, match=r"--as-of: the run screened as of 2026-11-25, this command as of 2026-12-01"):
        run([small], source, out_dir, as_of=date(2026, 12, 1))
    code, _, _ = run([small], source, out_dir, resume=False)
    assert code == 0 and len(results(out_dir)) == 6
    assert progress(out_dir)["trials"][0]["sha256"] == batch.load_trials([small])[0].sha256


def test_outputs_without_a_checkpoint_are_not_overwritten(tmp_path, small):
    source = write_ndjson(tmp_path / "pts.ndjson", [make_patient(1)])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "results.jsonl").write_text("precious\n")
    with pytest.raises(UsageError, match="no progress.json"):
        run([small], source, out_dir)
    assert (out_dir / "results.jsonl").read_text() == "precious\n"


# ------------------------------------------------------------------ the command line
def test_cli_batch_exit_codes(tmp_path, small):
    source = write_ndjson(tmp_path / "pts.ndjson", [make_patient(i) for i in range(4)])
    runner = CliRunner()
    ok = runner.invoke(app, ["batch", str(small), "--patients", str(source), "--out", str(tmp_path / "out"),
                             "--as-of", "2026-11-25", "--workers", "1"])
    assert ok.exit_code == 0, ok.output
    assert "Decisions" in ok.stdout and len(results(tmp_path / "out")) == 4
    changed = tmp_path / "changed.crit"
    changed.write_text(SMALL_RULES)
    refused = runner.invoke(app, ["batch", str(changed), "--patients", str(source), "--out", str(tmp_path / "out"),
                                  "--as-of", "2026-11-25"])
    assert refused.exit_code == 2 and "--restart" in refused.stderr
    restarted = runner.invoke(app, ["batch", str(changed), "--patients", str(source), "--out", str(tmp_path / "out"),
                                    "--as-of", "2026-11-25", "--restart", "--workers", "1"])
    assert restarted.exit_code == 0, restarted.output
    broken = tmp_path / "broken.crit"
    broken.write_text('trial "B"\ninclusion I1 "x" = age >=\n')
    bad_trial = runner.invoke(app, ["batch", str(broken), "--patients", str(source), "--out", str(tmp_path / "o2")])
    assert bad_trial.exit_code == 2 and "broken.crit:" in bad_trial.stderr
    for patients, message in ((tmp_path / "missing.ndjson", "no such file"), (small, "--patients takes")):
        result = runner.invoke(app, ["batch", str(small), "--patients", str(patients), "--out", str(tmp_path / "o3")])
        assert result.exit_code == 2 and message in result.stderr
    folder = tmp_path / "folder"
    folder.mkdir()
    same = runner.invoke(app, ["batch", str(small), "--patients", str(folder), "--out", str(folder)])
    assert same.exit_code == 2 and "must not be the --patients folder" in same.stderr
    twice = runner.invoke(app, ["batch", str(small), str(small), "--patients", str(source), "--out", str(tmp_path / "o4")])
    assert twice.exit_code == 2 and "each trial may be given once" in twice.stderr


def test_missing_data_tally_groups_dates_and_stays_bounded():
    assert batch.missing_key("ALT result of 2026-11-25: a text result where a number is needed") == \
        "ALT result: a text result where a number is needed"
    assert batch.missing_key("WBC result of undated: date uncertain") == "WBC result: date uncertain"
    assert batch.missing_key("HbA1c result within 3 months") == "HbA1c result within 3 months"
    total = batch.new_tally()
    for i in range(batch.MISSING_ITEMS + 50):
        part = batch.new_tally()
        part["trials"]["T"] = {"decisions": {"eligible": 1}, "fail": {}, "missing": {f"unit {i}": 1}}
        batch.merge_tally(total, part)
    missing = total["trials"]["T"]["missing"]
    assert len(missing) == batch.MISSING_ITEMS + 1 and missing[batch.OTHER_MISSING] == 50
    assert total["trials"]["T"]["decisions"] == {"eligible": batch.MISSING_ITEMS + 50}


def test_resume_refuses_a_folder_that_changed_before_the_checkpoint(tmp_path, small, monkeypatch):
    folder = tmp_path / "pts"
    folder.mkdir()
    for i in range(10):
        (folder / f"p{i:02d}.json").write_text(json.dumps(make_patient(i)))
    original, calls = batch.Screener.chunk, {"n": 0}

    def interrupted(self, records):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, records)

    monkeypatch.setattr(batch.Screener, "chunk", interrupted)
    assert run([small], folder, tmp_path / "out", chunk_size=2, checkpoint_seconds=3600)[0] == 130
    assert progress(tmp_path / "out")["position"] == {"files": 4, "last": str(folder / "p03.json")}
    monkeypatch.setattr(batch.Screener, "chunk", original)
    (folder / "p01.json").unlink()
    with pytest.raises(UsageError, match="the patient files changed since the interrupted run"):
        run([small], folder, tmp_path / "out")


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["position"].update(offset=10 ** 12), "is past the end of"),
    (lambda s: s["position"].update(offset=s["position"]["offset"] - 3), "is not the start of a line of"),
    (lambda s: s["position"].update(offset="x"), "position is not an object of counts"),
    (lambda s: s.update(tally="x"), "tally is not an object of counts"),
    (lambda s: s.update(state="done"), "state is neither running nor complete"),
])
def test_a_damaged_checkpoint_of_the_python_engine_is_refused_with_use_restart(tmp_path, small, edit, message):
    source = write_ndjson(tmp_path / "pts.ndjson", [make_patient(i) for i in range(6)])
    assert run([small], source, tmp_path / "out")[0] == 0
    state = progress(tmp_path / "out")
    state["state"] = "running"
    edit(state)
    (tmp_path / "out" / "progress.json").write_text(json.dumps(state))
    with pytest.raises(UsageError) as refused:  # exit 2 with this one message (cli.py)
        run([small], source, tmp_path / "out")
    assert message in str(refused.value) and "use --restart" in str(refused.value)
