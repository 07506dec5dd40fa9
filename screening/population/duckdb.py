"""Run a rule set's query on DuckDB over the store, results as Arrow.

``con`` is a DuckDB connection holding the store's tables (:mod:`screening.population.schema`), as
tables or views (over Parquet, NDJSON ...). :func:`load_tables` registers Arrow tables (from
:mod:`screening.population.loader`). For each rule set the dictionary tables its plan needs are built
from the store's distinct values (:mod:`screening.population.dictionaries`) and the query is run.
"""
from __future__ import annotations

import contextlib
import warnings
from datetime import date

import duckdb
import pyarrow as pa

from ..analytes import catalogue
from . import dictionaries, schema
from .sql import Plan, field_column, plan as make_plan


def connect(tables: dict[str, pa.Table] | None = None) -> "duckdb.DuckDBPyConnection":
    """A new in-memory DuckDB connection, with ``tables`` (name -> Arrow table) loaded when given."""
    con = duckdb.connect()
    if tables is not None:
        load_tables(con, tables)
    return con


def load_tables(con, tables: dict[str, pa.Table]) -> None:
    """Create the store's tables in ``con`` from Arrow tables (every table of the schema; absent ones empty)."""
    for name, table_schema in schema.TABLES.items():
        table = tables.get(name, table_schema.empty_table())
        con.register("_incoming", table)
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _incoming")
        con.unregister("_incoming")


def _put(con, name: str, table: pa.Table) -> None:
    con.register("_incoming", table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _incoming")
    con.unregister("_incoming")


def _score_codes() -> list[str]:
    return sorted({code for analyte in catalogue().analytes if analyte.is_score for code in analyte.codes})


def build_dictionaries(con) -> None:
    """The dictionary tables shared by every rule set: observation codes, units, reference-range units,
    result texts and score values, each from the store's distinct values."""
    rows = con.execute("SELECT DISTINCT code FROM observations").fetchall()
    _put(con, "dict_codes", dictionaries.codes_table(rows))
    rows = con.execute("SELECT DISTINCT code, unit FROM observations WHERE value_number IS NOT NULL").fetchall()
    _put(con, "dict_units", dictionaries.units_table(rows))
    rows = con.execute("SELECT DISTINCT code, unit, ref_unit FROM observations WHERE ref_unit IS NOT NULL AND "
                       "ref_unit <> '' AND ref_unit IS DISTINCT FROM unit").fetchall()
    _put(con, "dict_ref_units", dictionaries.ref_units_table(rows))
    rows = con.execute("SELECT DISTINCT value_string FROM observations WHERE value_string IS NOT NULL").fetchall()
    _put(con, "dict_texts", dictionaries.texts_table(rows))
    codes = _score_codes()
    con.register("_score_codes", pa.table({"code": pa.array(codes, pa.string())}))
    rows = con.execute("SELECT DISTINCT o.code, unit, value_number, value_is_integer, value_string, value_bool, value_code "
                       "FROM observations o JOIN _score_codes s ON s.code = o.code").fetchall()
    con.unregister("_score_codes")
    _put(con, "dict_scores", dictionaries.scores_table(rows))
    rows = con.execute(f"SELECT DISTINCT {', '.join(dictionaries.DOSE_COLUMNS)} FROM medications").fetchall()
    _put(con, "dict_doses", dictionaries.doses_table(rows))


def build_plan_dictionaries(con, plan: Plan) -> None:
    """The dictionary tables of one plan: record codes against its value sets, its text tests, its code fields."""
    union = " UNION ".join(f"SELECT code, codes FROM {kind}" for kind in schema.RECORD_KINDS)
    rows = con.execute(f"SELECT DISTINCT code, codes FROM ({union})").fetchall()
    _put(con, "dict_record_codes", dictionaries.record_codes_table(rows, plan.matchers))
    if plan.lab_texts:
        texts = con.execute("SELECT DISTINCT text FROM dict_texts UNION SELECT DISTINCT text FROM dict_scores "
                            "WHERE text IS NOT NULL UNION SELECT 'positive' UNION SELECT 'negative'").fetchall()
        for index, node in enumerate(plan.lab_texts):
            _put(con, f"dict_lt{index}", dictionaries.lab_text_table(node, texts))
    for index, (kind, name, qualifier) in enumerate(plan.code_fields):
        column = field_column(kind, name)
        if column is not None:
            query = f"SELECT DISTINCT CAST(to_json({column}) AS VARCHAR) FROM {kind} e"
            rows = con.execute(query).fetchall()
        else:
            rows = con.execute("SELECT DISTINCT value_json FROM record_fields WHERE kind = ? AND name = ?",
                               [kind, name]).fetchall()
        values = {(v,) for (v,) in rows if v is not None} | {("null",)}
        _put(con, f"dict_cf{index}", dictionaries.code_field_table(qualifier, sorted(values)))


def screen_trial(con, trial, as_of: date, *, shared_ready: bool = False) -> pa.Table:
    """One rule set (a compiled :class:`~screening.compile.Trial` or a CheckedRuleSet) over the whole store:
    one row per patient (see screening.population.sql for the columns)."""
    checked = getattr(trial, "checked", trial)
    plan = make_plan(checked, as_of)
    if not shared_ready:
        build_dictionaries(con)
    build_plan_dictionaries(con, plan)
    for name, query in plan.prepare:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")
    # con.execute, not con.sql: the relation API binds the (long) query a second time to describe it first
    with warnings.catch_warnings(), _optimizers_off(con, SLOW_OPTIMIZERS):
        warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
        return con.execute(plan.sql).to_arrow_table()


SLOW_OPTIMIZERS = ("projection_pullup",)
"""DuckDB optimizer passes switched off while a rule set's query runs. projection_pullup spends seconds on the
benchmark rule set's query (its time grows faster than the query: 1-3 s for 20 criteria, a few ms for each
alone), for no gain in execution; it only moves projections, so the results are the same without it."""


@contextlib.contextmanager
def _optimizers_off(con, names):
    before = con.execute("SELECT current_setting('disabled_optimizers')").fetchone()[0] or ""
    wanted = sorted({n.strip() for n in before.split(",") if n.strip()} | set(names))
    con.execute(f"SET disabled_optimizers = '{','.join(wanted)}'")
    try:
        yield
    finally:
        con.execute(f"SET disabled_optimizers = '{before}'")


def screen_tables(con, trials, as_of: date) -> pa.Table:
    """Every rule set over the store, as one long table: one row per (trial, patient) with the decision and,
    per criterion, its value, applicability, verdict, missing items and review reasons (a list of structs)."""
    build_dictionaries(con)
    parts = []
    for trial in trials:
        checked = getattr(trial, "checked", trial)
        wide = screen_trial(con, checked, as_of, shared_ready=True)
        criteria = []
        for criterion in checked.criteria:
            cid = criterion.id
            criteria.append(pa.StructArray.from_arrays(
                [pa.array([cid] * wide.num_rows, pa.string()), wide[cid].combine_chunks(),
                 wide[f"{cid}__applies"].combine_chunks(), wide[f"{cid}__verdict"].combine_chunks(),
                 wide[f"{cid}__missing"].combine_chunks(), wide[f"{cid}__reviews"].combine_chunks()],
                ["id", "value", "applicable", "verdict", "missing", "reviews"]))
        n, width = wide.num_rows, len(criteria)
        struct_type = criteria[0].type if criteria else pa.struct([])
        # row i's list: criterion c's struct at c * n + i of the criteria laid end to end (no Python per value)
        laid = pa.concat_arrays(criteria) if criteria else pa.array([], struct_type)
        order = pa.array([c * n + i for i in range(n) for c in range(width)], pa.int64())
        lists = pa.ListArray.from_arrays(pa.array(range(0, n * width + 1, width) if width else [0] * (n + 1), pa.int32()),
                                         laid.take(order))
        parts.append(pa.table({
            "trial": pa.array([checked.trial_id] * n, pa.string()),
            "patient_id": wide["patient_id"], "decision": wide["decision"], "decision_reason": wide["decision_reason"],
            "criteria": lists,
        }))
    return pa.concat_tables(parts) if parts else pa.table({})
