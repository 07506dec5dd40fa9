"""NDJSON ingestion by DuckDB (screening.population.ingest) against the Python loader.

For every line the two must agree on whether it is refused (and say so with its line number), and
the tables must be equal, compared as sorted Arrow tables: the Python loader
(screening.population.loader.TableBuilder over the per-patient reader) is the reference.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

duckdb = pytest.importorskip("duckdb")

from screening.errors import DataError  # noqa: E402
from screening.patient.load import parse_json, patient_from_text  # noqa: E402
from screening.population import ingest, schema  # noqa: E402
from screening.population.ingest import ingest_ndjson, read_line_chunks  # noqa: E402
from screening.population.loader import TableBuilder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SORT_KEYS = ("patient_id", "kind", "seq", "name")


def _population(n: int, seed: int) -> list[dict]:
    spec = importlib.util.spec_from_file_location("population", ROOT / "benchmarks" / "population.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.generate(n, seed=seed))


def reference(path: Path, display: str) -> tuple[dict, dict]:
    """What the per-patient reader makes of each line: refused lines (line -> messages) and tables."""
    builder, refused, first = TableBuilder(), {}, {}
    for number, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        if not raw.strip():
            continue
        key = f"{display}:{number}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            refused[number] = ["not UTF-8 text"]
            continue
        text = text.removeprefix("\ufeff")
        try:
            patient_from_text(text.rstrip("\r\n"), key, one_line=True)  # what `check` says of the line
        except DataError as exc:
            refused[number] = [p.message for p in exc.problems]
            continue
        document = parse_json(text.rstrip("\r\n"), key, one_line=True)
        probe = TableBuilder()
        probe.add_document(document, key)  # a line `check` reads, the loader stores
        pid = probe.rows["patients"][0]["patient_id"]
        if pid in first:
            refused[number] = [f"duplicate patient id {pid!r}: already given by {display}:{first[pid]}; "
                               "this line is not screened"]
            continue
        first[pid] = number
        builder.add_document(document, key)
    return refused, builder.tables()


def ingested(path: Path, display: str, **options) -> tuple[dict, dict, object]:
    con = duckdb.connect()
    errors: list[dict] = []
    summary = ingest_ndjson(con, path, on_error=errors.append, display=display, **options)
    refused = {e["line"]: [p["message"] for p in e["problems"]] for e in errors}
    assert len(refused) == len(errors), "a line was reported twice"
    tables = {name: con.sql(f"SELECT * FROM {name}").to_arrow_table() for name in schema.TABLES}
    return refused, tables, summary


def _sorted(table):
    keys = [(k, "ascending") for k in SORT_KEYS if k in table.schema.names]
    return table.sort_by(keys).to_pylist()


def assert_same(path: Path, display: str = "pop.ndjson", **options):
    """The store SQL ingestion writes equals the per-patient reader's, with the plain path (screening.population.plain)
    and, unless ``plain_path`` is given, without it too; returns the summary of the first."""
    want_refused, want = reference(path, display)
    summaries = []
    for plain in ([options.pop("plain_path")] if "plain_path" in options else [True, False]):
        got_refused, got, summary = ingested(path, display, plain_path=plain, **options)
        assert got_refused == want_refused, plain
        for name in schema.TABLES:
            assert [(f.name, f.type) for f in got[name].schema] == [(f.name, f.type) for f in schema.TABLES[name]], name
            assert _sorted(got[name]) == _sorted(want[name]), (name, plain)
        assert summary.patients == want["patients"].num_rows
        assert summary.bad == len(want_refused)
        summaries.append(summary)
    return summaries[0]


def write_lines(tmp_path: Path, lines: list, name: str = "pop.ndjson") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode("utf-8") for line in lines) + b"\n")
    return path


def test_generated_population_is_stored_by_sql_exactly_as_the_python_loader(tmp_path):
    patients = _population(400, seed=7)
    path = write_lines(tmp_path, [json.dumps(p) for p in patients])
    summary = assert_same(path)
    assert summary.patients == 400 and summary.bad == 0
    assert summary.python_path == 0  # the whole synthetic population is proven valid in SQL
    assert summary.plain_path == 400  # every line, nulls and all, proven by the plain path
    compact = write_lines(tmp_path, [json.dumps(p, separators=(",", ":"), ensure_ascii=False) for p in patients],
                          name="compact.ndjson")
    assert assert_same(compact).plain_path == 400  # nulls and all
    assert ingested(path, "pop.ndjson", plain_path=False)[2].python_path == 0


P = '{"id":"%s"%s}'
EDGE_LINES = [
    P % ("a1", ',"birth_date":"1980","sex":"female","observations":[],"conditions":[]'),
    "",  # blank lines count in line numbers
    "   \t",
    P % ("a2", ',"birth_date":"1980-02","deceased":true,"facts":{"smoker":true,"ecog":1,"x":null,"w":2.5,"s":"yes"}'),
    P % ("a3", ',"birth_date":"1980-02-29T10:00:00+01:00","deceased":"2024-05","version":1'),
    P % ("a4", ',"observations":[{"code":"LOINC:2160-0","value":7,"unit":"mg/dL","date":"2026-01-01"},'
               '{"code":"LOINC:2160-0","value":7.0,"comparator":">","reference_range":{"low":0,"high":1.2}},'
               '{"code":"LOINC:2160-0","value":"<5","codes":["LOCAL:x"]},{"code":"LOINC:1","value":true},'
               '{"code":"LOINC:1","value":null,"display":"x","reference_range":{"text":"n","unit":"mg/dL"}},'
               '{"code":"LOINC:1","value":1e2},{"code":"LOINC:1","value":12345678901234567890}]'),
    P % ("a5", ',"conditions":[{"code":"ICD10:C50.9","onset":"2019-03","end":"2020","status":"Active",'
               '"verification":"provisional","stage":"II","histology":["SNOMED:1","SNOMED:2"],"n":3,"f":2.5,'
               '"z":null,"recorded_date":"2019-04-01"},{"unreadable":"coded only as text","display":"breast ca",'
               '"recorded_date":"yesterday"}]'),
    P % ("a6", ',"medications":[{"code":"ATC:B01AA03","start":"2026-01-01","route":"oral","response":null,'
               '"dose":{"value":5,"unit":"mg"},"frequency":2,"investigational":false},'
               '{"code":"RXNORM:1","frequency":{"frequency":1,"period":12,"period_unit":"h"},'
               '"daily_dose":{"value":10.5,"unit":"mg/d"}},{"code":"RXNORM:2","frequency":{"as_needed":true}}]'),
    P % ("a7", ',"procedures":[{"code":"CPT:92928","date":"2026-05-01","result":"class IV"}],'
               '"allergies":[{"code":"SNOMED:1","criticality":"high","category":"food","onset":"2001"}],'
               '"immunizations":[{"code":"CVX:140","date":"2025-10-01","end":"x","lot":"A1"}]'),
    # extra fields SQL does not store itself: read by the per-patient reader, stored by the Python loader
    P % ("a8", ',"conditions":[{"code":"ICD10:I10","detail":{"a":1}},{"code":"ICD10:I11","e":1e-7}]'),
    P % ("a9", ',"conditions":[{"code":"ICD10:I10","codes":[]}],"observations":[{"code":"LOINC:1","codes":[]}]'),
    # refused lines
    P % ("b1", ',"birth_date":"1980-02-30"'),
    P % ("b2", ',"birth_date":"0000"'),
    P % ("b3", ',"observations":[{"code":"LOINC:1","value":NaN}]'),
    P % ("b4", ',"facts":{"x":Infinity}'),
    P % ("b5", ',"facts":{"x":1e999}'),
    '{"id":"b6","id":"b6x"}',
    P % ("b7", ',"observations":[{"code":"LOINC:1","value":1,"value":2}]'),
    P % ("b8", ',"conditions":[{"code":"ICD9:174.9"}]'),
    P % ("b9", ',"conditions":[{"display":"no code"}]'),
    P % ("c1", ',"sex":"F"'),
    P % ("c2", ',"gender":"female"'),
    P % ("c3", ',"observations":{"code":"LOINC:1"}'),
    P % ("c4", ',"observations":[{"code":"LOINC:1","value":[1]}]'),
    P % ("c5", ',"observations":[{"code":"LOINC:1","comparator":"~"}]'),
    P % ("c6", ',"medications":[{"code":"ATC:X","frequency":0}]'),
    P % ("c7", ',"medications":[{"code":"ATC:X","dose":{"value":"5"}}]'),
    P % ("c8", ',"version":2'),
    P % ("c9", ',"version":true'),
    '{"id":""}',
    '{"id":5}',
    "not json",
    "[1,2]",
    P % ("d1", ',"observations":[{"code":"LOINC: ","value":1}]'),
    P % ("d2", ',"birth_date":" 1980"'),
    P % ("d3", ',"birth_date":"1980-01-01 10:00"'),
    P % ("d4", ',"observations":[{"code":"LOINC:1","value":1,"reference_range":{"low":"x"}}]'),
    P % ("d5", ',"medications":[{"code":"ATC:X","investigational":"yes"}]'),
    P % ("a1", ''),  # a duplicate id: the first line wins
    '{"id":"e1","observations":[{"code":"LOINC:1","value":nan}]}',
    '{"id":"e2","observations":[{"code":"LOINC:1","value":-Infinity}]}',
    '{"id":"e3","x":"\\ud800"}',
    # a FHIR bundle on one line: read by the per-patient reader (FHIR conversion)
    json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "f1", "birthDate": "1970-01-01", "gender": "male"}},
        {"resource": {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/f1"},
                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.9"}]}}}]}),
    b'{"id":"u1","display":"\xff"}',  # not UTF-8
    '\ufeff{"id":"g1"}',  # a byte-order mark
    '{"id":"g2"}\r',  # CRLF line ending
    '{"id":"g3","facts":{"on dialysis":false,"quote\\"d":1}}',
    # coded answers (value_code) and adverse-event attributions (caused_by)
    P % ("h1", ',"observations":[{"code":"LOINC:89247-1","value_code":"LOINC:LA9623-5","date":"2026-01-01"},'
               '{"code":"LOINC:89247-1","value":"ECOG 1","value_code":"LOINC:LA9623-5"},'
               '{"code":"LOINC:89247-1","value":2,"value_code":null}]'),
    P % ("h2", ',"conditions":[{"code":"ICD10:J70.4","caused_by":"ATC:L01XC17"},'
               '{"code":"ICD10:J70.4","caused_by":["ATC:L01XC17","RXNORM:1"]},{"code":"ICD10:J70.4","caused_by":null}]'),
    P % ("h3", ',"observations":[{"code":"LOINC:89247-1","value_code":"LA9623-5"}]'),
    P % ("h4", ',"observations":[{"code":"LOINC:89247-1","value_code":1}]'),
    P % ("h5", ',"conditions":[{"code":"ICD10:J70.4","caused_by":5}]'),
]


def test_edge_cases_are_accepted_and_refused_exactly_as_the_per_patient_reader_does(tmp_path):
    path = write_lines(tmp_path, EDGE_LINES)
    summary = assert_same(path)
    assert summary.bad >= 30
    assert summary.python_path < len(EDGE_LINES) // 1.3  # most valid lines were proven in SQL


def test_an_id_given_twice_by_lines_the_per_patient_reader_stores_keeps_only_the_first(tmp_path):
    """Both lines take the per-patient reader (an extra field holding an object): only the first line's rows are
    stored (found by a fuzzer: the second line's rows were stored too, filtered by patient instead of by line)."""
    path = write_lines(tmp_path, ['{"id":"p","conditions":[{"code":"ICD10:I10","detail":{"a":1}}]}',
                                  '{"id":"p","conditions":[{"code":"ICD10:I11","detail":{"a":2}}]}'])
    summary = assert_same(path)
    assert summary.python_path == 2 and summary.patients == 1
    tables = ingested(path, "pop.ndjson")[1]
    assert tables["conditions"].column("code").to_pylist() == ["ICD10:I10"]
    assert tables["record_fields"].column("value_json").to_pylist() == ['{"a":1}']


def test_a_refused_line_is_reported_with_its_line_number_and_message(tmp_path):
    path = write_lines(tmp_path, ['{"id":"p1"}', "", '{"id":"p2","birth_date":"1980-02-30"}', '{"id":"p1"}',
                                  '{"id":"p3"}'])
    errors: list[dict] = []
    con = duckdb.connect()
    summary = ingest_ndjson(con, path, on_error=errors.append, display="pop.ndjson")
    assert [e["input"] for e in errors] == ["pop.ndjson:3", "pop.ndjson:4"]
    assert errors[0]["line"] == 3
    assert errors[0]["error"] == "$.birth_date: '1980-02-30' is not a real date (day is out of range for month)"
    assert errors[1]["problems"][0]["code"] == "duplicate-id"
    assert "already given by pop.ndjson:1" in errors[1]["error"]
    assert sorted(r[0] for r in con.sql("SELECT patient_id FROM patients").fetchall()) == ["p1", "p2", "p3"] or \
        sorted(r[0] for r in con.sql("SELECT patient_id FROM patients").fetchall()) == ["p1", "p3"]
    assert sorted(r[0] for r in con.sql("SELECT source FROM patients").fetchall()) == ["pop.ndjson:1", "pop.ndjson:5"]
    assert (summary.records, summary.patients, summary.bad, summary.lines) == (4, 2, 2, 5)


def test_chunks_cut_anywhere_give_the_same_store(tmp_path):
    lines = [json.dumps(p) for p in _population(6, seed=3)] + EDGE_LINES
    path = write_lines(tmp_path, lines)
    whole = ingested(path, "pop.ndjson")
    for size in (2000, 9000):
        parts = ingested(path, "pop.ndjson", chunk_bytes=size)
        assert parts[0] == whole[0]
        for name in schema.TABLES:
            assert _sorted(parts[1][name]) == _sorted(whole[1][name]), (size, name)


def test_an_oversized_line_is_refused_without_being_held(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_DOCUMENT_BYTES", 1000)
    big = '{"id":"big","facts":{"x":"' + "y" * 5000 + '"}}'
    path = write_lines(tmp_path, ['{"id":"p1"}', big, '{"id":"p2"}'])
    chunks = list(read_line_chunks(path, chunk_bytes=64))
    assert all(len(c.body) <= 64 + 1000 for c in chunks)
    refused, tables, summary = ingested(path, "pop.ndjson", chunk_bytes=64)
    assert list(refused) == [2]
    assert refused[2][0].startswith("line is 5,")
    assert sorted(tables["patients"].column("patient_id").to_pylist()) == ["p1", "p2"]


def test_an_oversized_line_inside_a_chunk_is_refused_with_its_size(tmp_path, monkeypatch):
    """A line over the limit that lies wholly inside one chunk (not where a chunk ends) is refused as `check`
    refuses it, not parsed by SQL."""
    monkeypatch.setattr(ingest, "MAX_DOCUMENT_BYTES", 1000)
    big = '{"id":"big","facts":{"x":"' + "y" * 5000 + '"}}'
    path = write_lines(tmp_path, ['{"id":"p1"}', big, '{"id":"p2"}'])
    refused, tables, summary = ingested(path, "pop.ndjson")
    assert list(refused) == [2] and refused[2][0].startswith("line is 5,")
    assert sorted(tables["patients"].column("patient_id").to_pylist()) == ["p1", "p2"]
    assert summary.records == 3 and summary.bad == 1


def test_the_differential_population_is_stored_by_sql_exactly_as_the_python_loader(tmp_path):
    """The population the SQL engine is checked on (coded answers, caused_by, set fields, doses) ingests identically."""
    import sys
    sys.path.insert(0, str(ROOT / "tests"))
    from population_gen import population

    path = write_lines(tmp_path, [json.dumps(p) for p in population(300, 10)])
    summary = assert_same(path)
    assert summary.patients == 300 and summary.bad == 0


# Lines DuckDB's JSON functions read more leniently than the per-patient reader (trailing commas), nulls,
# unknown and duplicate keys at every level: each accepted or refused exactly as the per-patient reader does.
COUNT_PROOF_LINES = [
    '{"id":"t1",}',  # trailing commas: DuckDB's reader accepts them, the per-patient reader does not
    '{"id":"t2","observations":[{"code":"LOINC:1","value":1},]}',
    '{"id":"t3","observations":[{"code":"LOINC:1","codes":["LOCAL:1",],"value":1}]}',
    '{"id":"t4","facts":{"x":1,}}',
    '{"id":"n1","sex":null,"birth_date":null,"deceased":null,"facts":null,"observations":null}',  # nulls: second look
    '{"id":"n2","observations":[{"code":"LOINC:1","value":null,"display":null,"unit":null,"reference_range":null}]}',
    '{"id":"n3","observations":[{"code":"LOINC:1","value":1,"reference_range":{"low":null,"high":2,"unit":null}}]}',
    '{"id":"n4","zzz":null}',  # an unknown key hidden behind a null value
    '{"id":"n5","observations":[{"code":"LOINC:1","value":1,"zzz":null}]}',
    '{"id":"n6","observations":[{"code":"LOINC:1","value":1,"reference_range":{"zzz":null}}]}',
    '{"id":"n7","sex":"male","sex":null}',  # a duplicate key, one of them null
    '{"id":"n8","observations":[{"code":"LOINC:1","value":1,"value":null}]}',
    '{"id":"n9","conditions":[{"code":"ICD10:I10","display":null,"stage":null}]}',
    '{"id" : "w1", "observations" : [{"code" : "LOINC:1", "value" : 1}]}',  # white space before colons
    '{"id": "w2", "observations": [{"code": "LOINC:1", "value": 1.5, "unit": "mg/dL"}], "facts": {"a": 1}}',
    '{"id":"s1","observations":[{"code":"LOINC:1","value":"a\\":b","display":":x"}]}',  # '":' inside strings
    '{"id":"s2","observations":[{"code":"LOINC:1","value":1,"display":"\\":\\":"}],"zzz":1}',
    '{"id":"s3","observations":[{"code":"LOINC:1","value":"\\u00e9\\n\\/x"}]}',  # escapes in a string value
    '{"id":"r1","observations":[{"code":"LOINC:1","value":1,"reference_range":5}]}',  # a range that is no object
    '{"id":"r2","observations":[{"code":"LOINC:1","value":1,"reference_range":"1-2"}]}',
    '{"id":"r3","observations":[{"code":"LOINC:1","value":1,"reference_range":{"low":1,"low":2}}]}',
    '{"id":"r4","observations":[{"code":"LOINC:1","value":1,"reference_range":{}}]}',
    '{"id":"o1","observations":[5]}',  # items that are no objects
    '{"id":"o2","observations":[null]}',
    '{"id":"o3","conditions":[5]}',
    '{"id":"o4","conditions":[{"code":"ICD10:I10","code":"ICD10:I11"}]}',
    '{"id":"o5","observations":{"code":"LOINC:1","value":1}}',
    '{"id":"o6","observations":[{"code":"LOINC:1","value":{"x":1}}]}',
    '{"id":"m1","medications":[{"code":"ATC:X","dose":{"value":5,"unit":"mg","zzz":1}}]}',
    '{"id":"m2","medications":[{"code":"ATC:X","dose":{"value":5,"value":6}}]}',
    '{"id":"m3","medications":[{"code":"ATC:X","dose":{"value":5,"unit":null},"frequency":{"frequency":2,"period":1,"period_unit":"d"}}]}',
    '{"id":"m4","medications":[{"code":"ATC:X","frequency":{"frequency":2,"zzz":null}}]}',
    '{"id":"e1","conditions":[{"code":"ICD10:I10","recorded_date":5}]}',  # a recorded_date that is no text
    '{"id":"e2","conditions":[{"code":"ICD10:I10","recorded_date":"2020-02","note":"a\\"b"}]}',
    '{"id":"f1","facts":{"a":1,"a":2}}',
    '{"id":"f2","facts":{"a":{"b":1}}}',
    '{"id":"f3","facts":{"a":null,"b":"x"}}',
    # lone surrogates (valid JSON, not text: refused by the per-patient reader at their path); a pair is text
    '{"id":"u1","facts":{"a":"\\ud800"}}',
    '{"id":"u2","observations":[{"code":"LOINC:1","value":1,"display":"x\\udc00"}]}',
    '{"id":"u3","conditions":[{"code":"ICD10:I10","stage":"\\uDBFF"}]}',
    '{"id":"u4","observations":[{"code":"LOINC:1","value":"\\ud83d\\ude00"}],"facts":{"\\ud83d\\ude00":true}}',
    # counts beyond FHIR's positiveInt (the store's integer column, and exact in every engine): refused
    '{"id":"q1","medications":[{"code":"ATC:X","frequency":{"frequency":9223372036854775807,"period":1,"period_unit":"d"}}]}',
    '{"id":"q2","medications":[{"code":"ATC:X","frequency":{"frequency":18446744073709551616}}]}',
    '{"id":"q3","medications":[{"code":"ATC:X","frequency":{"frequency":2147483648,"period":1,"period_unit":"d"}}]}',
    '{"id":"q4","medications":[{"code":"ATC:X","frequency":{"frequency":2147483647,"period":1,"period_unit":"d"}}]}',
    # integers no double holds, in values and ranges: stored as doubles, never an error
    '{"id":"h1","observations":[{"code":"LOINC:1920-8","value":-1000000000000000000000000000000000000000,"unit":"U/L"}]}',
    '{"id":"h2","observations":[{"code":"LOINC:1920-8","value":29,"reference_range":{"low":9007199254740993,"high":40}}]}',
    # lines that are no patient: the messages `check` gives
    '{"id":"x1","resourceType":"Observation"}',
    '{"id":"x2","resourceType":5}',
]
NOT_PATIENTS = ["true", "1", '"x"', "[]", "[{}]", "null"]


def test_lenient_json_and_hidden_keys_are_accepted_and_refused_exactly_as_the_per_patient_reader(tmp_path):
    path = write_lines(tmp_path, COUNT_PROOF_LINES)
    summary = assert_same(path)
    refused = ingested(path, "pop.ndjson")[0]
    lines = {line.split('"')[3]: number for number, line in enumerate(COUNT_PROOF_LINES, 1)}
    for pid in ("t1", "t2", "t3", "t4", "n4", "n5", "n6", "n7", "n8", "r1", "r2", "r3", "o1", "o2", "o3", "o4",
                "o5", "o6", "m1", "m2", "f1", "f2", "u1", "u2", "u3", "q1", "q2", "q3", "x1", "x2"):
        assert lines[pid] in refused, pid
    for pid in ("n1", "n2", "n3", "n9", "w1", "w2", "s1", "s3", "r4", "m3", "e1", "e2", "f3", "u4", "q4", "h1", "h2"):
        assert lines[pid] not in refused, pid


# (line, whether the plain path (screening.population.plain) proves it): every line must also be stored or refused
# exactly as the per-patient reader does, whichever path takes it
PLAIN_PROOF_LINES = [
    ('{"id":"a1","observations":[{"code":"LOINC:1","value":1,"unit":"mg/dL","date":"2020-01-02",'
     '"reference_range":{"low":1,"high":2.5,"unit":"mg/dL","text":"1-2.5"}}]}', True),
    ('{"id": "a2", "sex": "female", "birth_date": "1950-03", "facts": {"smoker": true, "x": null, "n": 1.5, "s": "t:u"}}', True),
    ('{"id":"a3","conditions":[{"code":"ICD10:I10","codes":["SNOMED:1","ICD10:I10.0"],"display":"a:b {c} [d]",'
     '"status":"active","onset":"2019"}],"medications":[{"code":"ATC:X","route":"oral","start":"2020-01-01T10:00:00Z"}]}', True),
    ('{"id":"a4","observations":[{"code":"LOINC:1","value":"positive"},{"code":"LOINC:2","value":true}]}', True),
    ('{"id":"a5","observations":[{"code":"LOINC:1","value":7,"comparator":"<"},{"code":"LOINC:1","value":7.0,'
     '"value_code":"LOINC:LA1"}]}', True),
    ('{"id":"a6","observations":[{"code":"LOINC:1","value":1,"display":"é ✓ 𝄞"}],"procedures":[{"code":"SNOMED:1",'
     '"result":"ok, done"}],"allergies":[{"unreadable":"no code","category":"food"}],"immunizations":[]}', True),
    ('{"id":"a7","version":1,"deceased":true,"observations":[],"conditions":[]}', True),
    # numbers of every spelling: the written-as-integer flag and the double, as the general path types them
    ('{"id":"a8","observations":[{"code":"LOINC:1","value":1e2},{"code":"LOINC:1","value":12345678901234567890},'
     '{"code":"LOINC:1","value":-0},{"code":"LOINC:1","value":-0.0},{"code":"LOINC:1","value":1E5,'
     '"reference_range":{"low":0.1,"high":123456789012345678901234567890}},{"code":"LOINC:1","value":7.50},'
     '{"code":"LOINC:1","value":-9223372036854775808},{"code":"LOINC:1","value":5e-324}]}', True),
    # a text field holding another kind: fewer quotes than counted
    ('{"id":"b1","sex":5}', False),
    ('{"id":"b2","observations":[{"code":"LOINC:1","value":1,"unit":{"a":"b"}}]}', False),
    ('{"id":"b3","observations":[{"code":"LOINC:1","value":1,"display":["x"]}]}', False),
    ('{"id":"b4","observations":[{"code":"LOINC:1","value":"5","unit":5}]}', False),
    ('{"id":"b5","sex":{}}', False),
    # an object field holding no object: read as an object of NULLs, without its brace
    ('{"id":"b6","observations":[{"code":"LOINC:1","value":1,"reference_range":true}]}', False),
    ('{"id":"b7","observations":[{"code":"LOINC:1","value":1,"reference_range":[1]}]}', False),
    # a dropped value whose quotes and braces make up for a text field holding a number (found by a fuzzer)
    ('{"id":"i1","observations":[{"code":"LOINC:1","reference_range":[{}]}]}', False),
    ('{"id":"i2","sex":5,"observations":[{"code":"LOINC:1","reference_range":["ab",{}]}]}', False),
    ('{"id":"i3","observations":[{"code":"LOINC:1","date":2020,"reference_range":"ab"},'
     '{"code":"LOINC:1","reference_range":[{},{}]}]}', False),
    ('{"id":"i4","observations":[{"code":"LOINC:1","value":1,"reference_range":{}}]}', False),
    ('{"id":"i5","conditions":[{"code":"ICD10:I10","display":5}],"observations":"ab","facts":{"a":null}}', False),
    ('{"id":"i6","conditions":[{"code":"ICD10:I10","display":5}],"observations":"ab","procedures":null}', False),
    ('{"id":"i7","conditions":[{"code":"ICD10:I10","display":5}],"observations":"a:null","procedures":null}', False),
    # keys the type does not name, or twice: more colons than counted
    ('{"id":"b8","zzz":1}', False),
    ('{"id":"b9","observations":[{"code":"LOINC:1","value":1,"zz:z":"1"}]}', False),
    ('{"id":"c1","id":"c1"}', False),
    ('{"id":"c2","sex":"male","sex":"female"}', False),
    # null is absent (as in the general path and the per-patient reader); a line holding ':null' is proven with the
    # keys of its objects listed, since its colons cannot tell a null from an unknown key
    ('{"id":"c3","sex":null}', True),
    ('{"id":"c4","observations":[{"code":"LOINC:1","value":null}]}', True),
    ('{"id":"g1","zzz":null}', False),
    ('{"id":"g2","sex":"male","sex":null}', False),
    ('{"id":"g3","observations":[{"code":"LOINC:1","value":1,"zzz":null}]}', False),
    ('{"id":"g4","observations":[{"code":"LOINC:1","value":null,"reference_range":{"low":null,"high":2,"zz":null}}]}',
     False),
    ('{"id":"g5","observations":null,"conditions":[{"code":"ICD10:I10","display":null,"onset":null}],"facts":null}',
     True),
    ('{"id":"g6","observations":[{"code":"LOINC:1","value":null,"reference_range":null}]}', True),
    ('{"id":"g7","conditions":[{"code":null,"unreadable":"x"}]}', True),
    ('{"id":"g8","display":"x:null"}', False),
    ('{"id":"g9","observations":[{"code":"LOINC:1","value":1,"display":"a:null"}]}', True),
    ('{"id":"h3","observations":[{"code":"LOINC:1","value":1,"codes":null}],"medications":[{"code":"ATC:X",'
     '"route":null}]}', True),
    ('{"id":"h4","conditions":[{"code":"ICD10:I10","codes":[null]}]}', False),
    ('{"id":"h5","sex": null}', True),  # white space after the colon, as json.dumps writes it
    ('{"id": "j1", "observations": [{"code": "LOINC:1", "value": null, "display": "a: null"}], "facts": {"a": null}}',
     True),
    ('{"id":"j2","zzz": null}', False),
    ('{"id":"j3","conditions":[{"code":"ICD10:I10","display":5}],"observations":"x: null"}', False),
    ('{"id":"j4","conditions":[{"code":"ICD10:I10","display":5}],"observations":"ab","sex":\tnull}', False),
    ('{"id":"h6","observations":[{"code":"LOINC:1","value":null,"value":1}]}', False),
    ('{"id":"h7","observations":[{"code":"LOINC:1","value":null,"reference_range":{"low":1,"low":null}}]}', False),
    ('{"id":"h8","observations":[{"code":"LOINC:1","value":null,"unit":5}]}', False),
    ('{"id":"h9","observations":[{"code":"LOINC:1","value":null,"reference_range":5}]}', False),
    # lists: a text for a list, items of another kind, null items, items that are no objects
    ('{"id":"c5","conditions":[{"code":"ICD10:I10","codes":"ICD10:I11"}]}', False),
    ('{"id":"c6","conditions":[{"code":"ICD10:I10","codes":[5]}]}', False),
    ('{"id":"c7","conditions":[{"code":"ICD10:I10","codes":["ICD10:I11",null]}]}', False),
    ('{"id":"c8","observations":[5]}', False),
    ('{"id":"c9","conditions":[{}]}', False),
    ('{"id":"d1","observations":[null]}', False),
    # what DuckDB's parser accepts and the per-patient reader does not
    ('{"id":"d2","observations":[{"code":"LOINC:1","value":1},]}', False),
    ('{"id":"d3","observations":[{"code":"LOINC:1","value":1}, ]}', False),
    ('{"id":"d4","observations":[{"code":"LOINC:1","value":NaN}]}', False),
    ('{"id":"d5","observations":[{"code":"LOINC:1","value":1e400}]}', False),
    # fields the plain type leaves to the general path
    ('{"id":"d6","medications":[{"code":"ATC:X","dose":{"value":5,"unit":"mg"}}]}', False),
    ('{"id":"d7","conditions":[{"code":"ICD10:I10","recorded_date":"2020"}]}', False),
    ('{"id":"d8","deceased":"2020-01"}', False),
    ('\ufeff{"id":"d9"}', False),
    ('{"id":"e1","observations":[{"code":"LOINC:1","value":1,"display":"\\u00e9"}]}', False),
    # valid shapes, invalid values: left to the general path, which refuses them with check's message
    ('{"id":"e2","observations":[{"code":"LOINC:1","value":{"a":1}}]}', False),
    ('{"id":"e3","birth_date":"2020-13-01"}', False),
    ('{"id":"e4","observations":[{"code":"XYZ:1","value":1}]}', False),
    ('{"id":"e5","version":1.0}', False),  # accepted (the reader takes 1.0 for 1), by the per-patient reader
    ('{"id":"e6","version":"1"}', False),
    ('{"id":"e7","facts":{"a":1,"a":2}}', False),
    ('{"id":"e8","facts":{"a":{"b":1}}}', False),
    ('{"id":""}', False),
    ('{"id":"e9","medications":[{"code":"ATC:X","route":"a\x7fb"}]}', False),
    ('{"id":"f1","observations":[{"code":"LOINC:1","value":1,"comparator":"=="}]}', False),
    ('{"id":"f2","conditions":[{"display":"no code"}]}', False),
]


def test_the_plain_path_takes_exactly_the_lines_it_proves_and_stores_them_as_the_per_patient_reader(tmp_path):
    """Each line alone: taken by the plain path or not, as listed; all together: stored or refused as `check` does."""
    for number, (line, plain) in enumerate(PLAIN_PROOF_LINES):
        path = write_lines(tmp_path, [line], name=f"l{number}.ndjson")
        assert ingested(path, "pop.ndjson")[2].plain_path == int(plain), line
    path = write_lines(tmp_path, [line for line, _ in PLAIN_PROOF_LINES])
    summary = assert_same(path)
    assert summary.plain_path == sum(plain for _, plain in PLAIN_PROOF_LINES)
    refused = ingested(path, "pop.ndjson")[0]
    ids = [line.split('"')[3] for line, _ in PLAIN_PROOF_LINES]
    assert [ids[n - 1] for n in sorted(refused)] == ["b1", "b2", "b3", "b4", "b5", "b6", "b7",
                                                      "i1", "i2", "i3", "i5", "i6", "i7", "b8", "b9", "c1", "c2",
                                                      "g1", "g2", "g3", "g4", "g8", "h4", "j2", "j3", "j4", "h6",
                                                      "h7", "h8", "h9",
                                                      "c5", "c6", "c7", "c8", "c9", "d1", "d2", "d3", "d4", "d5", "e2",
                                                      "e3", "e4", "e6", "e7", "e8", "", "f1", "f2"]


def test_lines_that_are_no_patient_are_refused_with_the_message_check_gives(tmp_path):
    path = write_lines(tmp_path, NOT_PATIENTS + ['{"resourceType":"Observation","id":"o"}'])
    assert_same(path)
    refused = ingested(path, "pop.ndjson")[0]
    assert refused[1] == ["a patient must be a JSON object, not bool"]
    assert refused[4] == ["a patient must be a JSON object, not list"]
    assert refused[7] == ["FHIR resource type 'Observation' is not a Bundle or Patient"]
