"""`screening terminology load | info | lookup | expand` as a user runs them: summaries, exit codes,
FILE:LINE errors that leave the store as it was, idempotent reloads, version replacement, and
where the store lives (--store, $SCREENING_TERMINOLOGY, the per-user default)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from screening.cli import app
from screening.terminology import TerminologyStore, default_store_path, load_paths, resolve_store_path

from terminology_helpers import ALL, FHIR, RF2, RF2_FILES, RXNORM

runner = CliRunner()


def cli(*args, env=None):
    return runner.invoke(app, ["terminology", *map(str, args)], env=env)


@pytest.fixture
def loaded(tmp_path):
    path = tmp_path / "store.sqlite"
    load_paths(path, ALL)
    return path


def snapshot(path: Path):
    """Everything a user can observe of a store."""
    with TerminologyStore.open(path) as opened:
        return ([(s.name, s.version, s.concepts, s.relationships) for s in opened.sources()], opened.counts(),
                opened.closure_rows(), sorted(opened.expand("<<SNOMED:138875005")))


def copy_rf2(tmp_path: Path, date: str = "20240101") -> Path:
    folder = tmp_path / f"SnomedCT_Copy_INT_{date}" / "Snapshot" / "Terminology"
    folder.mkdir(parents=True)
    for f in RF2_FILES.iterdir():
        shutil.copy(f, folder / f.name.replace("20240101", date))
    return folder.parents[1]


def rewrite(path: Path, line: int, new: str) -> None:
    lines = read_lines(path)
    lines[line - 1] = new
    path.write_bytes("\r\n".join(lines).encode())


def read_lines(path: Path) -> list[str]:
    return path.read_bytes().decode().split("\r\n")  # RF2 lines end with CR LF


# ---- load summary ----------------------------------------------------------------------------

def test_load_prints_a_summary(tmp_path):
    store = tmp_path / "s.sqlite"
    result = cli("load", RF2, RXNORM, FHIR / "bundle-terminology.json", "--store", store)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"store: {store}" in out
    assert "loaded SNOMED CT INT (version 20240101, effective 2024-01-01)" in out
    assert "25 concepts, 24 relationships" in out
    assert "loaded RxNorm (version RXNORM_24AA_240102F, effective 2024-01-02)" in out
    assert "closure SNOMED: 99 rows" in out and "closure RXNORM:" in out
    assert "skipped 1 Patient" in out
    assert "store now:" in out and "closure rows" in out


def test_reload_is_idempotent(loaded):
    before = snapshot(loaded)
    result = cli("load", *ALL, "--store", loaded)
    assert result.exit_code == 0, result.output
    assert "loaded SNOMED CT INT (version 20240101, effective 2024-01-01, reloaded)" in result.output
    assert snapshot(loaded) == before


def test_a_newer_release_replaces_the_older_one(loaded, tmp_path):
    newer = copy_rf2(tmp_path, "20240701")
    files = newer / "Snapshot" / "Terminology"
    concept = files / "sct2_Concept_Snapshot_INT_20240701.txt"
    # 93761005 (primary malignant neoplasm of colon) is retired; its is-a row goes inactive
    text = concept.read_text().replace("93761005\t20020131\t1", "93761005\t20240701\t0")
    concept.write_text(text)
    rel = files / "sct2_Relationship_Snapshot_INT_20240701.txt"
    rel.write_bytes("\r\n".join(
        line.replace("20020131\t1", "20240701\t0") if "\t93761005\t363406005\t" in line else line
        for line in read_lines(rel)).encode())
    result = cli("load", newer, "--store", loaded)
    assert result.exit_code == 0, result.output
    assert "loaded SNOMED CT INT (version 20240701, effective 2024-07-01, replaced version 20240101)" in result.output
    with TerminologyStore.open(loaded) as store:
        snomed = [s for s in store.sources() if s.name.startswith("SNOMED")]
        assert [(s.version, s.effective) for s in snomed] == [("20240701", "2024-07-01")]
        assert store.lookup("SNOMED", "93761005").active is False
        assert not store.is_descendant("SNOMED", "93761005", "363346000")
        assert store.is_descendant("SNOMED", "109838007", "363346000")
        # the other sources are untouched
        assert store.expand("RXNORM:3002") and store.is_descendant("LOCAL", "malar_rash", "lupus_skin_finding")


# ---- malformed input: FILE:LINE, exit 2, store unchanged --------------------------------------

RF2_BREAKAGES = [
    ("sct2_Concept_Snapshot_INT_20240101.txt", 3, "64572001\t20020131\t1\t900000000000207008",
     "3: 4 columns, expected 5"),
    ("sct2_Concept_Snapshot_INT_20240101.txt", 4, "55342002\t20020131\t1\t900000000000207008\t900000000000074008",
     "4: id: 55342002 is not an SCTID: its check digit is wrong"),
    ("sct2_Concept_Snapshot_INT_20240101.txt", 5, "126926005\t20021331\t1\t900000000000207008\t900000000000074008",
     "5: effectiveTime '20021331' is not a date (YYYYMMDD)"),
    ("sct2_Concept_Snapshot_INT_20240101.txt", 5, "126926005\t20020131\tyes\t900000000000207008\t900000000000074008",
     "5: active is 'yes', expected 0 or 1"),
    ("sct2_Relationship_Snapshot_INT_20240101.txt", 2,
     "7001020\t20020131\t1\t900000000000207008\t404684003\t138875004\t0\t116680003\t900000000000011006\t900000000000451002",
     "2: destinationId: 138875004 is not an SCTID: its check digit is wrong"),
    ("sct2_Description_Snapshot-en_INT_20240101.txt", 1, "id\teffectiveTime\tactive",
     "1: header is"),
]


@pytest.mark.parametrize("name, line, text, message", RF2_BREAKAGES)
def test_a_malformed_rf2_row_names_file_and_line_and_changes_nothing(loaded, tmp_path, name, line, text, message):
    before = snapshot(loaded)
    bytes_before = loaded.read_bytes()
    broken = copy_rf2(tmp_path, "20240701")
    path = broken / "Snapshot" / "Terminology" / name.replace("20240101", "20240701")
    rewrite(path, line, text)
    result = cli("load", broken, "--store", loaded)
    assert result.exit_code == 2
    assert f"{path}:{message}" in result.output
    assert "Traceback" not in result.output
    assert snapshot(loaded) == before
    assert loaded.read_bytes() == bytes_before


def test_a_failed_first_load_leaves_no_store(tmp_path):
    broken = copy_rf2(tmp_path)
    rewrite(broken / "Snapshot" / "Terminology" / "sct2_Concept_Snapshot_INT_20240101.txt", 2, "x\ty")
    store = tmp_path / "new.sqlite"
    result = cli("load", RXNORM, broken, "--store", store)
    assert result.exit_code == 2 and ":2: 2 columns, expected 5" in result.output
    assert not store.exists() and not list(tmp_path.glob("new.sqlite*"))


def test_a_bad_file_among_good_ones_loads_none_of_them(loaded, tmp_path):
    before = snapshot(loaded)
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "ValueSet",\n "url": "http://x/vs",\n "compose": {"include": [\n'
                   '   {"system": "http://snomed.info/sct", "filter": [{"property": "concept", "op": "regex", "value": "x"}]}]}}')
    result = cli("load", copy_rf2(tmp_path, "20240701"), bad, "--store", loaded)
    assert result.exit_code == 2
    assert f"{bad}: $.compose.include[0].filter[0]: filter 'concept' 'regex' is not supported" in result.output
    assert snapshot(loaded) == before


@pytest.mark.parametrize("file, line, text, message", [
    ("RXNCONSO.RRF", 3, "202589|ENG|||||Y|103|||202589|RXNORM|BN|202589|Cytoxan|0|N|",
     "3: 17 fields, expected 18 separated and ended by '|'"),
    ("RXNCONSO.RRF", 1, "30O2|ENG|||||Y|101|||3002|RXNORM|IN|3002|cyclophosphamide|0|N|4096|",
     "1: RXCUI '30O2' is not an RXCUI (digits)"),
    ("RXNREL.RRF", 4, "1545988||CUI|RO|3002||CUI|has_form|||RXNORM|RXNORM|||N|",
     "4: 15 fields, expected 16"),
])
def test_a_malformed_rrf_row_names_file_and_line(loaded, tmp_path, file, line, text, message):
    before = snapshot(loaded)
    folder = tmp_path / "RxNorm_full_07012024"
    shutil.copytree(RXNORM, folder)
    path = folder / "rrf" / file
    lines = path.read_text().split("\n")
    lines[line - 1] = text
    path.write_text("\n".join(lines))
    result = cli("load", folder, "--store", loaded)
    assert result.exit_code == 2
    assert f"{path}:{message}" in result.output
    assert snapshot(loaded) == before


@pytest.mark.parametrize("text, message", [
    ('{"resourceType": "ValueSet",\n  "url": }', ":2: not JSON: Expecting value"),
    ('{"resourceType": "CodeSystem", "concept": []}', ": $.url: missing"),
    ('{"resourceType": "Patient"}', ": $.resourceType: resourceType 'Patient': expected CodeSystem, ValueSet"),
    ('{"resourceType": "CodeSystem", "url": "urn:x", "concept": [{"display": "no code"}]}', ": $.concept[0].code: missing"),
    ('{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "ValueSet", "url": "urn:vs"}}]}',
     ": $.entry[0].resource: a ValueSet needs expansion.contains or compose"),
])
def test_malformed_fhir_names_the_json_position(loaded, tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    result = cli("load", path, "--store", loaded)
    assert result.exit_code == 2
    assert f"{path}{message}" in result.output


def test_full_and_delta_releases_are_refused(tmp_path):
    folder = tmp_path / "Full" / "Terminology"
    folder.mkdir(parents=True)
    shutil.copy(RF2_FILES / "sct2_Concept_Snapshot_INT_20240101.txt", folder / "sct2_Concept_Full_INT_20240101.txt")
    result = cli("load", tmp_path / "Full", "--store", tmp_path / "s.sqlite")
    assert result.exit_code == 2 and "only Full/Delta files" in result.output and "Snapshot" in result.output


def test_a_path_that_is_no_release(tmp_path):
    result = cli("load", tmp_path, "--store", tmp_path / "s.sqlite")
    assert result.exit_code == 2 and "not a SNOMED CT RF2 release" in result.output
    result = cli("load", tmp_path / "missing", "--store", tmp_path / "s.sqlite")
    assert result.exit_code == 2 and "no such file or folder" in result.output


# ---- info, lookup, expand --------------------------------------------------------------------

def test_info(loaded):
    result = cli("info", "--store", loaded)
    assert result.exit_code == 0, result.output
    assert "SNOMED CT INT: version 20240101; effective 2024-01-01; 25 concepts, 24 relationships" in result.output
    assert "RxNorm: version RXNORM_24AA_240102F; effective 2024-01-02" in result.output
    assert "http://example.org/fhir/ValueSet/malignancy-except-bcc|1.0.0" in result.output
    data = json.loads(cli("info", "--store", loaded, "--json").output)
    assert {s["name"] for s in data["sources"]} >= {"SNOMED CT INT", "RxNorm"}
    assert data["closure_rows"]["SNOMED"] == 99 and data["systems"]["SNOMED"] == 25


def test_lookup(loaded):
    result = cli("lookup", "SNOMED:254837009", "--store", loaded)
    assert result.exit_code == 0, result.output
    assert "SNOMED:254837009  Malignant neoplasm of breast (disorder)" in result.output
    assert "active:    yes" in result.output and "ancestors: 6" in result.output
    assert "SNOMED:363346000  Malignant neoplastic disease (disorder)" in result.output
    bare = cli("lookup", "3002", "--store", loaded)
    assert "RXNORM:3002  cyclophosphamide" in bare.output and "term type: IN" in bare.output
    retired = cli("lookup", "SNOMED:9999990006", "--store", loaded)
    assert "active:    no (inactive)" in retired.output
    data = json.loads(cli("lookup", "ATC:L01AA01", "--store", loaded, "--json").output)
    assert [a["code"] for a in data["ancestors"]] == ["ATC:L01A", "ATC:L01", "ATC:L", "ATC:L01AA"] or \
        {a["code"] for a in data["ancestors"]} == {"ATC:L01A", "ATC:L01", "ATC:L", "ATC:L01AA"}
    missing = cli("lookup", "SNOMED:22298007", "--store", loaded)
    assert missing.exit_code == 1 and "not in the terminology store" in missing.output


def test_expand(loaded):
    result = cli("expand", "<<SNOMED:363346000", "--store", loaded)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("<<SNOMED:363346000: 7 codes")
    assert "SNOMED:254701007  Basal cell carcinoma of skin (disorder)" in result.output
    rx = cli("expand", "RXNORM:3002", "--store", loaded, "--limit", "2")
    assert "RXNORM:3002: 16 codes" in rx.output and "... 14 more" in rx.output
    data = json.loads(cli("expand", "ATC:L01AA", "--store", loaded, "--json").output)
    assert data["count"] == 18
    assert {"code": "RXNORM:210639", "display": "cyclophosphamide 50 MG Oral Tablet [Cytoxan]",
            "term_type": "SBD"} in data["codes"]
    unknown = cli("expand", "<<SNOMED:22298007", "--store", loaded)
    assert unknown.exit_code == 1 and "SNOMED:22298007 is not in the terminology store" in unknown.output
    bad = cli("expand", "<<VALUESET:http://x", "--store", loaded)
    assert bad.exit_code == 2 and "does not apply to a value set" in bad.output


def test_a_missing_store_says_how_to_build_one(tmp_path):
    result = cli("info", "--store", tmp_path / "none.sqlite")
    assert result.exit_code == 2
    assert "no terminology store at" in result.output and "screening terminology load" in result.output
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database" * 100)
    result = cli("info", "--store", junk)
    assert result.exit_code == 2 and "not a terminology store" in result.output


# ---- where the store lives -------------------------------------------------------------------

def test_store_path_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("SCREENING_TERMINOLOGY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    default = default_store_path()
    assert default.name == "terminology.sqlite" and "screening" in default.parts
    if sys.platform.startswith("linux"):
        assert default == tmp_path / "xdg" / "screening" / "terminology.sqlite"
    monkeypatch.setenv("SCREENING_TERMINOLOGY", str(tmp_path / "env.sqlite"))
    assert default_store_path() == tmp_path / "env.sqlite"
    assert resolve_store_path(None) == tmp_path / "env.sqlite"
    assert resolve_store_path(tmp_path / "opt.sqlite") == tmp_path / "opt.sqlite"


def test_the_environment_variable_and_the_option(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    env_store = tmp_path / "env.sqlite"
    result = cli("load", RF2, env={"SCREENING_TERMINOLOGY": str(env_store)})
    assert result.exit_code == 0, result.output and env_store.exists()
    assert cli("lookup", "SNOMED:84757009", env={"SCREENING_TERMINOLOGY": str(env_store)}).exit_code == 0
    option_store = tmp_path / "opt.sqlite"
    cli("load", RXNORM, "--store", option_store, env={"SCREENING_TERMINOLOGY": str(env_store)})
    assert option_store.exists()
    with TerminologyStore.open(env_store) as store:
        assert [s.name for s in store.sources()] == ["SNOMED CT INT"]
    # the per-user default, under the (redirected) data folder
    monkeypatch.delenv("SCREENING_TERMINOLOGY", raising=False)
    assert cli("load", FHIR / "codesystem-local-findings.json").exit_code == 0
    assert default_store_path().exists() and tmp_path in default_store_path().parents


def test_installed_command_runs_outside_the_repository(tmp_path):
    script = str(Path(sys.executable).with_name("screening"))
    proc = subprocess.run([script, "terminology", "load", str(RF2), "--store", str(tmp_path / "s.sqlite")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([script, "terminology", "expand", "<SNOMED:363406005", "--store", str(tmp_path / "s.sqlite")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("<SNOMED:363406005: 2 codes")


# ---------------------------------------------------------------- a folder of several releases
TRIALS = Path(__file__).resolve().parents[1] / "trials"


def test_a_folder_holding_several_releases_loads_each_of_them(tmp_path):
    """trials/terminology holds an RxNorm release folder beside a FHIR CodeSystem: both are loaded
    (before, the RxNorm folder found deeper down hid the FHIR file)."""
    store_path = tmp_path / "t.sqlite"
    load_paths(store_path, [TRIALS / "terminology"])
    store = TerminologyStore.open(store_path)
    try:
        assert sorted(s.name for s in store.sources()) == ["CodeSystem http://snomed.info/sct", "RxNorm"]
    finally:
        store.close()


def test_check_takes_release_files_as_its_terminology():
    """--terminology with a folder of release files builds a store for the run: the bundled samples
    get the decisions patient_samples/README.md documents (3 eligible, 10 ineligible, 5 undetermined)."""
    samples = sorted((TRIALS.parent / "patient_samples").glob("*.json"))
    result = runner.invoke(app, ["check", str(TRIALS / "NCT00659217.crit"), *map(str, samples), "--as-of",
                                 "2026-11-25", "--terminology", str(TRIALS / "terminology"), "--format", "json"])
    assert result.exit_code == 0, result.output
    decisions = [r["decision"] for r in json.loads(result.stdout)]
    assert (decisions.count("eligible"), decisions.count("ineligible"), decisions.count("undetermined")) == (3, 10, 5)
    without = runner.invoke(app, ["check", str(TRIALS / "NCT00659217.crit"), *map(str, samples), "--as-of",
                                  "2026-11-25", "--terminology", "none", "--format", "json"])
    decisions = [r["decision"] for r in json.loads(without.stdout)]
    assert "eligible" not in decisions  # SNOMED- and RxNorm-coded records could matter: never a pass without them


def test_batch_screens_with_the_terminology_and_records_it(tmp_path):
    """batch --terminology: the same decisions as check, the sources in every result line, and a
    resume with another terminology refused."""
    samples = sorted((TRIALS.parent / "patient_samples").glob("*.json"))
    folder = tmp_path / "patients"
    folder.mkdir()
    for sample in samples:
        shutil.copy(sample, folder / sample.name)
    out = tmp_path / "out"
    args = ["batch", str(TRIALS / "NCT00659217.crit"), "--patients", str(folder), "--out", str(out),
            "--as-of", "2026-11-25", "--workers", "1"]
    result = runner.invoke(app, [*args, "--terminology", str(TRIALS / "terminology")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["decision"] for r in lines].count("eligible") == 3
    assert all(r["terminology"] and r["terminology"][-1]["source"] == "RxNorm" for r in lines)
    again = runner.invoke(app, [*args, "--terminology", "none"])
    assert again.exit_code == 2 and "terminology" in again.output
