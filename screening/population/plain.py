"""The plain-document path of NDJSON ingestion: documents proven valid by one typed parse and three counts.

Most lines of a population file are *plain*: only the usual fields and no escape in any string. Such a
line is parsed once, straight into typed columns (``from_json`` with the nested type :data:`PLAIN_TYPE`),
instead of being parsed piece by piece as JSON (:class:`~.ingest.Ingester`, which handles everything
else). A typed parse alone is lenient: it drops unknown and repeated keys, reads ``12`` into a text field
and ``null`` as absent. The proof that none of that happened counts three characters of the line, which
in a line without a backslash can only be where JSON puts them:

* every key is followed by one structural ``:``; every other ``:`` is inside a string. So
  ``colons(line) = P + colons(leaves)``, where ``P`` counts the fields the typed parse found
  (not NULL) and ``leaves`` is every text and JSON value it read, holds only if the line has no
  key the type does not name, no key twice and no ``null`` (a NULL field whose key was written);
* every string is written between two ``"`` and holds none. So
  ``quotes(line) = 2 P + 2 V + quotes(leaves)``, ``V`` the text values read, holds only if every
  text value was written as a string (a number, boolean, object or list read into a text field
  brings fewer quotes than it is counted for);
* every object is opened by one ``{`` outside strings. So ``braces(line) = O + braces(leaves)``, ``O``
  the objects the typed parse found, holds only if each was written as an object (a typed parse reads
  ``5`` or ``true`` as an object whose fields are all NULL, as it reads ``{}``).

A line holding ``null`` is proven with the keys of each of its objects listed instead (:func:`plain_select`).
A value the typed parse drops whole is the danger, for its quotes and braces go uncounted: a list field
holding no list is read as NULL (its key's colon is then not counted, so the colon count refuses it), and an
object field holding no object as an object of NULLs (a ``reference_range`` of ``["ab", {}]`` could make up for
``"id": 5``), so a range with no field at all is left to the general path.

What the counts cannot see (a list item that is ``null`` or not an object, a value of the wrong
kind inside a JSON-typed leaf) is refused by the checks, which are the checks of the general path
written on typed columns (its code, date and text macros; numbers typed by their first character,
as exactly as the general path's JSON casts): a line is stored by this path exactly as the general path
would store it, or left to the general path. ``tests/test_population_ingest.py`` holds the three paths
(this one, the general SQL path and the per-patient reader) together.
"""
from __future__ import annotations

import json
import warnings

import pyarrow as pa

from .ingest import (FACT_OK, LINE_BATCH, OBSERVATION_FIELDS, PATIENT_FIELDS, RANGE_FIELDS, RECORD_BASE,
                     RECORD_DECLARED, _TRAILING_COMMA, _dates, _keys_ok)
from .schema import END_FIELD, RECORD_KINDS, START_FIELD, TABLES

_OBSERVATION = {"code": "VARCHAR", "codes": ["VARCHAR"], "display": "VARCHAR", "value": "JSON",
                "value_code": "VARCHAR", "unit": "VARCHAR", "date": "VARCHAR", "comparator": "VARCHAR",
                "reference_range": {"low": "JSON", "high": "JSON", "unit": "VARCHAR", "text": "VARCHAR"}}

PLAIN_DECLARED = {kind: tuple(name for name, what in declared.items() if what in ("date", "string"))
                  for kind, declared in RECORD_DECLARED.items()}
"""The declared record fields a plain record may have (dates and texts; doses, frequencies, flags and lists of
causes are left to the general path)."""


def _record(kind: str) -> dict:
    spec = {name: "VARCHAR" for name in RECORD_BASE}
    spec["codes"] = ["VARCHAR"]
    spec.update({name: "VARCHAR" for name in PLAIN_DECLARED[kind]})
    return spec


PLAIN_TYPE = {"version": "JSON", "id": "VARCHAR", "birth_date": "VARCHAR", "sex": "VARCHAR", "deceased": "JSON",
              "observations": [_OBSERVATION], **{kind: [_record(kind)] for kind in RECORD_KINDS}, "facts": "JSON"}
"""The typed parse of a plain document: texts as VARCHAR, anything that may be a number (or of several kinds) as
JSON, typed afterwards exactly as the general path types it."""

# the plain type names exactly the fields the general path allows (a field it refuses must never be taken here)
assert set(PLAIN_TYPE) == set(PATIENT_FIELDS)
assert set(_OBSERVATION) == set(OBSERVATION_FIELDS) and set(_OBSERVATION["reference_range"]) == set(RANGE_FIELDS)
assert all(set(_record(kind)) <= set(RECORD_BASE) | set(RECORD_DECLARED[kind]) for kind in RECORD_KINDS)


def _nulls(text: str) -> str:
    """How many ``null`` follow a colon (and white space) in ``text``."""
    return f"len(regexp_extract_all({text}, ':[ \\t\\r\\n]*null'))"


def _count(text: str, char: str) -> str:
    return f"(strlen({text}) - strlen(replace({text}, '{char}', '')))"


def _walk(expr: str, spec: dict, depth: int = 0) -> tuple[list[str], list[str], list[str], list[str]]:
    """SQL terms for the fields found (P), the text values read (V), the objects below ``expr`` (O) and the leaves'
    texts, of the object ``expr``."""
    found, texts, objects, leaves = [], [], [], []
    for name, kind in spec.items():
        field = f'{expr}."{name}"'
        found.append(f"({field} IS NOT NULL)::INT")
        if kind == "VARCHAR":
            texts.append(f"({field} IS NOT NULL)::INT")
            leaves.append(field)
        elif kind == "JSON":
            leaves.append(field)
        elif kind == ["VARCHAR"]:
            texts.append(f"coalesce(len({field}), 0)")
            leaves.append(f"array_to_string({field}, '')")
        elif isinstance(kind, dict):
            objects.append(f"({field} IS NOT NULL)::INT")
            f, t, o, l = _walk(field, kind, depth)
            found += f
            texts += t
            objects += o
            leaves += l
        else:  # a list of objects
            item = f"i{depth}"
            f, t, o, l = _walk(item, kind[0], depth + 1)
            o = [f"({item} IS NOT NULL)::INT"] + o
            for terms, out in ((f, found), (t, texts), (o, objects)):
                out.append(f"coalesce(list_sum(list_transform({field}, lambda {item}: {' + '.join(terms)})), 0)")
            leaves.append(f"array_to_string(list_transform({field}, lambda {item}: concat({', '.join(l)})), '')")
    return found, texts, objects, leaves


def _all(items: str, item: str, check: str) -> str:
    """Every item of a (possibly NULL) list passes ``check``; NULL counts as failing."""
    return f"coalesce(len(list_filter({items}, lambda {item}: NOT coalesce({check}, FALSE))), 0) = 0"


QUOTE = '"'
_DIGITS = "('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9')"


def _json_number(leaf: str) -> str:
    """The number a JSON-typed leaf holds, as DOUBLE (NULL for another kind). Read from the leaf's text by its first
    character: a JSON value starting with a digit or '-' is a number (or -inf/-nan, which are not finite), and any
    correct parse of the same text gives the double the general path's JSON cast gives."""
    return f"CASE WHEN left({leaf}, 1) IN {_DIGITS} THEN try_cast({leaf}::VARCHAR AS DOUBLE) END"


def _number(leaf: str) -> str:
    """A JSON-typed leaf that is absent or a finite number (as the general path's ``isfinite(<name>_n)``)."""
    return f"({leaf} IS NULL OR isfinite({_json_number(leaf)}))"


def _typed_leaf(leaf: str, name: str, kinds: str) -> str:
    """The general path's ``_typed`` columns (``name_n``, ``name_i``, ``name_s``, ``name_b``) of a JSON-typed leaf of
    a plain line, read from its first character instead of parsing it again."""
    items = [f"{_json_number(leaf)} AS {name}_n",
             f"CASE WHEN left({leaf}, 1) IN {_DIGITS} THEN NOT (contains({leaf}, '.') OR contains({leaf}, 'e') "
             f"OR contains({leaf}, 'E')) END AS {name}_i"]
    if "s" in kinds:
        items.append(f"CASE WHEN left({leaf}, 1) = '\"' THEN json_extract_string({leaf}, '$') END AS {name}_s")
    if "b" in kinds:
        items.append(f"CASE WHEN {leaf} IN ('true', 'false') THEN {leaf} = 'true' END AS {name}_b")
    return ", ".join(items)


def _codes_ok(codes: str) -> str:
    return f"({codes} IS NULL OR {_all(codes, 'c', '_code_ok(c)')})"


def _date(text: str) -> str:
    return f"({text} IS NULL OR _date_ok({text}))"


def _observation_ok(o: str) -> str:
    value = f"{o}.value"
    return " AND ".join([
        f"{o}.code IS NOT NULL", f"_code_ok({o}.code)", _codes_ok(f"{o}.codes"),
        f"({value} IS NULL OR left({value}, 1) = '\"' OR {value} IN ('true', 'false') OR {_number(value)})",
        f"({o}.value_code IS NULL OR _code_ok({o}.value_code))", _date(f"{o}.date"),
        f"({o}.comparator IS NULL OR {o}.comparator IN ('<', '<=', '>', '>='))",
        _number(f"{o}.reference_range.low"), _number(f"{o}.reference_range.high"),
        # a range that is no object is read as one of NULLs, and what it held is dropped unseen by the counts (its quotes
        # and braces could make up for a text field holding a number): only a range with a field is taken
        f"({o}.reference_range IS NULL OR {o}.reference_range.low IS NOT NULL OR {o}.reference_range.high IS NOT NULL "
        f"OR {o}.reference_range.unit IS NOT NULL OR {o}.reference_range.text IS NOT NULL)"])


def _record_ok(kind: str, r: str) -> str:
    checks = [f"({r}.code IS NOT NULL OR {r}.unreadable IS NOT NULL)", f"({r}.code IS NULL OR _code_ok({r}.code))",
              _codes_ok(f"{r}.codes")]
    for name in PLAIN_DECLARED[kind]:
        if RECORD_DECLARED[kind][name] == "date":
            checks.append(_date(f'{r}."{name}"'))
        else:  # a text kept in record_fields: stored as written only without control characters
            checks.append(f'({r}."{name}" IS NULL OR _plain({r}."{name}"))')
    return " AND ".join(checks)


_FACT_VALUES = "map_values(from_json(d.facts, '\"MAP(VARCHAR, JSON)\"'))"
_FACT_OK = FACT_OK.format(v="v")


def _key_lists() -> tuple[str, list[str], str]:
    """For the lines of ``counted`` with ``null``s: a SELECT adding the keys of every object the typed parse reads
    (yyjson lists a repeated key twice), the checks that each object's keys are known and distinct, and their number."""
    items = json.dumps({name: ["JSON"] for name, kind in PLAIN_TYPE.items() if isinstance(kind, list)},
                       separators=(",", ":"))
    parse = f"try(from_json(text, '{items}')) AS items, try(json_keys(text)) AS k"
    columns = []
    checks = [_keys_ok("k", PLAIN_TYPE)]
    counts = ["len(k)"]
    for name, kind in PLAIN_TYPE.items():
        if not isinstance(kind, list):
            continue
        spec = kind[0]
        columns.append(f"list_transform(items.{name}, lambda i: json_keys(i)) AS {name}_k")
        checks.append(_all(f"{name}_k", "ik", _keys_ok("ik", spec)))
        counts.append(f"coalesce(list_sum(list_transform({name}_k, lambda ik: len(ik))), 0)")
        for inner, inner_spec in spec.items():
            if isinstance(inner_spec, dict):
                columns.append(f"list_transform(items.{name}, lambda i: json_keys(i, '$.{inner}')) AS {name}_{inner}_k")
                checks.append(_all(f"{name}_{inner}_k", "ik", _keys_ok("coalesce(ik, [])", inner_spec)))
                counts.append(f"coalesce(list_sum(list_transform({name}_{inner}_k, lambda ik: len(ik))), 0)")
    return f"SELECT *, {', '.join(columns)} FROM (SELECT *, {parse} FROM counted WHERE nulls)", checks, " + ".join(counts)


def plain_select() -> str:
    """The SELECT of ``(line, d)`` for the lines of ``_lines`` proven plain and valid (``d`` typed by :data:`PLAIN_TYPE`).

    A line holding ``null`` is proven with the keys of its objects listed (known and distinct), as the colon count
    cannot tell a null from an unknown key, and every key either found by the parse or holding ``null`` (keys = P +
    the ``: null`` outside the leaves, white space allowed after the colon: a list field holding a text is read as
    NULL, and only a ``: null`` written inside such a text could make up for it, whose colon the colon count sees);
    any other line by the counts alone. The ``: null`` of the leaves may be over-counted (two texts joined, ``"x:"``
    then ``"null"``): that only turns the line away, to the general path."""
    found, texts, objects, leaves = _walk("d", PLAIN_TYPE)
    keyed, key_checks, key_count = _key_lists()
    checks = [
        "d.id IS NOT NULL AND d.id <> ''", "(d.version IS NULL OR d.version = '1')", _date("d.birth_date"),
        "(d.sex IS NULL OR d.sex IN ('female', 'male', 'other', 'unknown'))",
        "(d.deceased IS NULL OR d.deceased IN ('true', 'false'))",
        _all("d.observations", "o", _observation_ok("o")),
        *[_all(f"d.{kind}", "r", _record_ok(kind, "r")) for kind in RECORD_KINDS],
        "(d.facts IS NULL OR (left(d.facts, 1) = '{' AND list_unique(json_keys(d.facts)) = len(json_keys(d.facts)) "
        f"AND {_all(_FACT_VALUES, 'v', _FACT_OK)}))",
        "NOT contains(text, ',]') AND NOT contains(text, ',}')",
        "NOT ((contains(text, ', ') OR contains(text, ',' || chr(9)) OR contains(text, ',' || chr(13))) "
        f"AND regexp_matches(text, '{_TRAILING_COMMA}'))",
    ]
    plain_type = json.dumps(PLAIN_TYPE, separators=(",", ":"))
    counted = (f"{' + '.join(texts)} AS v, 1 + {' + '.join(objects)} AS o, concat({', '.join(leaves)}) AS leaves, "
               f"{_count('text', ':')} AS text_colons, {_count('text', QUOTE)} AS text_quotes, "
               f"{_count('text', '{')} AS text_braces")

    def proven(keys: str) -> str:  # the counts, with ``keys`` the number of keys in the line's objects
        return (f"text_colons = {keys} + {_count('leaves', ':')} AND text_quotes = 2 * {keys} + 2 * v + "
                f"{_count('leaves', QUOTE)} AND text_braces = o + {_count('leaves', '{')}")

    # parsed once: without MATERIALIZED, DuckDB inlines ``d`` into each of its uses and parses the line again for each
    return f"""
WITH parsed AS MATERIALIZED (
  SELECT line, text, try(from_json(text, '{plain_type}')) AS d, contains(text, 'null') AS nulls FROM _lines
  WHERE NOT contains(text, '\\') AND left(text, 1) <> chr(65279)),
counted AS (SELECT line, text, d, nulls, {' + '.join(found)} AS p, {counted} FROM parsed WHERE d IS NOT NULL),
keyed AS MATERIALIZED ({keyed})
SELECT line, d FROM counted WHERE NOT nulls AND {proven('p')} AND {' AND '.join(checks)}
UNION ALL
SELECT line, d FROM keyed WHERE {' AND '.join(key_checks)} AND {proven(f'({key_count})')} AND {' AND '.join(checks)}
  AND {key_count} = p + {_nulls('text')} - {_nulls('leaves')}"""


def read_plain(con, enabled: bool = True) -> pa.Table:
    """Run :func:`plain_select` over ``_lines``; the result as an Arrow table of small batches, so that the
    statements storing it unnest and type it on every core (no row at all when not ``enabled``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
        # one column per member: each statement storing a list converts only its own column from Arrow
        table = con.execute(f"SELECT line, d.* FROM ({plain_select()}){'' if enabled else ' LIMIT 0'}").to_arrow_table()
    return pa.Table.from_batches(table.to_batches(max_chunksize=LINE_BATCH), table.schema)


def _columns(table: str) -> list[str]:
    return [field.name for field in TABLES[table]]


def insert_plain(con, prefix: str, display: str, winners: str) -> None:
    """Store the documents of ``_plain_docs`` whose line is one of ``winners`` (a SQL subquery of lines), column for
    column as :meth:`~.ingest.Ingester._insert_sql` stores the same documents."""
    p, display = prefix, display.replace("'", "''")
    docs = f"(SELECT * FROM _plain_docs WHERE line IN ({winners}))"
    has = ", ".join(f"{name} IS NOT NULL" for name in ("observations",) + RECORD_KINDS + ("facts",))
    con.execute(f"""
INSERT INTO {p}patients
SELECT id, '{display}:' || line, {_dates("birth_date")}, sex, CASE WHEN deceased = 'true' THEN TRUE END,
       {_dates("NULL::VARCHAR")}, {has}
FROM {docs}""")
    value = _typed_leaf("o.value", "value", "snb")
    low = _typed_leaf("o.reference_range.low", "ref_low", "n")
    high = _typed_leaf("o.reference_range.high", "ref_high", "n")
    con.execute(f"""
INSERT INTO {p}observations
SELECT id, seq, o.code, o.codes, o.display, value_n, value_i, value_s, value_b, o.value_code, o.unit, o.comparator,
       {_dates("o.date")}, ref_low_n, ref_low_i, ref_high_n, ref_high_i, o.reference_range.unit, o.reference_range.text
FROM (SELECT id, seq, o, {value}, {low}, {high}
      FROM (SELECT id, unnest(observations) AS o, generate_subscripts(observations, 1) - 1 AS seq
            FROM {docs} WHERE observations IS NOT NULL))""")
    for kind in RECORD_KINDS:
        start = f'r."{START_FIELD[kind]}"'
        end = f'r."{END_FIELD[kind]}"' if END_FIELD[kind] else "NULL::VARCHAR"
        columns = _columns(kind)[:14]
        assert columns[-1] == "end_hi", columns
        records = (f"(SELECT id, unnest({kind}) AS r, generate_subscripts({kind}, 1) - 1 AS seq "
                   f"FROM {docs} WHERE {kind} IS NOT NULL)")
        con.execute(f"""
INSERT INTO {p}{kind} ({', '.join(f'"{c}"' for c in columns)})
SELECT id, seq, r.code, r.codes, r.display, r.status, r.verification, r.unreadable, {_dates(start)}, {_dates(end)}
FROM {records}""")
        for name in PLAIN_DECLARED[kind]:
            if RECORD_DECLARED[kind][name] == "string":
                con.execute(f"""
INSERT INTO {p}record_fields
SELECT id, '{kind}', seq, '{name}', 'string', r."{name}", NULL, NULL, '"' || r."{name}" || '"', NULL
FROM {records} WHERE r."{name}" IS NOT NULL""")
    con.execute(f"""
INSERT INTO {p}facts
SELECT id, name, CASE v_t WHEN 'NULL' THEN 'null' WHEN 'BOOLEAN' THEN 'bool' WHEN 'VARCHAR' THEN 'string' ELSE 'number' END,
       CASE WHEN v_t = 'BOOLEAN' THEN v = 'true' END,
       CASE WHEN v_t IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN try_cast(v AS DOUBLE) END,
       CASE WHEN v_t = 'VARCHAR' THEN json_extract_string(v, '$') END
FROM (SELECT id, name, v, coalesce(json_type(v), 'NULL') AS v_t
      FROM (SELECT id, unnest(map_keys(m)) AS name, unnest(map_values(m)) AS v
            FROM (SELECT id, from_json(facts, '"MAP(VARCHAR, JSON)"') AS m FROM {docs} WHERE facts IS NOT NULL)))""")
