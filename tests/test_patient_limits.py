"""Limits of a patient document: 64 levels of nesting and 64 MiB, in check, the API and batch.

The large files are sparse (``truncate``): they cost no disk and, where the limit is checked with
``stat``, no reading either.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from helpers import AS_OF, ROOT
from screening import DataError, batch, patient_from_document
from screening.patient import load
from screening.patient.load import MAX_DEPTH, MAX_DOCUMENT_BYTES, load_patient, parse_json

SCREENING = str(Path(sys.executable).with_name("screening"))
TRIAL = str(ROOT / "trials" / "NCT00659217.crit")
DEEP = "nested more than 64 levels deep (the limit for a patient document)"
MIB = 1024 * 1024


def problems(call) -> list[tuple[str, str]]:
    with pytest.raises(DataError) as caught:
        call()
    return [(p.path, p.message) for p in caught.value.problems]


def run(*args, cwd):
    return subprocess.run([SCREENING, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


def nested(levels: int) -> str:
    """A patient whose first condition has an extra field nested so that the document is ``levels`` deep."""
    inner = "[" * (levels - 3) + "1" + "]" * (levels - 3)  # $ object, conditions list, condition object
    return '{"id": "x", "conditions": [{"code": "ICD10:M32", "detail": %s}]}' % inner


def sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with path.open("wb") as stream:
        stream.write(head)
        stream.truncate(size)
    return path


# ---------------------------------------------------------------- nesting
def test_64_levels_are_accepted_and_65_refused_at_line_and_column():
    assert MAX_DEPTH == 64
    assert parse_json(nested(64), "p.json")["conditions"][0]["detail"] is not None
    column = nested(65).index("[[") + 1 + 61  # the 62nd bracket of the detail field (levels 4 to 65)
    assert problems(lambda: parse_json(nested(65), "p.json")) == [(f"line 1 column {column}", DEEP)]


def test_brackets_inside_strings_do_not_count():
    text = '{"id": "x", "facts": {"note": "%s"}}' % ("[{" * 5000)
    assert parse_json(text, "p.json")["facts"]["note"].startswith("[{[{")


def test_1000_levels_exit_2_in_check_with_no_recursion_error(tmp_path):
    (tmp_path / "deep.json").write_text('{"id": "x",\n "facts": ' + "[" * 1000 + "]" * 1000 + "}")
    proc = run("check", TRIAL, "deep.json", "--as-of", "2026-11-25", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"deep.json: line 2 column {10 + 64}: {DEEP}"


def test_deep_python_objects_are_refused_by_the_api_before_validation():
    detail: dict = {}
    node = detail
    for _ in range(5000):
        node["next"] = {}
        node = node["next"]
    found = problems(lambda: patient_from_document({"id": "x", "conditions": [{"code": "ICD10:M32", "more": detail}]}))
    assert found == [("$.conditions[0].more" + ".next" * 61, DEEP)]


def test_a_list_that_contains_itself_is_refused_not_walked_forever():
    loop: list = []
    loop.append(loop)
    found = problems(lambda: patient_from_document({"id": "x", "conditions": [{"code": "ICD10:M32", "x": loop}]}))
    assert found == [("$.conditions[0].x" + "[0]" * 61, DEEP)]


def test_deep_fhir_is_refused_before_conversion():
    bundle = '{"resourceType": "Bundle", "type": "collection", "entry": ' + "[" * 200 + "]" * 200 + "}"
    column = bundle.index("[") + 1 + 63  # level 1 is the bundle, level 65 the 64th bracket
    assert problems(lambda: parse_json(bundle, "b.json")) == [(f"line 1 column {column}", DEEP)]


# ---------------------------------------------------------------- size
def test_a_100_mb_file_exits_2_naming_the_limit_without_reading_it(tmp_path):
    sparse(tmp_path / "big.json", 100 * MIB, b'{"id": "x", "note": "')
    proc = run("check", TRIAL, "big.json", "--as-of", "2026-11-25", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == ("big.json: $: file is 100 MiB, larger than the limit of 64 MiB for one "
                                   "patient document; it was not read")


def test_one_byte_over_the_limit_is_refused_by_load_patient(tmp_path):
    path = sparse(tmp_path / "big.json", MAX_DOCUMENT_BYTES + 1)
    assert MAX_DOCUMENT_BYTES == 64 * MIB
    assert problems(lambda: load_patient(path)) == [
        ("$", "file is 64 MiB, larger than the limit of 64 MiB for one patient document; it was not read")]


def test_text_over_the_limit_is_refused_by_parse_json(monkeypatch):
    monkeypatch.setattr(load, "MAX_DOCUMENT_BYTES", 100)
    assert problems(lambda: parse_json('{"id": "%s"}' % ("x" * 100), "p")) == [
        ("$", "text is 110 characters, more than the limit of 100 bytes for one patient document; it was not read")]


# ---------------------------------------------------------------- batch
def run_batch(tmp_path: Path, patients: Path) -> tuple[int, str, list[dict], list[dict]]:
    rules = tmp_path / "t.crit"
    rules.write_text('trial "T-1"\ninclusion AGE "Adults" = age >= 18 years\n')
    out, err = io.StringIO(), io.StringIO()
    code = batch.run_batch_command([rules], patients, tmp_path / "out", AS_OF, workers=1,
                                   out=Console(file=out, width=200), err=Console(file=err, width=200))
    read = lambda name: [json.loads(line) for line in (tmp_path / "out" / name).read_text().splitlines()]  # noqa: E731
    return code, err.getvalue(), read("results.jsonl"), read("errors.jsonl")


def test_batch_reports_and_skips_a_deep_line_and_a_100_mb_line(tmp_path):
    source = tmp_path / "p.ndjson"
    with source.open("wb") as stream:
        stream.write(b'{"id": "a", "birth_date": "1980-01-01"}\n')
        stream.write(nested(1000).encode() + b"\n")
        stream.write(b'{"id": "b", "note": "')
        stream.truncate(100 * MIB)  # line 3: 100 MiB of zero bytes after its start, no newline
        stream.seek(0, 2)
        stream.write(b'\n{"id": "c", "birth_date": "1990-01-01"}\n')
    code, err, results, errors = run_batch(tmp_path, source)
    assert code == 1
    assert [r["patient"] for r in results] == ["a", "c"]
    line3 = 100 * MIB - len(b'{"id": "a", "birth_date": "1980-01-01"}\n') - len(nested(1000)) - 1 + 1
    assert [(e["line"], e["error"]) for e in errors] == [
        (2, f"column {nested(1000).index('[[') + 1 + 61}: {DEEP}"),
        (3, f"$: line is {line3 / MIB:,.0f} MiB, larger than the limit of 64 MiB for one patient document; "
            "it was not read"),
    ]
    assert errors[1]["problems"][0]["code"] == "too-large"
    assert err.splitlines()[1].startswith(f"{source}:3: $: line is 100 MiB, larger than the limit of 64 MiB")
    progress = json.loads((tmp_path / "out" / "progress.json").read_text())
    assert (progress["position"], progress["tally"]["bad"]) == ({"offset": source.stat().st_size, "line": 4}, 2)


def test_batch_reports_and_skips_a_100_mb_file_of_a_folder(tmp_path):
    folder = tmp_path / "pts"
    folder.mkdir()
    (folder / "a.json").write_text('{"id": "a", "birth_date": "1980-01-01"}')
    sparse(folder / "b.json", 100 * MIB, b'{"id": "b"')
    (folder / "c.json").write_text('{"id": "c",\n"x": ' + "[" * 70 + "]" * 70 + "}")
    code, err, results, errors = run_batch(tmp_path, folder)
    assert code == 1 and [r["patient"] for r in results] == ["a"]
    assert [(e["input"], e["line"], e["error"]) for e in errors] == [
        (str(folder / "b.json"), None,
         "$: file is 100 MiB, larger than the limit of 64 MiB for one patient document; it was not read"),
        (str(folder / "c.json"), 2, f"line 2 column {6 + 63}: {DEEP}"),  # "x": then the 64th bracket
    ]
