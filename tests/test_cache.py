"""The per-user cache (screening.cache, screening.ircache, the unit table, the Lark tables):
a cached run gives exactly the output of an uncached one, every input it was computed from
invalidates it, and a cache file that is corrupted, hostile or in a folder others can write is
ignored without a traceback (docs/caching.md)."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from helpers import ROOT
from terminology_helpers import fixture_store

from screening import cache, compile_trial, load_patient
from screening.ircache import decode_checked, encode_checked, release_identity

SCREENING = str(Path(sys.executable).with_name("screening"))
TRIAL = ROOT / "trials" / "NCT00659217.crit"
SAMPLES = sorted((ROOT / "patient_samples").glob("p*.json"))
AS_OF = date(2026, 11, 25)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(folder))
    monkeypatch.delenv("SCREENING_CACHE", raising=False)
    return folder


@pytest.fixture
def checks(monkeypatch):
    """Counts how often the checker runs (a cache hit does not run it)."""
    import screening.check

    calls = []
    real = screening.check.check

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(screening.check, "check", counting)
    return calls


def run(*args, cache_dir, extra_env=None):
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "SCREENING_CACHE_DIR": str(cache_dir), **(extra_env or {})}
    env.pop("SCREENING_CACHE", None) if not extra_env or "SCREENING_CACHE" not in extra_env else None
    return subprocess.run([SCREENING, *map(str, args)], capture_output=True, cwd=ROOT, timeout=300, env=env)


def entries(folder: Path, kind: str) -> list[Path]:
    return sorted(folder.glob(f"{kind}-*.json"))


# ------------------------------------------------------------------ same output, cached or not
@pytest.mark.parametrize("terminology", ["none", "trials/terminology"])
def test_a_cached_run_prints_byte_for_byte_what_an_uncached_run_prints(tmp_path, terminology):
    folder = tmp_path / "cache"
    args = ["check", TRIAL, *SAMPLES, "--as-of", "2026-11-25", "--terminology", terminology, "--format", "json"]
    cold = run(*args, cache_dir=folder)
    assert cold.returncode == 0, cold.stderr
    assert len(entries(folder, "ruleset")) == 1 and len(entries(folder, "units")) == 1
    warm = run(*args, cache_dir=folder)
    uncached = run("--no-cache", *args, cache_dir=tmp_path / "unused")
    assert not (tmp_path / "unused").exists()  # --no-cache writes nothing
    assert warm.returncode == 0 and uncached.returncode == 0
    assert warm.stdout == uncached.stdout == cold.stdout
    assert warm.stderr == uncached.stderr
    results = json.loads(warm.stdout)
    assert len(results) == len(SAMPLES) == 18
    # the samples' decisions as the case file records them (p01 eligible needs the terminology fixture)
    p01 = results[0]
    assert p01["decision"] == ("eligible" if terminology != "none" else "undetermined")


def test_a_warm_check_builds_neither_the_unit_registry_nor_the_parser(tmp_path):
    """The point of the cache: the pint registry with UCUM and the Lark grammar analysis are not
    built (their modules are not even imported) once the rule set and the units are in the cache."""
    folder = tmp_path / "cache"
    probe = ("import sys\nfrom screening.cli import main\nsys.argv = ['screening', 'check', 'trials/NCT00659217.crit', "
             "'patient_samples/p02_eligible_us_units_remote_mi.json', '--as-of', '2026-11-25', '--terminology', "
             "'none']\ntry:\n    main()\nexcept SystemExit:\n    pass\nprint('LOADED', sorted(m for m in "
             "('pint', 'ucumvert', 'lark', 'screening.check', 'screening.parser') if m in sys.modules))\n")
    env = {**os.environ, "SCREENING_CACHE_DIR": str(folder)}
    env.pop("SCREENING_CACHE", None)
    first = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert "LOADED ['lark', 'pint', 'screening.check', 'screening.parser', 'ucumvert']" in first.stdout, first.stderr
    second = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert "LOADED []" in second.stdout, second.stderr
    assert second.stdout.split("LOADED")[0] == first.stdout.split("LOADED")[0]  # the same report


def test_cache_off_by_environment_writes_nothing(tmp_path):
    folder = tmp_path / "cache"
    proc = run("check", TRIAL, SAMPLES[0], "--as-of", "2026-11-25", cache_dir=folder,
               extra_env={"SCREENING_CACHE": "off"})
    assert proc.returncode == 0, proc.stderr
    assert not folder.exists()


# ------------------------------------------------------------------ in process: hits and invalidation
def test_the_second_compile_of_an_unchanged_file_is_a_hit_with_the_same_generated_code(cache_dir, checks):
    first = compile_trial(TRIAL)
    second = compile_trial(TRIAL)
    assert len(checks) == 1
    uncached = compile_trial(TRIAL, use_cache=False)
    assert len(checks) == 2
    assert second.generated_source == uncached.generated_source == first.generated_source
    for path in SAMPLES:
        patient = load_patient(path)
        assert second.screen(patient, AS_OF).to_dict() == uncached.screen(patient, AS_OF).to_dict()


def test_editing_the_rule_file_gives_the_new_result(cache_dir, tmp_path, checks):
    rule = tmp_path / "trial.crit"
    rule.write_text(TRIAL.read_text(encoding="utf-8"), encoding="utf-8")
    patient = load_patient(ROOT / "patient_samples" / "p04_ineligible_alt_95_over_2x_uln.json")
    before = compile_trial(rule).screen(patient, AS_OF)
    assert before.decision == "ineligible"
    text = rule.read_text(encoding="utf-8")
    assert "ALT > 2 x ULN within" in text
    rule.write_text(text.replace("ALT > 2 x ULN within", "ALT > 3 x ULN within"), encoding="utf-8")
    after = compile_trial(rule).screen(patient, AS_OF)
    assert len(checks) == 2
    alt = {c.id: c.verdict for c in before.criteria}, {c.id: c.verdict for c in after.criteria}
    assert alt[0] != alt[1]  # the ALT criterion no longer excludes at 95 U/L (ULN 40: 2.4 x ULN)
    assert compile_trial(rule, use_cache=False).screen(patient, AS_OF).to_dict() == after.to_dict()


def test_a_different_terminology_store_gives_its_own_result(cache_dir, checks):
    patient = load_patient(SAMPLES[0])
    without = compile_trial(TRIAL).screen(patient, AS_OF)
    store = fixture_store()
    with_store = compile_trial(TRIAL, store).screen(patient, AS_OF)
    again = compile_trial(TRIAL, store).screen(patient, AS_OF)
    assert len(checks) == 2  # one compile per store; the third is a hit
    assert without.decision == "undetermined" and with_store.decision == "eligible"
    assert again.to_dict() == with_store.to_dict()
    assert with_store.terminology and without.terminology is None


def test_release_files_changed_on_disk_change_the_identity(tmp_path):
    release = tmp_path / "release"
    shutil.copytree(ROOT / "trials" / "terminology", release)
    before = release_identity([release])
    assert release_identity([release]) == before  # the same files: the same identity, whatever store holds them
    fixture = release / "snomed-fixture.json"
    fixture.write_text(fixture.read_text(encoding="utf-8").replace('"display"', '"display" ', 1), encoding="utf-8")
    assert release_identity([release]) != before


def test_an_edited_value_set_file_is_read_again(cache_dir, tmp_path, checks):
    def valueset(code):
        return json.dumps({"resourceType": "ValueSet", "url": "http://example.org/vs", "compose": {"include": [
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "concept": [{"code": code}]}]}})

    (tmp_path / "vs.json").write_text(valueset("C50.911"), encoding="utf-8")
    rule = tmp_path / "r.crit"
    rule.write_text('trial "T"\nvalueset target = file "vs.json"\nexclusion E "x" = condition target\n', encoding="utf-8")
    from screening import patient_from_document

    patient = patient_from_document({"id": "p", "birth_date": "1980-01-01", "sex": "female", "conditions": [
        {"code": "ICD10:C50.911", "onset": "2020-01-01", "status": "active"}]}, "p")
    assert compile_trial(rule).screen(patient, AS_OF).criteria[0].verdict == "fail"
    assert compile_trial(rule).screen(patient, AS_OF).criteria[0].verdict == "fail"
    assert len(checks) == 1
    (tmp_path / "vs.json").write_text(valueset("C61"), encoding="utf-8")
    assert compile_trial(rule).screen(patient, AS_OF).criteria[0].verdict == "pass"
    assert len(checks) == 2


def test_lint_warnings_survive_the_cache(cache_dir):
    uncached = compile_trial(ROOT / "benchmarks" / "bench_rules.crit", use_cache=False)
    compile_trial(ROOT / "benchmarks" / "bench_rules.crit")
    cached = compile_trial(ROOT / "benchmarks" / "bench_rules.crit")
    assert [w.render() for w in cached.warnings] == [w.render() for w in uncached.warnings]
    assert cached.generated_source == uncached.generated_source


# ------------------------------------------------------------------ corrupted, hostile, untrusted
def test_a_corrupted_cache_is_ignored_without_a_traceback_and_rewritten(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(folder))  # for cache.read below
    args = ["check", TRIAL, SAMPLES[3], "--as-of", "2026-11-25", "--format", "json"]
    cold = run(*args, cache_dir=folder)
    assert cold.returncode == 0, cold.stderr
    files = entries(folder, "ruleset") + entries(folder, "units") + entries(folder, "parser")
    assert len(files) == 3
    originals = {f: f.read_bytes() for f in files}
    for f in files:  # flip a byte in the middle and truncate: the checksum no longer matches
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0xFF
        f.write_bytes(bytes(data[: len(data) - 7]))
    again = run(*args, cache_dir=folder)
    assert again.returncode == 0 and "Traceback" not in again.stderr.decode()
    assert again.stdout == cold.stdout
    for f in entries(folder, "ruleset") + entries(folder, "units"):
        assert f.read_bytes() == originals[f]  # recomputed and stored again, identical
        kind, key = f.stem.split("-", 1)
        assert cache.read(kind, key) is not None
    for f in files:
        f.write_bytes(b"")  # empty files too
    assert run(*args, cache_dir=folder).stdout == cold.stdout


def test_an_entry_naming_code_is_refused_and_the_rule_set_compiled(cache_dir, checks):
    """A well-formed entry (right checksum) whose data names a function is not an IR class: ignored."""
    compile_trial(TRIAL)
    path, = entries(cache_dir, "ruleset")
    kind, key = path.stem.split("-", 1)
    stored = cache.read(kind, key)
    for hostile in ({"\x00o": ["os:system", {}]}, {"\x00o": ["screening.ir:__class__", {}]},
                    {"\x00o": ["builtins:eval", {"source": "1"}]}, {"\x00re2": ["not text"]}, {"\x00r": 10**9}):
        assert cache.write(kind, key, {"files": stored["files"], "ir": hostile})
        trial = compile_trial(TRIAL)
        assert trial.id == "NCT00659217"
    assert len(checks) == 1 + 5
    with pytest.raises(ValueError):
        decode_checked({"\x00o": ["subprocess:Popen", {"args": "true"}]})


def test_a_cache_folder_others_can_write_is_not_trusted(cache_dir, checks):
    compile_trial(TRIAL)
    compile_trial(TRIAL)
    assert len(checks) == 1
    cache_dir.chmod(0o777)  # anyone may now replace the files: nothing in it is read
    try:
        compile_trial(TRIAL)
        assert len(checks) == 2
        assert cache.read("units", "x") is None
        assert cache.write("units", "x", {}) is False  # nor written
    finally:
        cache_dir.chmod(0o700)
    compile_trial(TRIAL)
    assert len(checks) == 2


def test_a_cache_file_others_can_write_or_another_user_owns_is_not_read(cache_dir, checks):
    compile_trial(TRIAL)
    path, = entries(cache_dir, "ruleset")
    path.chmod(0o666)
    compile_trial(TRIAL)
    assert len(checks) == 2  # not read; the compile stored a fresh entry (mode 0600)
    assert path.stat().st_mode & 0o777 == 0o600
    if hasattr(os, "getuid") and os.getuid() == 0:
        os.chown(path, 4242, 4242)
        compile_trial(TRIAL)
        assert len(checks) == 3
    link = cache_dir / "units-link.json"
    link.symlink_to(path)
    assert cache.read("units", "link") is None  # a symbolic link is not followed


def test_a_cache_folder_created_by_screening_is_private(cache_dir):
    compile_trial(TRIAL)
    assert cache_dir.stat().st_mode & 0o777 == 0o700
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in cache_dir.iterdir())


# ------------------------------------------------------------------ the pieces
@pytest.mark.parametrize("rule_file", [TRIAL, ROOT / "benchmarks" / "bench_rules.crit",
                                       ROOT / "tests" / "data" / "synthea_labs.crit"])
def test_every_bundled_rule_set_round_trips_through_its_data_form(rule_file):
    from screening.compile import Trial

    store = fixture_store()
    trial = compile_trial(rule_file, store, use_cache=False)
    data = encode_checked(trial.checked, store)
    again = decode_checked(json.loads(json.dumps(data)), store)
    assert Trial(again).generated_source == trial.generated_source
    assert encode_checked(again, store) == data
    for path in SAMPLES:
        patient = load_patient(path)
        assert Trial(again).screen(patient, AS_OF).to_dict() == trial.screen(patient, AS_OF).to_dict()


def test_what_has_no_data_form_is_not_cached_and_the_rule_set_still_compiles(cache_dir, checks, monkeypatch):
    from screening import ircache

    with pytest.raises(ircache.Uncacheable):
        encode_checked({"x": object()})
    with pytest.raises(ircache.Uncacheable):
        encode_checked(["a Token is not a str", type("Token", (str,), {})("x")])
    assert ircache._Decoder(None).value(ircache._Encoder(None).value((date(2026, 2, 28),))) == (date(2026, 2, 28),)

    def refuse(checked, store=None):
        raise ircache.Uncacheable("a construct without a data form")

    monkeypatch.setattr(ircache, "encode_checked", refuse)
    first, second = compile_trial(TRIAL), compile_trial(TRIAL)
    assert len(checks) == 2 and not entries(cache_dir, "ruleset")
    assert first.generated_source == second.generated_source


def test_the_cached_lark_tables_parse_exactly_as_a_fresh_analysis(cache_dir):
    from screening import parser

    grammar = parser.grammar_text()
    fresh = parser._cached_lark(grammar)  # a miss: analysed, stored
    assert len(entries(cache_dir, "parser")) == 1
    loaded = parser._cached_lark(grammar)
    assert loaded is not fresh
    for path in [TRIAL, ROOT / "benchmarks" / "bench_rules.crit", ROOT / "tests" / "data" / "synthea_labs.crit"]:
        text = path.read_text(encoding="utf-8")
        assert loaded.parse(text, start="start") == fresh.parse(text, start="start")
    edited = grammar.replace("%ignore", "UNUSED_TERMINAL: \"zzz_never\"\n%ignore", 1)  # another grammar: its own entry
    assert edited != grammar
    parser._cached_lark(edited)
    assert len(entries(cache_dir, "parser")) == 2


def test_cache_encoding_is_exact_for_tuples_sets_and_dicts_with_other_keys():
    value = {"a": (1, 2.5, None), "b": frozenset({"x", "y"}), "c": {3: [True, (4,)]}, "\x00tuple": 1, "d": -0.0}
    assert cache.decode(json.loads(json.dumps(cache.encode(value)))) == value
    with pytest.raises(TypeError):
        cache.encode({"f": open})


def test_unit_table_entries_of_the_wrong_shape_are_read_again(cache_dir):
    code = ("import sys\nfrom screening.units import parse_unit\nu = parse_unit('mg/dL')\n"
            "print(u.dimension, u.scale, 'pint' in sys.modules)\n")
    env = {**os.environ, "SCREENING_CACHE_DIR": str(cache_dir)}
    env.pop("SCREENING_CACHE", None)

    def probe():
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert probe() == ["[length]^-3.[mass]", "0.01", "True"]  # built the registry, stored the spelling
    assert probe() == ["[length]^-3.[mass]", "0.01", "False"]  # from the table
    (table,) = entries(cache_dir, "units")
    kind, key = table.stem.split("-", 1)
    assert cache.write(kind, key, {"mg/dL": ["unit", "mg/dL", "[length]^-3.[mass]", "0.01", 0.0]})  # scale not a float
    assert probe() == ["[length]^-3.[mass]", "0.01", "True"]


def test_cache_info_and_clear(tmp_path):
    folder = tmp_path / "cache"
    assert run("check", TRIAL, SAMPLES[0], "--as-of", "2026-11-25", cache_dir=folder).returncode == 0
    info = run("cache", "info", cache_dir=folder)
    text = info.stdout.decode()
    assert info.returncode == 0 and f"folder: {folder}" in text and "state: on" in text
    assert "ruleset: 1 entry" in text and "parser: 1 entry" in text and "units: 1 entry" in text
    cleared = run("cache", "clear", cache_dir=folder)
    assert cleared.returncode == 0 and f"removed 3 entries from {folder}" in cleared.stdout.decode()
    assert not list(folder.iterdir())
    folder.chmod(0o777)
    try:
        assert "state: NOT USED" in run("cache", "info", cache_dir=folder).stdout.decode()
    finally:
        folder.chmod(0o700)
    assert "state: off" in run("--no-cache", "cache", "info", cache_dir=folder).stdout.decode()


def test_a_store_built_from_release_files_is_taken_from_the_cache_and_a_damaged_entry_rebuilt(cache_dir, monkeypatch):
    from screening.terminology import load as terminology_load
    from screening.terminology import open_release_files

    builds = []
    real = terminology_load.load_paths
    monkeypatch.setattr(terminology_load, "load_paths", lambda *a, **k: builds.append(1) or real(*a, **k))
    first = open_release_files([ROOT / "trials" / "terminology"])
    second = open_release_files([ROOT / "trials" / "terminology"])
    assert len(builds) == 1  # the second store came from the cache
    assert second.content_identity == first.content_identity
    assert second.sources() == first.sources()  # the same releases, versions and dates
    (entry,) = entries(cache_dir, "terminology")
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0xFF  # its checksum no longer matches: built again, never read
    entry.write_bytes(bytes(data))
    third = open_release_files([ROOT / "trials" / "terminology"])
    # the same releases, versions and dates; loaded_at is the rebuild's own time, a second later or not
    same = lambda store: [dataclasses.replace(source, loaded_at=None) for source in store.sources()]  # noqa: E731
    assert len(builds) == 2 and same(third) == same(first)
