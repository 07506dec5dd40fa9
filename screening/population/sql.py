"""The SQL generator: a checked rule set (screening.ir) -> one query over the store, one row per patient.

A sibling of :mod:`screening.compile` (which generates Python): the same IR, the same meaning
(:mod:`screening.evaluate` is the reference), another target. Every IR node type has one translation
function in :data:`ATOMS` (atoms) or :data:`LOGIC` (connectives), keyed by node type, as a sqlglot
dialect keys its generators by expression type: adding a node to the language is adding one entry.
A node type with no entry is refused with :class:`Unsupported`, naming the construct, never
translated approximately.

The query reads the store's tables (:mod:`screening.population.schema`) and the dictionary tables
(:mod:`screening.population.dictionaries`) its :class:`Plan` lists. The text is written in DuckDB's
dialect, parsed into a sqlglot expression tree and rendered for the dialect asked for.

Truth values are SQL booleans: TRUE, FALSE and NULL (unknown); SQL's AND, OR and NOT are Kleene's.
Output columns, per criterion ``ID``: ``ID`` (the value), ``ID__applies``, ``ID__verdict``
(pass | fail | unknown | review), ``ID__missing`` (list of items); then ``decision`` and
``decision_reason``. Column names are the criterion ids as written (quoted).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date

from .. import derived, ir
from ..dates import NEVER
from ..evaluate import NO_VALUE, UNCERTAIN_DATE, Context, TERMINOLOGY_REASON
from .dictionaries import DOSE_COLUMNS, DOSE_PATH

_ACTIVE = ("active", "recurrence", "relapse", "in-progress", "on-hold")
_ENDED = ("inactive", "remission", "resolved", "completed", "stopped", "cancelled", "not-taken",
          "entered-in-error", "not-done")
_NEVER_HAPPENED = ("not-taken", "not-done", "entered-in-error")
_POINT_EVENTS = ("procedures", "immunizations")
EMPTY = "CAST([] AS VARCHAR[])"


class Unsupported(ValueError):
    """A construct of the language the SQL generator does not translate (it is never approximated)."""


def q(text) -> str:
    """A SQL string literal (every text from a rule file or a patient goes through here)."""
    if text is None:
        return "NULL"
    return "'" + str(text).replace("'", "''") + "'"


def num(x: float) -> str:
    """A SQL DOUBLE literal that reads back as exactly ``x``."""
    if x != x or x in (float("inf"), float("-inf")):
        raise Unsupported(f"non-finite number {x!r} in a rule")
    return f"CAST({q(repr(float(x)))} AS DOUBLE)"


def day(ordinal: int) -> str:
    return f"DATE '{date.fromordinal(max(1, min(ordinal, date.max.toordinal()))).isoformat()}'"


def lst(*items: str) -> str:
    """A list of SQL text expressions (NULL items dropped)."""
    if not items:
        return EMPTY
    return f"list_filter([{', '.join(items)}], lambda x: x IS NOT NULL)"


def cat(*lists: str) -> str:
    lists = [x for x in lists if x != EMPTY]
    if not lists:
        return EMPTY
    out = lists[0]
    for other in lists[1:]:
        out = f"list_concat({out}, {other})"
    return out


def show(lo: str, hi: str) -> str:
    """screening.dates.show in SQL: a (partial) date range as the text it came from."""
    return (f"(CASE WHEN {lo} IS NULL THEN 'undated' WHEN {lo} = {hi} THEN CAST({lo} AS VARCHAR) "
            f"WHEN month({lo}) = 1 AND day({lo}) = 1 AND month({hi}) = 12 AND day({hi}) = 31 "
            f"AND year({lo}) = year({hi}) THEN lpad(CAST(year({lo}) AS VARCHAR), 4, '0') "
            f"WHEN day({lo}) = 1 AND year({lo}) = year({hi}) AND month({lo}) = month({hi}) "
            f"THEN strftime({lo}, '%Y-%m') "
            f"ELSE CAST({lo} AS VARCHAR) || '..' || CAST({hi} AS VARCHAR) END)")


# ---------------------------------------------------------------- the unit-precision rule in SQL
def _repr_exponent(x: str) -> str:
    """The decimal exponent of the last digit of a DOUBLE's shortest spelling (Python repr; DuckDB
    casts a DOUBLE to the same text)."""
    s = f"CAST({x} AS VARCHAR)"
    mant = f"split_part({s}, 'e', 1)"
    return (f"((CASE WHEN {s} LIKE '%e%' THEN CAST(split_part({s}, 'e', 2) AS INTEGER) ELSE 0 END) - "
            f"(CASE WHEN {mant} LIKE '%.%' THEN length(split_part({mant}, '.', 2)) ELSE 0 END))")


def _quantize(x: str, k: str, half_even: bool) -> str:
    """``float(Decimal(repr(x)).quantize(Decimal(1).scaleb(k), rounding)) + 0.0`` exactly, in integers."""
    s = f"CAST({x} AS VARCHAR)"
    mant = f"split_part({s}, 'e', 1)"
    m = f"CAST(replace(replace({mant}, '-', ''), '.', '') AS HUGEINT)"
    shift = f"({k} - {_repr_exponent(x)})"
    pw = f"CAST(pow(10, {shift}) AS HUGEINT)"
    quot, rem = f"({m} // {pw})", f"({m} % {pw})"
    if half_even:
        up = f"(2 * {rem} > {pw} OR (2 * {rem} = {pw} AND {quot} % 2 = 1))"
    else:
        up = f"(2 * {rem} >= {pw})"
    rounded = f"({quot} + CASE WHEN {up} THEN 1 ELSE 0 END)"
    text = f"(CASE WHEN {x} < 0 THEN '-' ELSE '' END) || CAST({rounded} AS VARCHAR) || 'e' || CAST({k} AS VARCHAR)"
    return (f"(CASE WHEN {shift} <= 0 THEN {x} WHEN {shift} > 18 THEN CAST(0.0 AS DOUBLE) "
            f"ELSE CAST({text} AS DOUBLE) + 0.0 END)")


def _snap12(x: str) -> str:
    """units.snap_value: the value correctly rounded to 12 significant digits."""
    return f"(CASE WHEN {x} = 0 OR isinf({x}) OR isnan({x}) THEN {x} ELSE CAST(printf('%.11e', {x}) AS DOUBLE) END)"


def _round_half_even(y: str) -> str:
    f = f"floor({y})"
    return (f"CAST(CASE WHEN {y} - {f} > 0.5 THEN {f} + 1 WHEN {y} - {f} < 0.5 THEN {f} "
            f"WHEN {f} % 2 = 0 THEN {f} ELSE {f} + 1 END AS INTEGER)")


def conversion_stages(source: str, quantities: dict[str, tuple[str, str, str, str, str, str]]) -> str:
    """units.Conversion.apply_written in SQL, for each named quantity over the rows of ``source``: a chain of
    sub-selects, each adding a few columns, so that no expression is repeated inside another. ``quantities``:
    name -> (value, is_integer, factor, addend, exact, log10_factor) column expressions; adds column ``<name>_c``."""
    stage1, stage2, stage3, stage4 = [], [], [], []
    for x, (value, is_integer, factor, addend, exact, log10_factor) in quantities.items():
        stage1 += [f"({value} * {factor}) AS {x}_sc", f"({value} * {factor} + {addend}) AS {x}_sh",
                   f"{addend} AS {x}_ad", f"{factor} AS {x}_f", f"{exact} AS {x}_ex",
                   f"(CASE WHEN {is_integer} THEN 0 ELSE {_repr_exponent(value)} END) AS {x}_we",
                   f"{log10_factor} AS {x}_lf"]
        magnitude = f"greatest(abs({x}_sc), abs({x}_ad))"
        stage2.append(f"(CASE WHEN {x}_ad = 0 OR {x}_sh = 0 OR isinf({x}_sh) OR isnan({x}_sh) THEN NULL ELSE "
                      f"{_quantize(f'{x}_sh', f'(CAST(floor(log10({magnitude})) AS INTEGER) - 11)', True)} END) AS {x}_near")
        stage2.append(f"{_round_half_even(f'({x}_we + {x}_lf - 1e-9)')} AS {x}_k")
        stage3.append(f"(CASE WHEN {x}_ad = 0 THEN {_snap12(f'{x}_sc')} WHEN {x}_sh = 0 OR isinf({x}_sh) OR isnan({x}_sh) "
                      f"THEN {x}_sh ELSE {_snap12(f'{x}_near')} + 0.0 END) AS {x}_c0")
        c0 = f"{x}_c0"
        stage4.append(f"(CASE WHEN {c0} IS NULL THEN NULL WHEN {x}_ex OR {c0} = 0 OR isinf({c0}) OR isnan({c0}) OR {x}_f = 0 "
                      f"THEN {c0} WHEN {x}_k < CAST(floor(log10(abs({c0}))) AS INTEGER) - 15 THEN {c0} "
                      f"ELSE {_quantize(c0, f'{x}_k', False)} END) AS {x}_c")
    query = f"SELECT *, {', '.join(stage1)} FROM ({source})"
    for stage in (stage2, stage3, stage4):
        query = f"SELECT *, {', '.join(stage)} FROM ({query})"
    return query


# ---------------------------------------------------------------- the plan
ORDER_CLAUSE = " ORDER BY patient_id"
"""The end of every plan's query (:attr:`Plan.unordered_sql` is the query without it)."""


@dataclass
class Plan:
    """One rule set compiled for one as-of date: the query and the dictionary tables it joins."""

    trial_id: str
    as_of: date
    criteria: list[str]
    sql: str  # DuckDB dialect
    keys: set = field(default_factory=set)  # analyte keys whose observations are read
    matchers: list = field(default_factory=list)  # CodeMatchers classified over record codes (m0, m1 ...)
    lab_texts: list = field(default_factory=list)  # LabText nodes (dictionary lt<i>)
    code_fields: list = field(default_factory=list)  # (kind, field name, matcher): with FIELD in VALUESET
    prepare: list = field(default_factory=list)  # (table, query): intermediate tables to materialise first

    @property
    def unordered_sql(self) -> str:
        """:attr:`sql` without its final ``ORDER BY patient_id``, for a runner that joins the rows to something else
        or sorts them itself (``screening batch`` joins them to the patients' input lines and sorts all trials'
        rows once): DuckDB keeps an ORDER BY inside such a subquery, a sort of every patient's wide row for nothing
        (about 0.1-0.3 s of CPU per rule set on 100,000 patients)."""
        return self.sql[:-len(ORDER_CLAUSE)] if self.sql.endswith(ORDER_CLAUSE) else self.sql

    def single_query(self) -> str:
        """The whole computation as one query (the intermediate tables as common table expressions)."""
        if not self.prepare:
            return self.sql
        ctes = ",\n".join(f"{name} AS ({body})" for name, body in self.prepare)
        return f"WITH {ctes},\n{self.sql[len('WITH '):]}"

    def render(self, dialect: str = "duckdb", pretty: bool = False) -> str:
        """The whole computation as one query in ``dialect``: the DuckDB text parsed by sqlglot into an
        expression tree and generated for that dialect."""
        import sqlglot  # here, not at import: `batch --engine duckdb` never needs it (0.2 s)

        return sqlglot.transpile(self.single_query(), read="duckdb", write=dialect, pretty=pretty)[0]


class Generator:
    """Builds the query of one rule set; one instance per (rule set, as-of date)."""

    def __init__(self, checked: ir.CheckedRuleSet, as_of: date):
        self.checked = checked
        self.as_of = as_of
        self.ctx = Context(as_of, checked.ranges)
        self.end = day(self.ctx.as_of)
        self.ctes: list[tuple[str, str]] = []
        self.joins: list[str] = []
        self.columns: list[str] = []  # base columns: v<k>, m<k>, r<k>
        self.layers: list[list[str]] = []
        self.done: dict = {}  # id(node) or define name -> k
        self.depth: dict = {}
        self.counter = 0
        self.plan = Plan(checked.trial_id, as_of, [c.id for c in checked.criteria], "")
        self.uses_obs = False
        self.derived_keys: set[str] = set()  # derived analytes read (the dobs table)
        self.empty: set[tuple[str, int]] = set()  # ("m" | "r", k): lists empty for every patient (no column)
        self.record_kinds: list[str] = []  # record kinds read with their code classes (rc_<kind>)
        self.record_tests: dict[str, list] = {}  # kind -> the record tests decided in one pass (rt_<kind>)

    def records(self, kind: str) -> str:
        """The records of one kind as the per-patient loader reads them, each with its codes classified against
        every value set of the rule set (``dc_has_codes``, ``dc_m<i>``, ``dc_w<i>``): the join with
        dict_record_codes made once per query, not once per atom."""
        if kind not in self.record_kinds:
            self.record_kinds.append(kind)
        return f"rc_{kind}"

    def results(self, key: str) -> str:
        """The table of the normalised results (nobs) an atom of analyte ``key`` reads. (A rank of every result
        computed once in nobs was tried: a window over all of nobs, with its wide rows, costs more than one over
        each latest test's narrow rows.)"""
        self.uses_obs = True
        self.plan.keys.add(key)
        return "nobs"

    # ---- helpers
    def fresh(self) -> int:
        self.counter += 1
        return self.counter

    def start(self, window: ir.Duration | None) -> str:
        return day(1) if window is None else day(self.ctx.window_start(window))

    def matcher(self, matcher) -> int:
        for index, known in enumerate(self.plan.matchers):
            if known is matcher:
                return index
        self.plan.matchers.append(matcher)
        return len(self.plan.matchers) - 1

    # ---- nodes
    def node(self, node: ir.Node) -> int:
        """The column number k holding node's value v<k>, missing items m<k> and review reasons r<k> (a list that
        is empty for every patient, such as the review reasons of a node without a review, gets no column:
        :meth:`ref` spells it as the empty list)."""
        key = ("define", node.name) if isinstance(node, ir.Define) else id(node)
        if key in self.done:
            return self.done[key]
        atom = ATOMS.get(type(node))
        if atom is not None:
            k = self.fresh()
            value, missing, reviews = atom(self, node, k)
            self.columns.append(f"{value} AS v{k}")
            self._list_column(self.columns, "m", k,
                              EMPTY if missing == EMPTY else f"CASE WHEN {value} IS NULL THEN {missing} ELSE {EMPTY} END")
            self._list_column(self.columns, "r", k, reviews)
            self.depth[k] = 0
            self.done[key] = k
            return k
        logic = LOGIC.get(type(node))
        if logic is None:
            raise Unsupported(f"{type(node).__name__} ({node.source_text or 'a construct'}) has no SQL translation")
        parts = [self.node(child) for child in ir.children(node)]
        k = self.fresh()
        value, missing, reviews = logic(self, node, parts)
        depth = 1 + max((self.depth[p] for p in parts), default=0)
        while len(self.layers) < depth:
            self.layers.append([])
        layer = self.layers[depth - 1]
        layer.append(f"{value} AS v{k}")
        for letter, text in (("m", missing), ("r", reviews)):
            if all((letter, p) in self.empty for p in parts):
                text = EMPTY  # a combination of lists that are all empty
            else:
                text = re.sub(rf"\b{letter}(\d+)\b",
                              lambda found: EMPTY if (letter, int(found.group(1))) in self.empty else found.group(0), text)
            self._list_column(layer, letter, k, text)
        self.depth[k] = depth
        self.done[key] = k
        return k

    def _list_column(self, columns: list[str], letter: str, k: int, text: str) -> None:
        if text == EMPTY:
            self.empty.add((letter, k))
        else:
            columns.append(f"{text} AS {letter}{k}")

    def ref(self, letter: str, k: int) -> str:
        """The column m<k> or r<k>, or the empty list when it has none."""
        return EMPTY if (letter, k) in self.empty else f"{letter}{k}"

    def build(self) -> Plan:
        criteria = []
        for criterion in self.checked.criteria:
            applies = self.node(criterion.applies) if criterion.applies is not None else None
            criteria.append((criterion, applies, self.node(criterion.condition)))
        # each atom's helper queries stay inside its own derived table (a WITH of the whole query, with hundreds
        # of entries, makes DuckDB's binder slow): LEFT JOIN (WITH a7r AS (...) SELECT ...) a7
        ctes = []
        local: dict[str, list[tuple[str, str]]] = {}
        bodies: dict[str, str] = {}
        for name, body in self.ctes:
            atom = re.match(r"a\d+", name).group(0)
            if name == atom:
                bodies[atom] = body
            else:
                local.setdefault(atom, []).append((name, body))
        joins = []
        for join in self.joins:
            found = re.match(r"LEFT JOIN (a\d+) ON ", join)
            if found and found.group(1) in bodies:
                atom = found.group(1)
                helpers = local.get(atom, [])
                inner = (("WITH " + ", ".join(f"{n} AS ({b})" for n, b in helpers) + " ") if helpers else "") + bodies[atom]
                join = f"LEFT JOIN ({inner}) {atom} ON " + join[found.end():]
            joins.append(join)
        self.joins = joins
        if self.uses_obs:  # materialised once by the runner (a CTE would be planned once per reference)
            self.plan.prepare.append(("nobs", _normalised_observations(sorted(self.plan.keys))))
        if self.derived_keys:
            self.plan.prepare.append(("dobs", _derived_observations(sorted(self.derived_keys))))
        passes = [(f"rt_{kind}", _record_pass(self, kind, tests)) for kind, tests in self.record_tests.items()]
        classes = ", ".join(["dc.has_codes AS dc_has_codes"] + [f"dc.m{i} AS dc_m{i}, dc.w{i} AS dc_w{i}"
                                                               for i in range(len(self.plan.matchers))])
        # only the records some test may count: every reader keeps a record that is in (or may be in) its value set
        # or cannot be read, that may have happened, and that does not start after the as-of date
        never = ", ".join(q(x) for x in _NEVER_HAPPENED)
        some = " OR ".join(["e.unreadable IS NOT NULL"] + [f"dc.m{i} IS NOT FALSE" for i in range(len(self.plan.matchers))])
        for kind in self.record_kinds:
            ctes.append((f"rc_{kind}", f"SELECT e.*, {classes} FROM {_records(kind)} e LEFT JOIN dict_record_codes dc "
                                                    f"ON dc.code IS NOT DISTINCT FROM e.code AND dc.codes IS NOT DISTINCT FROM e.codes "
                                                    f"WHERE ({some}) AND (e.status IS NULL OR lower(e.status) NOT IN ({never})) "
                                                    f"AND (e.start_lo IS NULL OR e.start_lo <= {self.end})"))
        # the record tables lead the query's own WITH (not Plan.prepare: a runner that only runs the query, such as
        # the Spark one, needs nothing more for them); DuckDB materialises a common table expression read twice
        ctes += passes
        base = (f"SELECT p.patient_id, p.deceased, p.deceased_lo, p.deceased_hi{''.join(', ' + c for c in self.columns)} "
                f"FROM patients p {' '.join(self.joins)}")
        ctes.append(("layer0", base))
        for index, layer in enumerate(self.layers):
            ctes.append((f"layer{index + 1}", f"SELECT *, {', '.join(layer)} FROM layer{index}"))
        last = f"layer{len(self.layers)}"
        crit_cols, verdict_cols, sets = [], [], []
        for i, (criterion, a, c) in enumerate(criteria):
            inclusion = criterion.kind == "inclusion"
            moot = f"v{c} IS TRUE" if inclusion else f"v{c} IS FALSE"
            m, r = self.ref("m", c), self.ref("r", c)
            if a is None:
                applies, value, missing, reviews = "TRUE", f"v{c}", m, r
            else:
                open_ = f"(v{a} IS NULL AND NOT ({moot}))"
                applies = f"v{a}"
                value = f"CASE WHEN v{a} IS FALSE OR {open_} THEN NULL ELSE v{c} END"
                missing = (f"CASE WHEN v{a} IS FALSE THEN {EMPTY} WHEN {open_} THEN {cat(self.ref('m', a), m)} "
                           f"ELSE {m} END")
                reviews = (f"CASE WHEN v{a} IS FALSE THEN {EMPTY} WHEN {open_} THEN {cat(self.ref('r', a), r)} "
                           f"ELSE {r} END")
            # missing items and review reasons are sets: listed once each, in sorted order (the same whatever
            # order the engine's parallel aggregates gathered them in)
            crit_cols += [f"{value} AS c{i}_value", f"{applies} AS c{i}_applies",
                          f"{missing} AS c{i}_m", f"{reviews} AS c{i}_r"]
            sets += [f"{_as_set(f'c{i}_m')} AS c{i}_missing", f"{_as_set(f'c{i}_r')} AS c{i}_reviews"]
            met = f"c{i}_value" if inclusion else f"NOT c{i}_value"
            verdict_cols.append(
                f"CASE WHEN c{i}_applies IS FALSE THEN 'pass' WHEN c{i}_value IS NULL THEN "
                f"CASE WHEN len(c{i}_reviews) > 0 AND len(c{i}_missing) = 0 THEN 'review' ELSE 'unknown' END "
                f"WHEN {met} THEN 'pass' ELSE 'fail' END AS c{i}_verdict")
        ctes.append(("crit0", f"SELECT patient_id, deceased, deceased_lo, deceased_hi, {', '.join(crit_cols)} FROM {last}"))
        ctes.append(("crit", f"SELECT *, {', '.join(sets)} FROM crit0" if sets else "SELECT * FROM crit0"))
        ctes.append(("verdicts", f"SELECT *, {', '.join(verdict_cols)} FROM crit"))
        words = [f"c{i}_verdict" for i in range(len(criteria))]
        fail = " OR ".join(f"{w} = 'fail'" for w in words) or "FALSE"
        undecided = " OR ".join(f"{w} IN ('unknown', 'review')" for w in words) or "FALSE"
        decision = f"(CASE WHEN {fail} THEN 'ineligible' WHEN {undecided} THEN 'undetermined' ELSE 'eligible' END)"
        as_of = self.end
        died = (f"CASE WHEN deceased IS NOT TRUE THEN {decision} WHEN deceased_lo IS NULL THEN 'ineligible' "
                f"WHEN deceased_hi <= {as_of} THEN 'ineligible' WHEN deceased_lo > {as_of} THEN {decision} "
                f"WHEN {decision} = 'eligible' THEN 'undetermined' ELSE {decision} END")
        reason = (f"CASE WHEN deceased IS NOT TRUE THEN NULL WHEN deceased_lo IS NULL THEN "
                  f"'patient recorded as deceased (date of death not recorded)' "
                  f"WHEN deceased_hi <= {as_of} THEN 'patient died on ' || {show('deceased_lo', 'deceased_hi')} "
                  f"WHEN deceased_lo > {as_of} THEN NULL ELSE 'patient may have died on or before the as-of date "
                  f"(date of death ' || {show('deceased_lo', 'deceased_hi')} || ')' END")
        select = ["patient_id", f"{died} AS decision", f"{reason} AS decision_reason"]
        for i, (criterion, _a, _c) in enumerate(criteria):
            ident = criterion.id.replace('"', '""')
            select += [f'c{i}_value AS "{ident}"', f'c{i}_applies AS "{ident}__applies"',
                       f'c{i}_verdict AS "{ident}__verdict"', f'c{i}_missing AS "{ident}__missing"',
                       f'c{i}_reviews AS "{ident}__reviews"']
        with_ = ",\n".join(f"{name} AS ({body})" for name, body in ctes)
        self.plan.sql = f"WITH {with_}\nSELECT {', '.join(select)} FROM verdicts{ORDER_CLAUSE}"
        return self.plan


def _as_set(column: str) -> str:
    """A list of texts as a set: each once, sorted (whatever order the parallel aggregates gathered them in);
    the sort only for the lists of more than one item, the few."""
    return (f"(CASE WHEN len({column}) = 0 OR (len({column}) = 1 AND {column}[1] IS NOT NULL) THEN {column} "
            f"ELSE list_sort(list_distinct({column})) END)")


# ---------------------------------------------------------------- connectives
def _and_or(stop: str):
    def translate(gen: Generator, node, parts):
        value = "(" + (f" {'AND' if stop == 'FALSE' else 'OR'} ".join(f"v{p}" for p in parts)) + ")"
        branches = " ".join(f"WHEN v{p} IS {stop} THEN m{p}" for p in parts)
        missing = f"CASE {branches} ELSE {cat(*[f'm{p}' for p in parts])} END"
        rbranches = " ".join(f"WHEN v{p} IS {stop} THEN r{p}" for p in parts)
        reviews = f"CASE {rbranches} ELSE {cat(*[f'r{p}' for p in parts])} END"
        return value, missing, reviews
    return translate


def _not(gen, node, parts):
    (p,) = parts
    return f"(NOT v{p})", f"m{p}", f"r{p}"


def _known(gen, node, parts):
    (p,) = parts
    return f"(v{p} IS NOT NULL)", EMPTY, EMPTY


def _define(gen, node, parts):
    (p,) = parts
    return f"v{p}", f"m{p}", f"r{p}"


def _const(gen, node, k):
    return ("TRUE" if node.value else "FALSE"), EMPTY, EMPTY


def _if(gen, node, parts):
    c, t, o = parts
    value = (f"CASE WHEN v{c} IS TRUE THEN v{t} WHEN v{c} IS FALSE THEN v{o} "
             f"WHEN v{t} IS NOT NULL AND v{t} = v{o} THEN v{t} ELSE NULL END")

    def merged(x):
        return (f"CASE WHEN v{c} IS TRUE THEN {cat(f'{x}{c}', f'{x}{t}')} WHEN v{c} IS FALSE THEN {cat(f'{x}{c}', f'{x}{o}')} "
                f"WHEN v{t} IS NOT NULL AND v{t} = v{o} THEN {cat(f'{x}{t}', f'{x}{o}')} "
                f"ELSE {cat(f'{x}{c}', f'{x}{t}', f'{x}{o}')} END")
    return value, merged("m"), merged("r")


def _count_of(gen, node, parts):
    t = " + ".join(f"(CASE WHEN v{p} IS TRUE THEN 1 ELSE 0 END)" for p in parts)
    u = " + ".join(f"(CASE WHEN v{p} IS NULL THEN 1 ELSE 0 END)" for p in parts)
    n = int(node.count)
    if node.mode == "at_least":
        value = f"CASE WHEN ({t}) >= {n} THEN TRUE WHEN ({t}) + ({u}) < {n} THEN FALSE ELSE NULL END"
        only_true = f"({t}) >= {n}"
    else:
        value = f"CASE WHEN ({t}) > {n} THEN FALSE WHEN ({t}) + ({u}) <= {n} THEN TRUE ELSE NULL END"
        only_true = f"({t}) > {n}"

    def merged(x):
        trues = cat(*[f"CASE WHEN v{p} IS TRUE THEN {x}{p} ELSE {EMPTY} END" for p in parts])
        return f"CASE WHEN {only_true} THEN {trues} ELSE {cat(*[f'{x}{p}' for p in parts])} END"
    return value, merged("m"), merged("r")


LOGIC = {
    ir.And: _and_or("FALSE"),
    ir.Or: _and_or("TRUE"),
    ir.Not: _not,
    ir.Known: _known,
    ir.Define: _define,
    ir.IfThenElse: _if,
    ir.CountOf: _count_of,
}
"""Connective node type -> translation (operands already translated: their column numbers)."""


# ---------------------------------------------------------------- demographics, facts, review
def _whole(unit: str, b: str, d: str) -> str:
    if unit == "years":
        return (f"(year({d}) - year({b}) - CASE WHEN month({d}) < month({b}) OR (month({d}) = month({b}) "
                f"AND day({d}) < day({b})) THEN 1 ELSE 0 END)")
    return f"((year({d}) - year({b})) * 12 + (month({d}) - month({b})) - CASE WHEN day({d}) < day({b}) THEN 1 ELSE 0 END)"


def _holds_interval(op: str, value: float, upper: float | None, youngest: str, oldest: str) -> str:
    """evaluate._age_holds: does every age in [youngest, oldest] pass?"""
    if op == "!=":
        inner = _holds_interval("=", value, None, youngest, oldest)
        return f"(NOT {inner})"
    if op == "between":
        low, high = num(value), num(upper)
    else:
        v = value
        low, high = {"<": (None, num(v - 1e-9)), "<=": (None, num(v)), ">": (num(v + 1e-9), None),
                     ">=": (num(v), None), "=": (num(v), num(v))}[op]
    lo_ok = "TRUE" if low is None else f"{low} <= {youngest}"
    hi_ok = "TRUE" if high is None else f"{oldest} <= {high}"
    lo_out = "FALSE" if low is None else f"{oldest} < {low}"
    hi_out = "FALSE" if high is None else f"{youngest} > {high}"
    return f"(CASE WHEN {lo_ok} AND {hi_ok} THEN TRUE WHEN {lo_out} OR {hi_out} THEN FALSE ELSE NULL END)"


def _age(gen: Generator, node: ir.AgeTest, k: int):
    end = gen.end
    oldest = _whole(node.unit, "p.birth_lo", end)
    youngest = _whole(node.unit, f"least(p.birth_hi, {end})", end)
    value = (f"(CASE WHEN p.birth_lo IS NULL OR p.birth_lo > {end} THEN NULL ELSE "
             f"{_holds_interval(node.op, node.value, node.upper, youngest, oldest)} END)")
    missing = (f"CASE WHEN p.birth_lo IS NULL THEN ['birth_date'] WHEN p.birth_lo > {end} THEN "
               f"['birth_date ' || {show('p.birth_lo', 'p.birth_hi')} || ' is after the as-of date {gen.ctx.as_of_text}'] "
               f"ELSE ['birth_date (a full date: the year or month alone does not decide)'] END")
    return value, missing, EMPTY


def _sex(gen: Generator, node: ir.SexTest, k: int):
    test = f"(p.sex = {q(node.sex)})" if not node.negated else f"(p.sex <> {q(node.sex)})"
    return (f"(CASE WHEN p.sex IS NULL OR p.sex = 'unknown' THEN NULL ELSE {test} END)", "['sex']", EMPTY)


_SQL_OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "=", "!=": "<>"}


def _fact(gen: Generator, node: ir.FactTest, k: int):
    alias = f"f{k}"
    gen.joins.append(f"LEFT JOIN facts {alias} ON {alias}.patient_id = p.patient_id AND {alias}.name = {q(node.name)}")
    present = f"(p.has_facts AND {alias}.value_kind IS NOT NULL AND {alias}.value_kind <> 'null')"
    if node.mode == "true":
        test = f"(CASE WHEN {alias}.value_kind = 'bool' THEN {alias}.value_bool ELSE NULL END)"
    elif node.mode == "compare":
        test = (f"(CASE WHEN {alias}.value_kind = 'number' THEN {alias}.value_number {_SQL_OPS[node.op]} "
                f"{num(node.value)} ELSE NULL END)")
    elif isinstance(node.value, bool):
        equal = f"({alias}.value_bool = {'TRUE' if node.value else 'FALSE'})"
        test = f"(CASE WHEN {alias}.value_kind = 'bool' THEN {'NOT ' if node.negated else ''}{equal} ELSE NULL END)"
    else:
        stripped = f"lower(regexp_replace({alias}.value_string, '^\\s+|\\s+$', '', 'g'))"
        equal = f"({stripped} = {q(node.value)})"
        test = f"(CASE WHEN {alias}.value_kind = 'string' THEN {'NOT ' if node.negated else ''}{equal} ELSE NULL END)"
    value = f"(CASE WHEN {present} THEN {test} ELSE NULL END)"
    missing = f"CASE WHEN {present} THEN {EMPTY} ELSE [{q('fact ' + node.name)}] END"
    return value, missing, EMPTY


def _review(gen: Generator, node: ir.Review, k: int):
    return "CAST(NULL AS BOOLEAN)", EMPTY, f"[{q(node.reason)}]"


# ---------------------------------------------------------------- observations, normalised once per query
def _normalised_observations(keys: list[str]) -> str:
    """Observations of the analytes the rule set reads, as screening.patient.record._obs reads them: value in
    the catalogue unit (unit-precision rule), text result as its term, reference limits in use."""
    wanted = ", ".join(q(k) for k in keys) or "NULL"
    same = "(o.ref_unit IS NULL OR o.ref_unit = '' OR o.ref_unit = o.unit)"
    rf = {c: f"(CASE WHEN {same} THEN u.{c} ELSE r.{c} END)" for c in ("factor", "addend", "exact", "log10_factor")}
    rproblem = f"(CASE WHEN {same} THEN NULL WHEN r.code IS NULL THEN 'no conversion' ELSE r.problem END)"
    stage1 = f"""
        SELECT o.patient_id, o.seq, d.key, o.date_lo AS lo, o.date_hi AS hi, o.comparator, o.unit,
            o.value_number AS raw_value, o.ref_low AS raw_low, o.ref_high AS raw_high,
            CASE WHEN d.is_score THEN 'score' WHEN o.value_string IS NOT NULL THEN 'text'
                 WHEN o.value_bool IS NOT NULL THEN 'bool' WHEN o.value_number IS NULL THEN 'none' ELSE 'number' END AS kind,
            CASE WHEN d.is_score THEN s.text WHEN o.value_string IS NOT NULL THEN t.text
                 WHEN o.value_bool IS NOT NULL THEN (CASE WHEN o.value_bool THEN 'positive' ELSE 'negative' END) END AS text,
            d.is_score, d.dimension AS score_dimension, s.value AS score_value, s.problem AS score_problem,
            u.factor, u.addend, u.exact, u.dimension, u.problem AS unit_problem, u.no_negative,
            o.value_is_integer, o.ref_low_is_integer, o.ref_high_is_integer, u.log10_factor,
            {rf['exact']} AS ref_exact, {rf['log10_factor']} AS ref_log10_factor,
            (o.ref_low IS NOT NULL OR o.ref_high IS NOT NULL) AS has_ref, {rproblem} AS ref_conv_problem,
            {rf['factor']} AS ref_factor, {rf['addend']} AS ref_offset,
            u.problem IS NULL AND {rproblem} IS NULL AS ref_convertible
        FROM observations o JOIN dict_codes d ON d.code = o.code
        LEFT JOIN dict_units u ON u.code = o.code AND u.unit IS NOT DISTINCT FROM o.unit
        LEFT JOIN dict_ref_units r ON r.code = o.code AND r.unit IS NOT DISTINCT FROM o.unit AND r.ref_unit = o.ref_unit
        LEFT JOIN dict_texts t ON t.value_string = o.value_string
        LEFT JOIN dict_scores s ON d.is_score AND s.code = o.code AND s.unit IS NOT DISTINCT FROM o.unit
            AND s.value_number IS NOT DISTINCT FROM o.value_number AND s.value_string IS NOT DISTINCT FROM o.value_string
            AND s.value_bool IS NOT DISTINCT FROM o.value_bool AND s.value_code IS NOT DISTINCT FROM o.value_code
        WHERE d.key IN ({wanted})"""
    # the unit-precision rule once per distinct (value, spelling, conversion), joined back (values repeat)
    def distinct(x: str, cols: tuple[str, ...]) -> str:
        named = ", ".join(f"{c} AS {n}" for c, n in zip(cols, ("v", "i", "f", "a", "e", "l")))
        source = f"SELECT DISTINCT {named} FROM base WHERE {cols[0]} IS NOT NULL AND {cols[2]} IS NOT NULL"
        return conversion_stages(source, {x: ("v", "i", "f", "a", "e", "l")})

    def on(alias: str, cols: tuple[str, ...]) -> str:
        return " AND ".join(f"{alias}.{n} IS NOT DISTINCT FROM b.{c}" for c, n in zip(cols, ("v", "i", "f", "a", "e", "l")))

    val = ("raw_value", "value_is_integer", "factor", "addend", "exact", "log10_factor")
    low = ("raw_low", "ref_low_is_integer", "ref_factor", "ref_offset", "ref_exact", "ref_log10_factor")
    high = ("raw_high", "ref_high_is_integer", "ref_factor", "ref_offset", "ref_exact", "ref_log10_factor")
    converted = (f"WITH base AS ({stage1}), vc AS ({distinct('val', val)}), lc AS ({distinct('rlo', low)}), "
                 f"hc AS ({distinct('rhi', high)}) "
                 f"SELECT b.*, vc.val_we, CASE WHEN b.kind = 'number' AND b.unit_problem IS NULL THEN vc.val_c END AS converted, "
                 f"CASE WHEN b.ref_convertible AND b.kind = 'number' THEN lc.rlo_c END AS ref_low_c, "
                 f"CASE WHEN b.ref_convertible AND b.kind = 'number' THEN hc.rhi_c END AS ref_high_c "
                 f"FROM base b LEFT JOIN vc ON {on('vc', val)} LEFT JOIN lc ON {on('lc', low)} LEFT JOIN hc ON {on('hc', high)}")
    written = _w("raw_value", "value_is_integer")
    number_problem = ("CASE WHEN unit_problem IS NOT NULL THEN coalesce(chr(39) || unit || chr(39), 'None') || ' cannot be used: ' || unit_problem "
                      f"WHEN raw_value < 0 AND no_negative THEN replace({written} || ' ' || coalesce(unit, ''), '  ', ' ') "
                      "|| ' is negative, which no ' || key || ' result can be' "
                      f"WHEN isinf(converted) THEN replace({written} || ' ' || coalesce(unit, ''), '  ', ' ') "
                      "|| ' is out of range once converted' END")
    stage2 = f"""
        SELECT *, CASE kind WHEN 'score' THEN score_problem WHEN 'none' THEN 'no value recorded'
                            WHEN 'number' THEN {number_problem} END AS problem
        FROM ({converted})"""
    usable = "kind = 'number' AND problem IS NULL AND has_ref AND ref_conv_problem IS NULL"
    backwards = "(raw_low IS NOT NULL AND raw_high IS NOT NULL AND raw_low > raw_high)"
    low_ok = (f"({usable} AND raw_low IS NOT NULL AND NOT {backwards} AND raw_low > 0 "
              "AND ref_low_c <> 0 AND NOT isinf(ref_low_c))")
    high_ok = (f"({usable} AND raw_high IS NOT NULL AND NOT {backwards} AND raw_high > 0 "
               "AND ref_high_c <> 0 AND NOT isinf(ref_high_c))")
    raw_ref = "(ref_factor = factor AND ref_offset = addend AND NOT exact)"
    path = "'$.observations[' || CAST(seq AS VARCHAR) || '].reference_range'"
    low_why = (f"CASE WHEN {usable} AND raw_low IS NOT NULL AND NOT ({low_ok}) THEN "
               f"CASE WHEN {backwards} THEN {path} || ' runs backwards (low ' || {_w('raw_low', 'ref_low_is_integer')} || ' > high ' "
               f"|| {_w('raw_high', 'ref_high_is_integer')} || ')' WHEN raw_low < 0 THEN {path} || '.low is ' || {_w('raw_low', 'ref_low_is_integer')} "
               f"|| ', which cannot be a limit of normal' WHEN raw_low = 0 THEN {path} || '.low is 0, which is no lower limit of normal' "
               f"ELSE {path} || '.low is out of range once converted' END END")
    high_why = (f"CASE WHEN {usable} AND raw_high IS NOT NULL AND NOT ({high_ok}) THEN "
                f"CASE WHEN {backwards} THEN {path} || ' runs backwards (low ' || {_w('raw_low', 'ref_low_is_integer')} || ' > high ' "
                f"|| {_w('raw_high', 'ref_high_is_integer')} || ')' WHEN raw_high <= 0 THEN {path} || '.high is ' || {_w('raw_high', 'ref_high_is_integer')} "
                f"|| ', which cannot be a limit of normal' ELSE {path} || '.high is out of range once converted' END END")
    stage3 = f"""
        SELECT patient_id, seq, key, lo, hi, comparator, unit, kind, text, problem,
            CASE WHEN kind = 'score' THEN score_value WHEN kind = 'number' AND problem IS NULL THEN converted END AS value,
            CASE WHEN kind = 'score' THEN score_dimension WHEN kind = 'number' THEN dimension END AS dimension,
            CASE WHEN kind = 'score' THEN CAST(1.0 AS DOUBLE) ELSE factor END AS factor,
            CASE WHEN kind = 'score' THEN CAST(0.0 AS DOUBLE) ELSE addend END AS addend,
            raw_value,
            CASE WHEN kind = 'score' THEN 0.5 WHEN kind = 'number' AND problem IS NULL
                 THEN pow(10, least(300, greatest(-300, val_we))) * abs(factor) / 2 ELSE 0.0 END AS resolution,
            CASE WHEN {low_ok} THEN ref_low_c END AS ref_low,
            CASE WHEN {high_ok} THEN ref_high_c END AS ref_high,
            CASE WHEN {low_ok} AND {raw_ref} THEN raw_low END AS raw_ref_low,
            CASE WHEN {high_ok} AND {raw_ref} THEN raw_high END AS raw_ref_high,
            {low_why} AS ref_problem_low, {high_why} AS ref_problem_high
        FROM nobs2"""
    return f"WITH nobs2 AS ({stage2}) {stage3}"


def _w(value: str, is_integer: str) -> str:
    """A JSON number as the per-patient engine shows it (screening.patient.record.written): an integer without a
    decimal point (the double's exact value beyond 2**53), from 10**38 (beyond HUGEINT) 15 significant digits."""
    return (f"(CASE WHEN {is_integer} AND abs({value}) < 1e38 THEN CAST(CAST({value} AS HUGEINT) AS VARCHAR) "
            f"WHEN {is_integer} THEN printf('%.15g', {value}) ELSE CAST({value} AS VARCHAR) END)")


def _in_window(lo: str, hi: str, start: str, end: str) -> str:
    return (f"(CASE WHEN {lo} IS NULL THEN NULL WHEN {lo} >= {start} AND {hi} <= {end} THEN TRUE "
            f"WHEN {hi} < {start} OR {lo} > {end} THEN FALSE ELSE NULL END)")


def _interval_test(comparator: str, bound: str, op: str, low: str, high: str | None) -> str:
    """evaluate.interval_test in SQL (``comparator`` a column; op fixed by the rule)."""
    lo = {"<": None, "<=": None, ">": bound, ">=": bound}
    hi = {"<": bound, "<=": bound, ">": None, ">=": None}
    lo_open = {"<": True, "<=": True, ">": True, ">=": False}
    hi_open = {"<": True, "<=": False, ">": True, ">=": True}
    branches = []
    for c in ("<", "<=", ">", ">="):
        L, H, LO, HO = lo[c], hi[c], lo_open[c], hi_open[c]

        def lt(a, b):  # a < b with None as -inf (for L) or +inf (for H)
            return a, b

        if op == "between":
            inside = " AND ".join(x for x in ((f"{L} >= {low}" if L else "FALSE"), (f"{H} <= {high}" if H else "FALSE")))
            out = []
            if H:
                out.append(f"{H} < {low}" + (f" OR {H} = {low}" if HO else ""))
            if L:
                out.append(f"{L} > {high}" + (f" OR {L} = {high}" if LO else ""))
            expr = f"CASE WHEN {inside} THEN TRUE WHEN {' OR '.join(out) or 'FALSE'} THEN FALSE ELSE NULL END"
        elif op in ("=", "!="):
            outside = []
            if L:
                outside.append(f"{low} < {L}" + (f" OR {low} = {L}" if LO else ""))
            if H:
                outside.append(f"{low} > {H}" + (f" OR {low} = {H}" if HO else ""))
            o = " OR ".join(outside) or "FALSE"
            expr = (f"CASE WHEN {o} THEN FALSE ELSE NULL END" if op == "=" else f"CASE WHEN {o} THEN TRUE ELSE NULL END")
        elif op == "<":
            t = (f"{H} < {low}" + (f" OR {H} = {low}" if HO else "")) if H else "FALSE"
            f = f"{L} >= {low}" if L else "FALSE"
            expr = f"CASE WHEN {t} THEN TRUE WHEN {f} THEN FALSE ELSE NULL END"
        elif op == "<=":
            t = f"{H} <= {low}" if H else "FALSE"
            f = (f"{L} > {low}" + (f" OR {L} = {low}" if LO else "")) if L else "FALSE"
            expr = f"CASE WHEN {t} THEN TRUE WHEN {f} THEN FALSE ELSE NULL END"
        elif op == ">":
            t = (f"{L} > {low}" + (f" OR {L} = {low}" if LO else "")) if L else "FALSE"
            f = f"{H} <= {low}" if H else "FALSE"
            expr = f"CASE WHEN {t} THEN TRUE WHEN {f} THEN FALSE ELSE NULL END"
        else:
            t = f"{L} >= {low}" if L else "FALSE"
            f = (f"{H} < {low}" + (f" OR {H} = {low}" if HO else "")) if H else "FALSE"
            expr = f"CASE WHEN {t} THEN TRUE WHEN {f} THEN FALSE ELSE NULL END"
        branches.append(f"WHEN {comparator} = {q(c)} THEN ({expr})")
    return f"(CASE {' '.join(branches)} END)"


class _Compare:
    """evaluate.compare_obs for one LabCompare node, as SQL over a normalised observation ``o`` and patient ``p``.

    :meth:`rows` is the form the atoms use: the rows of a source with the comparison's value ``cv`` and problem
    ``pr`` as columns, computed in stages (the limits, then the operands, then the test) so that no expression
    is written out inside another (the query's text, and DuckDB's planning time, grow with each copy)."""

    def __init__(self, node: ir.LabCompare, ranges: ir.RangeTable):
        self.node = node
        self.ranges = ranges

    def limit(self, bound: ir.Bound) -> tuple[str, str]:
        """(threshold expression, missing text expression when it is NULL)."""
        if bound.kind == "value":
            return num(bound.value), "NULL"
        side = "high" if bound.kind == "ULN" else "low"
        branches = []
        for sex in ("female", "male", "other", "unknown"):
            found = self.ranges.lookup(self.node.key, sex)
            limit = None if found is None else (found[1] if side == "high" else found[0])
            branches.append(f"WHEN {q(sex)} THEN {num(limit) if limit is not None else 'NULL'}")
        found = self.ranges.lookup(self.node.key, None)
        default = None if found is None else (found[1] if side == "high" else found[0])
        fallback = f"(CASE p.sex {' '.join(branches)} ELSE {num(default) if default is not None else 'NULL'} END)"
        limit = f"(coalesce(o.ref_{side}, {fallback}) * {num(bound.value)})"
        missing = (f"{q(f'reference range ({bound.kind}) for {self.node.key}')} || "
                   f"coalesce(': ' || o.ref_problem_{side}, '')")
        return limit, missing

    def operands(self, bound: ir.Bound, limit: str, val: str = "o.value", raw: str = "o.raw_value") -> tuple[str, str]:
        if bound.kind == "value":
            if bound.source is not None:
                same = f"(o.factor = {num(bound.source.factor)} AND o.addend = {num(bound.source.offset)})"
                return (f"(CASE WHEN {same} THEN {raw} ELSE {val} END)",
                        f"(CASE WHEN {same} THEN {num(bound.raw)} ELSE {limit} END)")
            return val, limit
        side = "high" if bound.kind == "ULN" else "low"
        own = f"(o.raw_ref_{side} IS NOT NULL AND {limit} IS NOT NULL)"
        return (f"(CASE WHEN {own} THEN {raw} ELSE {val} END)",
                f"(CASE WHEN {own} THEN o.raw_ref_{side} * {num(bound.value)} ELSE {limit} END)")

    def _bounds(self) -> list[ir.Bound]:
        return [self.node.bound] + ([self.node.upper] if self.node.op == "between" else [])

    def _value(self, limits, xs, ts, val: str = "o.value", raw: str = "o.raw_value") -> str:
        """compare_obs's value, given the limits and operands (expressions or columns)."""
        node = self.node
        dim = f" WHEN o.dimension IS DISTINCT FROM {q(node.dimension)} THEN NULL" if node.dimension else ""
        if node.op == "between":
            (low, high), (x_low, x_high), (t_low, t_high) = limits, xs, ts
            raw_test = _interval_test("o.comparator", raw, "between", t_low, t_high)
            canon = _interval_test("o.comparator", val, "between", low, high)
            censored_value = f"(CASE WHEN {self._raw_both(node)} THEN {raw_test} ELSE {canon} END)"
            plain = f"({t_low} <= {x_low} AND {x_high} <= {t_high})"
            return (f"(CASE WHEN {val} IS NULL THEN NULL{dim} WHEN {low} IS NULL OR {high} IS NULL THEN NULL "
                    f"WHEN o.comparator IS NOT NULL THEN {censored_value} ELSE {plain} END)")
        (low,), (x,), (t,) = limits, xs, ts
        return (f"(CASE WHEN {val} IS NULL THEN NULL{dim} WHEN {low} IS NULL THEN NULL "
                f"WHEN o.comparator IS NOT NULL THEN {_interval_test('o.comparator', x, node.op, t, None)} "
                f"ELSE {x} {_SQL_OPS[node.op]} {t} END)")

    def _problem(self, limits) -> str:
        """compare_obs's problem, given the limits (expressions or columns)."""
        node = self.node
        unit = "coalesce(o.unit, 'None')"
        censored = (f"'reported only as ' || o.comparator || ' ' || printf('%.6g', (o.value - o.addend) / o.factor) "
                    f"|| coalesce(' ' || o.unit, '') || ', which lies on both sides of the limit'")
        dim_problem = (f" WHEN o.dimension IS DISTINCT FROM {q(node.dimension)} THEN {unit} || "
                       "' cannot be compared with the threshold''s unit'") if node.dimension else ""
        missing = "".join(f" WHEN {limit} IS NULL THEN {self.limit(bound)[1]}"
                          for limit, bound in zip(limits, self._bounds()))
        return (f"(CASE WHEN o.value IS NULL THEN coalesce(o.problem, 'a text result where a number is needed'){dim_problem}"
                f"{missing} WHEN o.comparator IS NOT NULL THEN {censored} END)")

    def sql(self) -> tuple[str, str]:
        """(value, problem) expressions of compare_obs over ``o`` and ``p`` (written out inline; :meth:`rows`
        is the staged form)."""
        bounds = self._bounds()
        limits = [self.limit(b)[0] for b in bounds]
        operands = [self.operands(b, limit) for b, limit in zip(bounds, limits)]
        return (self._value(limits, [x for x, _ in operands], [t for _, t in operands]), self._problem(limits))

    def rows(self, source: str, where: str, *, interval: bool = False) -> str:
        """The rows of ``source`` (as ``o``, with the patient ``p``) meeting ``where``: their columns plus ``cv``
        (the comparison's Kleene value) and ``pr`` (its problem). ``interval``: the source is a derived series
        whose value may be an interval [value, value_high] (evaluate._compare_interval: it decides only when
        both ends agree)."""
        bounds = self._bounds()
        limits = [f"o.lim{i}" for i in range(len(bounds))]
        first = ", ".join(f"{self.limit(b)[0]} AS lim{i}" for i, b in enumerate(bounds))
        sexed = any(b.kind != "value" for b in bounds)
        patient = " JOIN patients p ON p.patient_id = o.patient_id" if sexed else ""
        stage1 = f"SELECT o.*, {first} FROM {source} o{patient} WHERE {where}"
        variants = [("", "o.value", "o.raw_value")] + ([("_h", "o.value_high", "o.value_high")] if interval else [])
        second = []
        for suffix, val, raw in variants:
            for i, bound in enumerate(bounds):
                x, t = self.operands(bound, limits[i], val, raw)
                second += [f"{x} AS x{i}{suffix}", f"{t} AS t{i}{suffix}"]
        stage2 = f"SELECT o.*, {', '.join(second)} FROM ({stage1}) o"
        # an interval's ends are compared apart (cv_m, cv_h) and joined below into cv and pr (plain columns:
        # no `* REPLACE`, which Spark does not have)
        mine = "_m" if interval else ""
        third = [f"{self._value(limits, [f'o.x{i}{s}' for i in range(len(bounds))], [f'o.t{i}{s}' for i in range(len(bounds))], val, raw)} AS cv{s or mine}"
                 for s, val, raw in variants]
        stage3 = f"SELECT o.*, {', '.join(third)}, {self._problem(limits)} AS pr{mine} FROM ({stage2}) o"
        if not interval:
            return stage3
        between = ("'derived value lies between ' || printf('%.6g', o.value) || ' and ' || printf('%.6g', o.value_high) "
                   "|| ' depending on the age (birth_date not exact), on both sides of the limit'")
        same = "(o.value_high IS NULL OR o.cv_m IS NOT DISTINCT FROM o.cv_h)"
        return (f"SELECT o.*, (CASE WHEN {same} THEN o.cv_m END) AS cv, "
                f"(CASE WHEN {same} THEN o.pr_m ELSE {between} END) AS pr FROM ({stage3}) o")

    def _raw_both(self, node) -> str:
        """Both limits of `between` compare in the observation's own unit (evaluate: x_low is x_high is raw_value)."""
        tests = []
        for bound in (node.bound, node.upper):
            if bound.kind == "value":
                if bound.source is None:
                    return "FALSE"
                tests.append(f"(o.factor = {num(bound.source.factor)} AND o.addend = {num(bound.source.offset)})")
            else:
                side = "high" if bound.kind == "ULN" else "low"
                tests.append(f"(o.raw_ref_{side} IS NOT NULL)")
        return "(" + " AND ".join(tests) + ")"


def _missing_lab(node) -> str:
    extra = derived.missing_inputs(node.key) if isinstance(node, ir.LabCompare) and node.key in derived.DERIVATIONS else ""
    if node.window is not None:
        return f"{node.label} result within {node.window}{extra}"
    return f"{node.label} result{extra}"


def _lab_item(label: str, problem: str) -> str:
    """evaluate._atom_missing for one result: the problem alone when it is about the reference range."""
    return (f"(CASE WHEN {problem} IS NULL THEN NULL WHEN {problem} LIKE 'reference range%' THEN {problem} "
            f"ELSE {q(label + ' result of ')} || {show('o.lo', 'o.hi')} || ': ' || {problem} END)")


def _uncertain_item(label: str, alias: str = "c") -> str:
    """evaluate._and_date in SQL: the missing item of a result whose date may lie outside the window, naming what
    else is wrong with it when its value cannot be used either (``alias``: a row with lo, hi, cv and pr)."""
    problem = f"(CASE WHEN {alias}.cv IS NULL THEN {alias}.pr END)"
    combined = (f"(CASE WHEN {problem} IS NULL THEN {q(UNCERTAIN_DATE)} "
                f"ELSE {problem} || {q('; ' + UNCERTAIN_DATE)} END)")
    return (f"(CASE WHEN {problem} LIKE 'reference range%' THEN {combined} ELSE {q(label + ' result of ')} || "
            f"{show(alias + '.lo', alias + '.hi')} || ': ' || {combined} END)")


def _lab_atom(gen: Generator, name: str, body: str, label: str, no_result: str, found: str):
    """A lab atom decided per patient in the table ``name`` (``body``): NULL without an observations list,
    ``no_result`` as the missing item when no row of it reached the patient, else ``found`` (a list)."""
    gen.ctes.append((name, body))
    gen.joins.append(f"LEFT JOIN {name} ON {name}.patient_id = p.patient_id")
    value = f"(CASE WHEN NOT p.has_observations THEN NULL ELSE {name}.v END)"
    missing = (f"(CASE WHEN NOT p.has_observations THEN [{q(label + ': no observations provided')}] "
               f"WHEN {name}.patient_id IS NULL THEN [{q(no_result)}] ELSE {found} END)")
    return value, missing, EMPTY


def _lab_compare(gen: Generator, node: ir.LabCompare, k: int):
    gen.uses_obs = True
    gen.plan.keys.add(node.key)
    start, end = gen.start(node.window), gen.end
    source = _lab_source(gen, node.key, start, end)
    measured = node.key not in derived.DERIVATIONS
    compared = _Compare(node, gen.ctx.ranges).rows(source, f"o.key = {q(node.key)} AND (o.lo IS NULL OR o.lo <= {end})",
                                                    interval=not measured)
    inside = _in_window("o.lo", "o.hi", start, end)
    rows = (f"SELECT o.patient_id, o.seq, o.lo, o.hi, o.value AS val, o.resolution AS res, {inside} AS ins, "
            f"o.cv, o.pr, {_lab_item(node.label, 'o.pr')} AS item FROM ({compared}) o")
    name = f"a{k}"
    if node.selector == "latest":
        gen.ctes.append((f"{name}r", rows))
        ranked = (f"SELECT *, row_number() OVER (PARTITION BY patient_id ORDER BY hi DESC NULLS LAST, lo DESC NULLS LAST, "
                  f"seq) AS rn FROM {name}r")
        gen.ctes.append((f"{name}s", ranked))
        uncertain = _uncertain_item(node.label)
        tie = (q(f"{node.label} result of ") + f" || {show('c.lo', 'c.hi')} || "
               "': which result is the latest depends on a date known only to the month or year'")
        # the patients whose latest result has a rival: an older one whose dates overlap it, with another answer
        gen.ctes.append((f"{name}x", f"SELECT c.patient_id FROM {name}s c JOIN {name}s r ON r.patient_id = c.patient_id "
                                     f"AND r.rn > 1 AND r.hi IS NOT NULL AND r.hi >= c.lo AND r.ins IS NOT FALSE "
                                     f"AND r.cv IS DISTINCT FROM c.cv WHERE c.rn = 1 GROUP BY c.patient_id"))
        body = f"""
            SELECT c.patient_id,
                CASE WHEN c.ins IS FALSE THEN NULL WHEN c.ins IS NULL THEN NULL WHEN c.cv IS NULL THEN NULL
                     WHEN x.patient_id IS NOT NULL THEN NULL ELSE c.cv END AS v,
                CASE WHEN c.ins IS FALSE THEN [{q(_missing_lab(node))}] WHEN c.ins IS NULL THEN (CASE WHEN c.cv IS NULL THEN [{uncertain}] ELSE {EMPTY} END)
                     WHEN c.cv IS NULL THEN {lst('c.item')}
                     WHEN x.patient_id IS NOT NULL THEN [{tie}] ELSE {EMPTY} END AS m
            FROM {name}s c LEFT JOIN {name}x x ON x.patient_id = c.patient_id
            WHERE c.rn = 1"""
    else:
        every = node.selector == "every"
        skip = "c.cv IS TRUE" if every else "c.cv IS FALSE"
        kept = f"(c.ins IS TRUE OR (c.ins IS NULL AND NOT ({skip})))"
        ev = "CASE WHEN c.ins IS NULL THEN NULL ELSE c.cv END"
        uncertain = f"CASE WHEN c.ins IS NULL THEN {_uncertain_item(node.label)} ELSE c.item END"
        gen.ctes.append((f"{name}r", rows))
        if every:
            value = ("CASE WHEN bool_or(ev IS FALSE) THEN FALSE WHEN bool_or(ev IS NULL) THEN NULL ELSE TRUE END")
        else:
            value = ("CASE WHEN bool_or(ev IS TRUE) THEN TRUE WHEN bool_or(ev IS NULL) THEN NULL ELSE FALSE END")
        gen.ctes.append((f"{name}k", f"SELECT c.patient_id, c.seq, c.lo, c.hi, c.val, c.res, {ev} AS ev, "
                                     f"{uncertain} AS item FROM {name}r c WHERE {kept}"))
        body = (f"SELECT patient_id, {value} AS v, "
                f"coalesce(list(item) FILTER (WHERE ev IS NULL AND item IS NOT NULL), {EMPTY}) AS m "
                f"FROM {name}k GROUP BY patient_id")
        need = node.occasions or 1
        if need > 1 and not every:
            body = _occasions(node, name, need)
    return _lab_atom(gen, name, body, node.label, _missing_lab(node), f'{name}.m')


OCCASION_RESULTS = "list_sort(list(struct_pack(seq := seq, lo := lo, hi := hi, val := val, res := res, ev := ev, item := item)))"
"""A group's results as the occasions fold reads them, sorted after (by seq, the struct's first field): an
ordered aggregate costs a sort per group."""


def _occasions_folded(label: str, source: str, keys: str) -> str:
    """The results of ``source`` folded into occasions (column ``k``), by ``keys`` (a patient, or a patient's
    anchor window): the fold runs within each group of results sharing their dates (results without a date are
    each an occasion of their own), and only for the groups of more than one result."""
    groups = (f"SELECT {keys}, {OCCASION_RESULTS} AS l FROM {source} "
              f"GROUP BY {keys}, lo, hi, (CASE WHEN lo IS NULL THEN seq END)")
    return (f"SELECT {keys}, unnest(CASE WHEN len(l) = 1 THEN l ELSE list_reduce(l, lambda acc, x: "
            f"{_occasion_step(label)}, list_filter(l, lambda y: false)) END) AS k FROM ({groups})")


def _occasion_step(label: str) -> str:
    """The ``list_reduce`` step of the occasions fold (evaluate's occasions): a result that may be the same specimen
    as one kept (same dates and outcome, values within the written precision) is dropped; one of a month or year
    that might be another specimen is kept once, saying so."""
    same = ("(k.lo IS NOT NULL AND k.lo = x.lo AND k.hi = x.hi AND k.ev IS NOT DISTINCT FROM x.ev "
            "AND k.val IS NOT NULL AND x.val IS NOT NULL AND abs(x.val - k.val) <= greatest(x.res, k.res) * (1 + 1e-9))")
    another = (f"{q(label + ' result of ')} || {show('x.lo', 'x.hi')} || "
               "': may be another specimen than a result of the same month or year'")
    collapsed = ("struct_pack(seq := x.seq, lo := x.lo, hi := x.hi, val := x.val, res := x.res, ev := CAST(NULL AS BOOLEAN), "
                 f"item := {another})")
    return (f"CASE WHEN NOT coalesce(list_bool_or(list_transform(acc, lambda k: {same})), FALSE) THEN list_append(acc, x) "
            f"WHEN x.lo IS DISTINCT FROM x.hi AND x.ev IS NOT FALSE THEN list_append(acc, {collapsed}) ELSE acc END")


def _occasions(node: ir.LabCompare, name: str, need: int) -> str:
    """evaluate.lab_compare for `on at least N occasions`: results collapsed into occasions (evaluate._occasions,
    a fold over the results newest first), then counted; false only when evaluate._ruled_out says so.

    Two results can be the same occasion only when both carry the same dates (lo, hi): the fold runs within each
    group of results sharing them (results without a date are each an occasion of their own), and only for the
    few groups of more than one result; the occasions are then counted with plain aggregates."""
    folded = _occasions_folded(node.label, f"{name}k", "patient_id")
    counted = ("SELECT patient_id, count(*) FILTER (WHERE k.ev IS TRUE) AS t, count(*) FILTER (WHERE k.ev IS NULL) AS u, "
               "count(*) FILTER (WHERE k.ev IS NOT FALSE) AS pending, "
               "coalesce(bool_or(k.hi IS NULL) FILTER (WHERE k.ev IS NOT FALSE), FALSE) AS undated, "
               "max(k.hi) FILTER (WHERE k.ev IS NOT FALSE) AS latest, "
               "max(k.lo) FILTER (WHERE k.ev IS FALSE) AS last_false, "
               f"coalesce(list(k.item ORDER BY k.hi DESC NULLS LAST, k.lo DESC NULLS LAST, k.seq) "
               f"FILTER (WHERE k.ev IS NULL AND k.item IS NOT NULL), {EMPTY}) AS items "
               f"FROM ({folded}) GROUP BY patient_id")
    ruled_out = ("(CASE WHEN pending = 0 THEN TRUE WHEN undated THEN FALSE "
                 "ELSE coalesce(last_false > latest, FALSE) END)")
    repeat = f"a repeat {node.label} result" + (f" within {node.window}" if node.window is not None else "")
    return (f"SELECT patient_id, CASE WHEN t >= {need} THEN TRUE WHEN t + u >= {need} THEN NULL "
            f"WHEN {ruled_out} THEN FALSE ELSE NULL END AS v, "
            f"CASE WHEN t >= {need} THEN {EMPTY} WHEN t + u < {need} AND NOT {ruled_out} "
            f"THEN list_concat([{q(repeat)}], items) ELSE items END AS m FROM ({counted})")


def _lab_text(gen: Generator, node: ir.LabText, k: int):
    gen.uses_obs = True
    gen.plan.keys.add(node.key)
    index = len(gen.plan.lab_texts)
    gen.plan.lab_texts.append(node)
    start, end = gen.start(node.window), gen.end
    uln = _Compare(ir.LabCompare(node.key, node.label, None, None, "latest", ">", ir.Bound("ULN", 1.0, "ULN"), None,
                                 None, None, span=node.span), gen.ctx.ranges)
    limit, limit_missing = uln.limit(ir.Bound("ULN", 1.0, "ULN"))
    above = f"(CASE WHEN o.comparator IS NULL THEN o.value > {limit} ELSE {_interval_test('o.comparator', 'o.value', '>', limit, None)} END)"
    censored = (f"'reported only as ' || o.comparator || ' ' || printf('%.6g', (o.value - o.addend) / o.factor) "
                f"|| coalesce(' ' || o.unit, '') || ', which lies on both sides of the limit'")
    numeric_ok = node.op == "is" and node.value in ("positive", "negative")
    want_positive = "TRUE" if node.value == "positive" else "FALSE"
    if numeric_ok:
        numeric = (f"WHEN o.value IS NOT NULL THEN (CASE WHEN {limit} IS NULL OR {above} IS NULL THEN NULL "
                   f"ELSE ({above} = {want_positive}) <> {'TRUE' if node.negated else 'FALSE'} END)")
        numeric_problem = (f"WHEN o.value IS NOT NULL THEN (CASE WHEN {limit} IS NULL THEN {limit_missing} "
                           f"WHEN {above} IS NULL THEN {censored} END)")
    else:
        numeric = numeric_problem = ""
    other = "'a numeric result where a grade is needed'" if node.op != "is" else "'a numeric result where a text result is needed'"
    value = (f"(CASE WHEN o.text IS NOT NULL THEN lt.v {numeric} ELSE NULL END)")
    problem = (f"(CASE WHEN o.text IS NOT NULL THEN lt.problem {numeric_problem} "
               f"WHEN o.text IS NULL THEN coalesce(o.problem, {other}) END)")
    if not numeric_ok:
        problem = f"(CASE WHEN o.text IS NOT NULL THEN lt.problem ELSE coalesce(o.problem, {other}) END)"
    inside = _in_window("o.lo", "o.hi", start, end)
    name = f"a{k}"
    rows = (f"SELECT o.patient_id, o.seq, o.lo, o.hi, {inside} AS ins, {value} AS cv, {problem} AS pr "
            f"FROM {gen.results(node.key)} o JOIN patients p ON p.patient_id = o.patient_id LEFT JOIN dict_lt{index} lt ON lt.text = o.text "
            f"WHERE o.key = {q(node.key)} AND (o.lo IS NULL OR o.lo <= {end})")
    gen.ctes.append((f"{name}r", rows))
    ev = "(CASE WHEN ins IS NULL AND cv IS NOT FALSE THEN NULL ELSE cv END)"
    if node.selector == "latest":
        ranked = (f"SELECT *, {ev} AS ev, row_number() OVER (PARTITION BY patient_id ORDER BY hi DESC NULLS LAST, "
                  f"lo DESC NULLS LAST, seq) AS rn FROM {name}r")
        gen.ctes.append((f"{name}k", f"SELECT * FROM ({ranked}) WHERE rn = 1 AND ins IS NOT FALSE"))
    else:
        gen.ctes.append((f"{name}k", f"SELECT *, {ev} AS ev, row_number() OVER (PARTITION BY patient_id ORDER BY "
                                     f"hi DESC NULLS LAST, lo DESC NULLS LAST, seq) AS rn FROM {name}r WHERE ins IS NOT FALSE"))
    if node.selector == "every":
        agg = "CASE WHEN bool_or(ev IS FALSE) THEN FALSE WHEN bool_or(ev IS NULL) THEN NULL ELSE TRUE END"
    else:
        agg = "CASE WHEN bool_or(ev IS TRUE) THEN TRUE WHEN bool_or(ev IS NULL) THEN NULL ELSE FALSE END"
    # the problem of the first result whose value is the answer (evaluate: `decisive`), when the answer is unknown
    # (a struct, so that a first unknown result without a problem is not skipped for a later one with one)
    when = f"(CASE WHEN lo IS NULL THEN 'undated' ELSE {show('lo', 'hi')} END)"
    dated = (f"(CASE WHEN ins IS NULL AND cv IS NOT FALSE AND pr IS NULL THEN {q(node.label + ' result of ')} || "
             f"{when} || ': date uncertain relative to the window' "
             f"WHEN ins IS NULL AND cv IS NULL THEN pr || '; its date (' || {when} || ') is uncertain relative to the "
             f"window' ELSE pr END)")
    body = (f"SELECT patient_id, {agg} AS v, "
            f"struct_extract(arg_min(struct_pack(p := {dated}), rn) FILTER (WHERE ev IS NULL), 'p') AS pr "
            f"FROM {name}k GROUP BY patient_id")
    return _lab_atom(gen, name, body, node.label, _missing_lab(node), lst(f'{name}.pr'))


# ---------------------------------------------------------------- records
def _active_sql(kind: str, as_of: str, e: str = "e") -> str:
    status = f"lower({e}.status)"
    ended = ", ".join(q(s) for s in _ENDED)
    active = ", ".join(q(s) for s in _ACTIVE)
    tail = "FALSE" if kind in _POINT_EVENTS else "NULL"
    return (f"(CASE WHEN {e}.end_lo IS NOT NULL THEN (CASE WHEN {e}.end_hi < {as_of} THEN FALSE "
            f"WHEN {e}.end_lo >= {as_of} THEN (CASE WHEN {e}.status IS NULL OR {e}.status = '' THEN TRUE "
            f"ELSE {status} NOT IN ({ended}) END) ELSE NULL END) "
            f"WHEN {status} IN ({active}) THEN TRUE WHEN {status} IN ({ended}) THEN FALSE ELSE {tail} END)")


def _overlaps_sql(kind: str, active: str, start: str, end: str, e: str = "e") -> str:
    s_lo = f"coalesce({e}.start_lo, DATE '0001-01-01')"
    s_hi = f"coalesce({e}.start_hi, {end})"
    if kind in _POINT_EVENTS:
        e_lo = f"(CASE WHEN {e}.end_lo IS NOT NULL THEN {e}.end_lo ELSE {s_lo} END)"
        e_hi = f"(CASE WHEN {e}.end_lo IS NOT NULL THEN {e}.end_hi ELSE {s_hi} END)"
    else:
        forever = "DATE '9999-12-31'"
        e_lo = (f"(CASE WHEN {e}.end_lo IS NOT NULL THEN {e}.end_lo WHEN {active} IS TRUE THEN {forever} ELSE {s_lo} END)")
        e_hi = (f"(CASE WHEN {e}.end_lo IS NOT NULL THEN {e}.end_hi WHEN {active} IS TRUE THEN {forever} "
                f"WHEN {active} IS NULL THEN {forever} ELSE {end} END)")
    return (f"(CASE WHEN {s_hi} <= {end} AND {e_lo} >= {start} THEN TRUE "
            f"WHEN {s_lo} > {end} OR {e_hi} < {start} THEN FALSE ELSE NULL END)")


def _field_value(gen: Generator, kind: str, name: str, e: str = "e") -> tuple[str, str]:
    """(join clause, alias) of one extra field of the record e."""
    gen.counter += 1
    alias = f"rf{gen.counter}"
    join = (f"LEFT JOIN record_fields {alias} ON {alias}.patient_id = {e}.patient_id AND {alias}.kind = {q(kind)} "
            f"AND {alias}.seq = {e}.seq AND {alias}.name = {q(name)}")
    return join, alias


_NUMERIC_TEXT = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)\s*$"

FIELD_COLUMNS = {"display": "e.display", "status": "nullif(lower(e.status), '')"}
"""Fields an Entry reads from its own columns (Entry.field), not from record_fields, as SQL over the record e."""


def field_column(kind: str, name: str) -> str | None:
    """The column of the store holding field ``name`` of a ``kind`` record as Entry.field gives it (SQL over the
    record e), or None when the field is in record_fields. ``verification`` is a column of every record kind and
    ``investigational`` of medications, both as written (Entry.field gives the written value; the record test's own
    verification rule reads its normalised form)."""
    if name in FIELD_COLUMNS:
        return FIELD_COLUMNS[name]
    if name == "verification" or (name == "investigational" and kind == "medications"):
        return f"e.{name}"
    return None


def _field_set(gen: Generator, kind: str, qualifier, joins: list[str]) -> tuple[str, str]:
    """ir.CodeQualifier (``with FIELD in / not in VALUESET``, ``caused by KIND X``) and ir.TextSetQualifier (``with
    FIELD in ("a", "b")``): the qualifier's own test over each distinct JSON value of the field, in a dictionary
    table (dict_cf<i>) joined on the record's value."""
    name = qualifier.field_name
    index = len(gen.plan.code_fields)
    gen.plan.code_fields.append((kind, name, qualifier))
    column = field_column(kind, name)
    if column is not None:
        value_json = f"coalesce(CAST(to_json({column}) AS VARCHAR), 'null')"
    else:
        join, alias = _field_value(gen, kind, name)
        joins.append(join)
        value_json = f"coalesce({alias}.value_json, 'null')"
    joins.append(f"LEFT JOIN dict_cf{index} cf{index} ON cf{index}.value_json = {value_json}")
    return f"cf{index}.v", f"cf{index}.why"



def _qualifier(gen: Generator, kind: str, qualifier, joins: list[str]) -> tuple[str, str]:
    """(Kleene value, reason when unknown) of one qualifier on record e."""
    if isinstance(qualifier, ir.OtherThan):
        # ir.OtherThan.test: a record whose codes cannot be read, or that the terminology cannot place, is unknown
        index = gen.matcher(qualifier.matcher)
        value = f"(CASE WHEN NOT e.dc_has_codes THEN NULL ELSE NOT e.dc_m{index} END)"
        reason = (f"(CASE WHEN e.dc_has_codes THEN {q(f'whether it is other than {qualifier.matcher.name} cannot be told (')} "
                  f"|| coalesce(e.dc_w{index}, 'terminology') || ')' ELSE {q(qualifier.unknown_reason(None))} END)")
        return value, reason
    if isinstance(qualifier, ir.DoseQualifier):
        if not any(j.startswith("LEFT JOIN dict_doses") for j in joins):
            on = " AND ".join(f"dd.{c} IS NOT DISTINCT FROM e.{c}" for c in DOSE_COLUMNS)
            joins.append(f"LEFT JOIN dict_doses dd ON {on}")
        amount = "dd.daily" if qualifier.per == "day" else "dd.per_dose"
        problem = "dd.daily_problem" if qualifier.per == "day" else "dd.per_dose_problem"
        fallback = "daily dose not recorded" if qualifier.per == "day" else "dose not recorded"
        if qualifier.op == "between":
            test = f"({num(qualifier.value)} <= {amount} AND {amount} <= {num(qualifier.upper)})"
        else:
            test = f"({amount} {_SQL_OPS[qualifier.op]} {num(qualifier.value)})"
        value = f"(CASE WHEN NOT dd.recorded OR {amount} IS NULL THEN NULL ELSE {test} END)"
        path = "'$.medications[' || CAST(e.seq AS VARCHAR) || ']'"
        reason = (f"(CASE WHEN NOT dd.recorded THEN 'dose not recorded' ELSE "
                  f"coalesce(replace({problem}, {q(DOSE_PATH)}, {path}), {q(fallback)}) END)")
        return value, reason
    name = qualifier.field_name
    if isinstance(qualifier, (ir.CodeQualifier, ir.TextSetQualifier)):
        return _field_set(gen, kind, qualifier, joins)
    if name in ("display", "status", "verification") or (name == "investigational" and kind == "medications"):
        column = {"display": "e.display", "status": "nullif(lower(e.status), '')", "verification": "e.verification",
                  "investigational": "e.investigational"}[name]
        if name == "investigational":
            kind_sql = "(CASE WHEN e.investigational IS NULL THEN NULL ELSE 'bool' END)"
            string = "NULL"
            number = "NULL"
            text = "(CASE WHEN e.investigational THEN 'True' ELSE 'False' END)"
        else:
            kind_sql = f"(CASE WHEN {column} IS NULL THEN NULL ELSE 'string' END)"
            string = text = column
            number = "NULL"
        shown = f"'''' || {text} || ''''"
    else:
        join, alias = _field_value(gen, kind, name)
        joins.append(join)
        kind_sql = f"(CASE WHEN {alias}.value_kind = 'null' THEN NULL ELSE {alias}.value_kind END)"
        string = f"{alias}.value_string"
        number = f"{alias}.value_number"
        text = (f"(CASE {alias}.value_kind WHEN 'string' THEN {alias}.value_string WHEN 'bool' THEN "
                f"(CASE WHEN {alias}.value_bool THEN 'True' ELSE 'False' END) ELSE {alias}.value_json END)")
        shown = f"(chr(39) || {text} || chr(39))"
    if qualifier.numeric:
        as_number = (f"(CASE WHEN {kind_sql} = 'number' THEN {number} WHEN {kind_sql} = 'string' AND "
                     f"regexp_full_match({string}, {q(_NUMERIC_TEXT)}) THEN CAST(trim({string}) AS DOUBLE) END)")
        value = (f"(CASE WHEN {kind_sql} IS NULL OR {as_number} IS NULL THEN NULL "
                 f"ELSE {as_number} {_SQL_OPS[qualifier.op]} {num(qualifier.value)} END)")
        reason = (f"(CASE WHEN {kind_sql} IS NULL THEN {q(name + ' not recorded')} "
                  f"ELSE {q(name + ' ')} || {shown} || ' is not a number' END)")
        return value, reason
    wanted = qualifier.value
    if qualifier.op in ("=", "!="):
        stripped = f"lower(regexp_replace({text}, '^\\s+|\\s+$', '', 'g'))"
        test = f"({stripped} {'=' if qualifier.op == '=' else '<>'} {q(wanted.strip().lower())})"
    elif qualifier.op == "contains":
        test = f"(strpos(lower({text}), {q(wanted.lower())}) > 0)"
    else:
        test = f"regexp_matches({text}, {q(wanted)})"
    value = f"(CASE WHEN {kind_sql} IS NULL THEN NULL ELSE {test} END)"
    return value, q(name + " not recorded")


_START_NAMES = {"conditions": "onset date", "allergies": "onset date", "medications": "start date",
                "procedures": "date", "immunizations": "date"}
_NEVER = "DATE '0001-01-01'"  # evaluate's NEVER: before every date a record can carry


def _before(op: str, lo: str, hi: str, c_lo: str, c_hi: str) -> str:
    """evaluate._before in SQL."""
    true, false = {"at_least": (f"{hi} <= {c_lo}", f"{lo} > {c_hi}"), "more_than": (f"{hi} < {c_lo}", f"{lo} >= {c_hi}"),
                   "at_most": (f"{lo} >= {c_hi}", f"{hi} < {c_lo}"), "less_than": (f"{lo} > {c_hi}", f"{hi} <= {c_lo}")}[op]
    return f"(CASE WHEN {true} THEN TRUE WHEN {false} THEN FALSE ELSE NULL END)"


def _moved_back(day_sql: str, duration: ir.Duration) -> str:
    unit = {"days": "DAY", "weeks": "DAY", "months": "MONTH", "years": "YEAR"}[duration.unit]
    amount = duration.amount * (7 if duration.unit == "weeks" else 1)
    return f"CAST({day_sql} - INTERVAL {int(amount)} {unit} AS DATE)"


def _timing(gen: Generator, kind: str, timing: ir.RecordTiming) -> tuple[str, str]:
    """evaluate.record_timing for record e: (Kleene value, why it is unknown)."""
    as_of = gen.end
    cutoff = day(gen.ctx.window_start(timing.duration))
    said = str(timing).replace("'", "''")
    start_name = _START_NAMES[kind]
    recorded = kind in ("conditions", "allergies")
    s_lo = (f"(CASE WHEN e.start_lo IS NOT NULL THEN e.start_lo "
            f"{'WHEN e.recorded_hi IS NOT NULL THEN ' + _NEVER if recorded else ''} END)")
    s_hi = (f"(CASE WHEN e.start_lo IS NOT NULL THEN e.start_hi "
            f"{'WHEN e.recorded_hi IS NOT NULL THEN e.recorded_hi' if recorded else ''} END)")
    shown_start = (f"(CASE WHEN {s_lo} = {_NEVER} THEN 'on or before ' || {show(s_hi, s_hi)} "
                   f"ELSE {show(s_lo, s_hi)} END)")
    no_start = f"'{start_name} not recorded (needed for ''{said}'')'"
    active = _active_sql(kind, as_of)
    if timing.event == "start":
        value = f"(CASE WHEN {s_lo} IS NULL THEN NULL ELSE {_before(timing.op, s_lo, s_hi, cutoff, cutoff)} END)"
        why = f"(CASE WHEN {s_lo} IS NULL THEN {no_start} ELSE '{start_name} ' || {shown_start} || ' does not decide ''{said}''' END)"
        return value, why
    if timing.event == "end":
        decided = _before(timing.op, "e.end_lo", f"least(e.end_hi, {as_of})", cutoff, cutoff)
        value = (f"(CASE WHEN e.end_lo IS NULL THEN (CASE WHEN {active} IS TRUE THEN FALSE ELSE NULL END) "
                 f"WHEN e.end_lo > {as_of} THEN FALSE WHEN {decided} IS TRUE AND e.end_hi > {as_of} THEN NULL "
                 f"ELSE {decided} END)")
        why = (f"(CASE WHEN e.end_lo IS NULL THEN (CASE WHEN {active} IS FALSE THEN 'end date not recorded (status ' "
               f"|| coalesce(nullif(lower(e.status), ''), 'None') || '; needed for ''{said}'')' "
               f"ELSE 'status and end date not recorded (needed for ''{said}'')' END) "
               f"ELSE 'end date ' || {show('e.end_lo', 'e.end_hi')} || ' does not decide ''{said}''' END)")
        return value, why
    if timing.event == "unchanged":
        decided = _before(timing.op, s_lo, s_hi, cutoff, cutoff)
        value = (f"(CASE WHEN {s_lo} IS NULL THEN NULL WHEN {active} IS FALSE THEN FALSE WHEN {decided} IS FALSE THEN FALSE "
                 f"WHEN {active} IS NULL THEN NULL ELSE {decided} END)")
        why = (f"(CASE WHEN {s_lo} IS NULL THEN {no_start} WHEN {active} IS NULL THEN "
               f"'status and end date not recorded (needed for ''{said}'': still taken?)' "
               f"ELSE '{start_name} ' || {shown_start} || ' does not decide ''{said}''' END)")
        return value, why
    end_lo = f"(CASE WHEN e.end_lo IS NOT NULL THEN least(e.end_lo, {as_of}) WHEN {active} IS TRUE THEN {as_of} ELSE {s_lo} END)"
    end_hi = f"(CASE WHEN e.end_lo IS NOT NULL THEN least(e.end_hi, {as_of}) ELSE {as_of} END)"
    decided = _before(timing.op, s_lo, s_hi, _moved_back(end_lo, timing.duration), _moved_back(end_hi, timing.duration))
    value = f"(CASE WHEN {s_lo} IS NULL OR e.start_lo IS NULL THEN NULL ELSE {decided} END)"
    span = (f"(CASE WHEN e.start_lo IS NOT NULL THEN {show('e.start_lo', 'e.start_hi')} ELSE '?' END) || ' to ' || "
            f"(CASE WHEN e.end_lo IS NOT NULL THEN {show('e.end_lo', 'e.end_hi')} ELSE 'now' END)")
    why = (f"(CASE WHEN {s_lo} IS NULL OR e.start_lo IS NULL THEN {no_start} "
           f"WHEN e.end_lo IS NULL AND {active} IS NOT TRUE THEN (CASE WHEN {active} IS FALSE THEN 'end date not recorded' "
           f"ELSE 'status and end date not recorded' END) || ' (needed for ''{said}'')' "
           f"ELSE 'dates ' || {span} || ' do not decide ''{said}''' END)")
    return value, why


def _records(kind: str) -> str:
    """A record table as the per-patient loader reads it: a procedure without an end ends on its date."""
    if kind != "procedures":
        return kind
    return ("(SELECT * REPLACE (CASE WHEN end_lo IS NULL THEN start_lo ELSE end_lo END AS end_lo, "
            "CASE WHEN end_lo IS NULL THEN start_hi ELSE end_hi END AS end_hi) FROM procedures)")


def _record_rows(gen: Generator, node: ir.RecordTest) -> tuple[str, str]:
    """(the rows of node.kind with each record's Kleene value v and its reasons, the record's name) for record_test."""
    value, reasons, joins, member, name = _record_parts(gen, node)
    kind, as_of = node.kind, gen.end
    never = ", ".join(q(s) for s in _NEVER_HAPPENED)
    rows = (f"SELECT e.patient_id, e.seq, e.code, e.display, e.start_lo, e.start_hi, e.unreadable, e.end_lo, e.end_hi, "
            f"e.recorded_hi, {_active_sql(kind, as_of)} AS act, ({value}) AS v, "
            f"{reasons} AS reasons FROM {gen.records(kind)} e {' '.join(joins)} "
            f"WHERE NOT ({member} IS FALSE AND e.unreadable IS NULL) AND (e.status IS NULL OR lower(e.status) NOT IN ({never})) "
            f"AND (e.start_lo IS NULL OR e.start_lo <= {as_of})")
    return rows, name("x.reasons")


def _record_parts(gen: Generator, node: ir.RecordTest):
    """The parts of record_test over one record ``e`` of node.kind: (Kleene value, list of reasons, joins it needs,
    the value-set membership, how a record is named given its reasons column)."""
    kind = node.kind
    index = gen.matcher(node.matcher)
    as_of = gen.end
    start = gen.start(node.window)
    joins = []
    member = f"e.dc_m{index}"
    conditions: list[tuple[str, str]] = []  # (Kleene value, reason when NULL)
    event = node.window is not None and node.status is None and kind == "conditions"
    active = _active_sql(kind, as_of) if (node.status or node.window) and not event else "NULL"
    if node.status == "active" and node.window is None:
        conditions.append((active, q("status and end date not recorded")))
    elif node.status in ("inactive", "resolved"):
        conditions.append((f"(NOT {active})", q("status and end date not recorded")))
    conditions.append((f"(CASE WHEN e.start_hi IS NOT NULL AND e.start_hi > {as_of} THEN NULL ELSE TRUE END)",
                       q("its date may fall after the as-of date")))
    if event:
        lo = "coalesce(e.start_lo, e.recorded_lo)"
        hi = "(CASE WHEN e.start_lo IS NOT NULL THEN e.start_hi ELSE e.recorded_hi END)"
        conditions.append((_in_window(lo, hi, start, as_of),
                           f"(CASE WHEN {lo} IS NULL THEN {q(f'onset date not recorded (needed to place it within {node.window})')} "
                           f"ELSE {q(f'dates not precise enough to place it within {node.window}')} END)"))
    elif node.window is not None:
        conditions.append((_overlaps_sql(kind, active, start, as_of),
                           q(f"dates not precise enough to place it within {node.window}")))
    for qualifier in node.qualifiers:
        conditions.append(_qualifier(gen, kind, qualifier, joins))
    for timing in node.timing:
        conditions.append(_timing(gen, kind, timing))
    verification = "lower(regexp_replace(e.verification, '^\\s+|\\s+$', '', 'g'))"
    conditions.append((f"(CASE WHEN e.verification IS NOT NULL AND {verification} <> '' AND {verification} <> 'confirmed' "
                       f"THEN NULL ELSE TRUE END)", f"'verification status ' || {verification} || ', not confirmed'"))
    terminology = (f"(CASE WHEN {member} IS NULL THEN {q(TERMINOLOGY_REASON + ' ' + node.matcher.name)} || "
                   f"(CASE WHEN e.dc_w{index} LIKE 'without %' THEN ' ' ELSE ': ' END) || e.dc_w{index} "
                   f"ELSE e.unreadable || ': ' || {q(TERMINOLOGY_REASON + ' ' + node.matcher.name)} END)")
    conditions.append((f"(CASE WHEN {member} IS TRUE THEN TRUE ELSE NULL END)", terminology))
    value = " AND ".join(c for c, _ in conditions)
    reasons = lst(*[f"CASE WHEN {c} IS NULL THEN {r} END" for c, r in conditions])
    noun = q(node.noun + " ")

    def name(reasons_column: str) -> str:
        displayed = f"list_bool_or(list_transform({reasons_column}, lambda r: starts_with(r, {q(TERMINOLOGY_REASON)})))"
        return (f"(CASE WHEN x.code IS NOT NULL THEN (CASE WHEN {displayed} AND x.display IS NOT NULL THEN "
                f"{noun} || x.display || ' (' || x.code || ')' ELSE {noun} || x.code END) "
                f"ELSE {q(node.noun)} || coalesce(' ' || chr(39) || x.display || chr(39), '') || "
                f"' ($.{kind}[' || CAST(x.seq AS VARCHAR) || '])' END)")
    return value, reasons, joins, member, name


def _record_test(gen: Generator, node: ir.RecordTest, k: int):
    """evaluate.record_test: some record of the kind meets the test (TRUE), some may (NULL), none does (FALSE).
    Every record test of one kind is decided in one pass over its records (:func:`_record_pass`); this atom
    reads its two columns."""
    value, reasons, joins, member, name = _record_parts(gen, node)
    group = gen.record_tests.setdefault(node.kind, [])
    group.append((k, value, reasons, joins, member, name))
    table = f"rt_{node.kind}"
    join = f"LEFT JOIN {table} ON {table}.patient_id = p.patient_id"
    if join not in gen.joins:
        gen.joins.append(join)
    value = (f"(CASE WHEN NOT p.has_{node.kind} THEN NULL WHEN {table}.patient_id IS NULL THEN FALSE "
             f"ELSE {table}.v{k} END)")
    missing = (f"(CASE WHEN NOT p.has_{node.kind} THEN [{q(node.kind + ' (not provided)')}] "
               f"ELSE coalesce({table}.m{k}, {EMPTY}) END)")
    return value, missing, EMPTY


def _record_pass(gen: Generator, kind: str, tests) -> str:
    """Every record test of one kind over its records at once: per patient, each test's value v<k> and the
    records that leave it open m<k> (what evaluate.record_test lists), from one scan and one grouping."""
    as_of = gen.end
    never = ", ".join(q(s) for s in _NEVER_HAPPENED)
    joins, columns, wanted, aggregates, items = [], [], [], [], []
    for k, value, reasons, own_joins, member, name in tests:
        joins += [j for j in own_joins if j not in joins]
        counted = f"NOT ({member} IS FALSE AND e.unreadable IS NULL)"
        wanted.append(f"({counted})")
        # the reasons and the record's name are built only for the records that leave the test open
        columns += [f"(CASE WHEN {counted} THEN ({value}) ELSE FALSE END) AS v{k}",
                    f"(CASE WHEN {counted} AND ({value}) IS NULL THEN {reasons} END) AS reasons{k}"]
        items.append(f"(CASE WHEN x.v{k} IS NULL THEN {name(f'x.reasons{k}')} || ': ' || "
                     f"array_to_string(x.reasons{k}, ', ') END) AS item{k}")
        aggregates += [f"(CASE WHEN bool_or(v{k} IS TRUE) THEN TRUE WHEN bool_or(v{k} IS NULL) THEN NULL ELSE FALSE END) "
                       f"AS v{k}",
                       f"coalesce(list(item{k}) FILTER (WHERE item{k} IS NOT NULL), {EMPTY}) AS m{k}"]
    rows = (f"SELECT e.patient_id, e.seq, e.code, e.display, {', '.join(columns)} FROM {gen.records(kind)} e "
            f"{' '.join(joins)} WHERE ({' OR '.join(wanted)}) AND (e.status IS NULL OR lower(e.status) NOT IN ({never})) "
            f"AND (e.start_lo IS NULL OR e.start_lo <= {as_of})")
    named = f"SELECT x.*, {', '.join(items)} FROM ({rows}) x"
    return f"SELECT patient_id, {', '.join(aggregates)} FROM ({named}) GROUP BY patient_id"


def _plain_name(noun: str, e: str = "x") -> str:
    """evaluate.entry_name without the display: ``condition ICD10:C50.9``, ``condition 'breast ca' ($.conditions[0])``."""
    return (f"(CASE WHEN {e}.code IS NOT NULL THEN {q(noun + ' ')} || {e}.code ELSE {q(noun)} || "
            f"coalesce(' ' || chr(39) || {e}.display || chr(39), '') || ' ($.' || {e}.kind || '[' || "
            f"CAST({e}.seq AS VARCHAR) || '])' END)")


def _record_count(gen: Generator, node: ir.RecordCount, k: int):
    """evaluate.record_count: each record tested alone; the count lies between the true records and the true
    plus unknown ones."""
    test = node.test
    rows, _ = _record_rows(gen, test)
    name = f"a{k}"
    who = _plain_name(test.noun).replace("x.kind", q(test.kind))
    gen.ctes.append((f"{name}r", f"SELECT x.*, {who} AS who FROM ({rows}) x"))
    if node.courses:
        _courses(gen, name)
    else:
        gen.ctes.append((name, f"SELECT patient_id, count(*) FILTER (WHERE v IS TRUE) AS low, count(*) AS high, "
                               f"coalesce(list(who || ': ' || array_to_string(reasons, ', ') ORDER BY seq) "
                               f"FILTER (WHERE v IS NULL), {EMPTY}) AS m FROM {name}r WHERE v IS NOT FALSE "
                               f"GROUP BY patient_id"))
    gen.joins.append(f"LEFT JOIN {name} ON {name}.patient_id = p.patient_id")
    low, high, n = f"coalesce({name}.low, 0)", f"coalesce({name}.high, 0)", int(node.count)
    if node.mode == "at_least":
        decide = f"CASE WHEN {low} >= {n} THEN TRUE WHEN {high} < {n} THEN FALSE ELSE NULL END"
    else:
        decide = f"CASE WHEN {low} > {n} THEN FALSE WHEN {high} <= {n} THEN TRUE ELSE NULL END"
    value = f"(CASE WHEN NOT p.has_{test.kind} THEN NULL ELSE {decide} END)"
    missing = (f"(CASE WHEN NOT p.has_{test.kind} THEN [{q(test.kind + ' (not provided)')}] "
               f"ELSE coalesce({name}.m, {EMPTY}) END)")
    return value, missing, EMPTY


def _courses(gen: Generator, name: str) -> None:
    """evaluate.record_count with courses: distinct full start dates of the true records; a true record with a
    partial or missing start adds a course for sure only when its dates overlap no other course, else it may
    be one; an unknown record may add a course unless it starts on a day already counted."""
    full = "(start_lo IS NOT NULL AND start_lo = start_hi)"
    gen.ctes.append((f"{name}d", f"SELECT DISTINCT patient_id, start_lo AS d FROM {name}r WHERE v IS TRUE AND {full}"))
    gen.ctes.append((f"{name}v", f"SELECT * FROM {name}r WHERE v IS TRUE AND NOT {full}"))
    alone = (f"(e.start_lo IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {name}d d WHERE d.patient_id = e.patient_id "
             f"AND d.d BETWEEN e.start_lo AND e.start_hi) AND NOT EXISTS (SELECT 1 FROM {name}v o "
             f"WHERE o.patient_id = e.patient_id AND o.seq <> e.seq AND (o.start_lo IS NULL OR "
             f"(o.start_lo <= e.start_hi AND e.start_lo <= o.start_hi))))")
    new = (f"(e.start_lo IS NULL OR e.start_lo <> e.start_hi OR NOT EXISTS (SELECT 1 FROM {name}d d "
           f"WHERE d.patient_id = e.patient_id AND d.d = e.start_lo))")
    counted = (f"SELECT e.patient_id, count(*) FILTER (WHERE e.v IS TRUE AND NOT {full.replace('start_', 'e.start_')} "
               f"AND {alone}) AS alone, count(*) FILTER (WHERE e.v IS TRUE AND NOT {full.replace('start_', 'e.start_')}) "
               f"AS vague, count(*) FILTER (WHERE e.v IS NULL AND {new}) AS maybe, "
               f"coalesce(list(e.who || ': ' || array_to_string(e.reasons, ', ') ORDER BY e.seq) FILTER (WHERE e.v IS NULL), "
               f"{EMPTY}) AS m FROM {name}r e WHERE e.v IS NOT FALSE GROUP BY e.patient_id")
    gen.ctes.append((name, f"SELECT c.patient_id, coalesce(n.days, 0) + c.alone AS low, "
                           f"coalesce(n.days, 0) + c.vague + c.maybe AS high, c.m FROM ({counted}) c LEFT JOIN "
                           f"(SELECT patient_id, count(*) AS days FROM {name}d GROUP BY patient_id) n "
                           f"ON n.patient_id = c.patient_id"))


def _investigational(gen: Generator, node: ir.InvestigationalTest, k: int):
    """evaluate.investigational_test: any medication record, whatever its code, marked investigational."""
    as_of, start = gen.end, gen.start(node.window)
    active = _active_sql("medications", as_of) if (node.status or node.window) else "NULL"
    active = f"(CASE WHEN lower(e.status) = 'intended' THEN NULL ELSE {active} END)"
    conditions = []
    if node.status == "active" and node.window is None:
        conditions.append((active, q("status and end date not recorded")))
    elif node.window is not None:
        conditions.append((_overlaps_sql("medications", active, start, as_of),
                           q(f"dates not precise enough to place it within {node.window}")))
    conditions.append((f"(CASE WHEN e.start_hi IS NOT NULL AND e.start_hi > {as_of} THEN NULL ELSE TRUE END)",
                       q("its date may fall after the as-of date")))
    verification = "lower(regexp_replace(e.verification, '^\\s+|\\s+$', '', 'g'))"
    conditions.append((f"(CASE WHEN e.verification IS NOT NULL AND {verification} <> '' AND {verification} <> 'confirmed' "
                       f"THEN NULL ELSE TRUE END)", f"'verification status ' || {verification} || ', not confirmed'"))
    in_period = " AND ".join(f"({c} IS NOT FALSE)" for c, _ in conditions)
    reasons = lst(*[f"CASE WHEN {c} IS NULL THEN {r} END" for c, r in conditions])
    never = ", ".join(q(x) for x in _NEVER_HAPPENED)
    rows = (f"SELECT e.patient_id, e.seq, e.code, e.display, 'medications' AS kind, e.investigational AS flag, "
            f"{reasons} AS reasons FROM medications e WHERE (e.status IS NULL OR lower(e.status) NOT IN ({never})) "
            f"AND (e.start_lo IS NULL OR e.start_lo <= {as_of}) AND {in_period}")
    name = f"a{k}"
    who = _plain_name("medication")
    item = (f"CASE WHEN flag IS NULL THEN who || ': not marked investigational or not' "
            f"WHEN flag AND len(reasons) > 0 THEN who || ' is marked investigational: ' || array_to_string(reasons, ', ') END")
    gen.ctes.append((f"{name}r", f"SELECT x.*, {who} AS who FROM ({rows}) x"))
    gen.ctes.append((name, f"SELECT patient_id, CASE WHEN bool_or(flag AND len(reasons) = 0) THEN TRUE "
                           f"WHEN bool_or(flag IS NOT FALSE) THEN NULL ELSE FALSE END AS v, "
                           f"coalesce(list({item} ORDER BY seq) FILTER (WHERE flag IS NOT FALSE), {EMPTY}) AS m "
                           f"FROM {name}r GROUP BY patient_id"))
    gen.joins.append(f"LEFT JOIN {name} ON {name}.patient_id = p.patient_id")
    value = f"(CASE WHEN NOT p.has_medications THEN NULL WHEN {name}.patient_id IS NULL THEN FALSE ELSE {name}.v END)"
    missing = (f"(CASE WHEN NOT p.has_medications THEN ['medications (not provided)'] "
               f"ELSE coalesce({name}.m, {EMPTY}) END)")
    return value, missing, EMPTY


def _start_range_sql(kind: str, e: str) -> tuple[str, str]:
    """evaluate._start_range: the record's start, or for a condition or allergy with none, on or before its
    recorded date (NEVER .. recorded)."""
    if kind in ("conditions", "allergies"):
        return (f"(CASE WHEN {e}.start_lo IS NOT NULL THEN {e}.start_lo WHEN {e}.recorded_hi IS NOT NULL THEN {_NEVER} END)",
                f"(CASE WHEN {e}.start_lo IS NOT NULL THEN {e}.start_hi ELSE {e}.recorded_hi END)")
    return f"{e}.start_lo", f"{e}.start_hi"


def _shown_sql(lo: str, hi: str) -> str:
    return f"(CASE WHEN {lo} = {_NEVER} THEN 'on or before ' || {show(hi, hi)} ELSE {show(lo, hi)} END)"


def _shift(day_sql: str, duration: ir.Duration, forward: bool) -> str:
    unit = {"days": "DAY", "weeks": "DAY", "months": "MONTH", "years": "YEAR"}[duration.unit]
    amount = duration.amount * (7 if duration.unit == "weeks" else 1)
    sign = "+" if forward else "-"
    return f"(CASE WHEN {day_sql} = {_NEVER} THEN {day_sql} ELSE CAST({day_sql} {sign} INTERVAL {int(amount)} {unit} AS DATE) END)"


def _window_around_sql(node, lo: str, hi: str) -> tuple[str, str, str, str]:
    """ir.window_around in SQL: the ranges of the first and the last day of an anchored window around an anchor
    dated [lo, hi] (``between N and M after R`` starts past the anchor, ``... before R`` ends ahead of it)."""
    start, end = ir.window_offsets(node)
    first = (lo, hi) if start is None else (_shift(lo, start[0], start[1]), _shift(hi, start[0], start[1]))
    last = (lo, hi) if end is None else (_shift(lo, end[0], end[1]), _shift(hi, end[0], end[1]))
    return first[0], first[1], last[0], last[1]


def _anchor_rows(gen: Generator, node) -> tuple[str, str, str, str, str, str]:
    """evaluate._anchor_events in SQL: (rows, their name, what is missing when there is nothing to look at or NULL,
    date name) for the anchors of an anchored window. Each row: patient_id, seq, v (TRUE, or NULL when the event
    may not be one), reasons, lo / hi (its date; NULL when not known well enough) and named (how explanations
    name it); the events that are none (a record still going on, for its end) are left out."""
    anchor = node.anchor
    as_of = gen.end
    if isinstance(anchor, ir.IndexDate):  # the trial's own index event: the as-of date stands for it
        return _index_anchor_rows(gen, anchor)
    if isinstance(anchor, ir.LabCompare):
        gen.uses_obs = True
        gen.plan.keys.add(anchor.key)
        # a derived analyte anchors at its measured results, else its derived ones (derived.series_for over all time)
        source = _lab_source(gen, anchor.key, gen.start(None), as_of)
        compared = _Compare(anchor, gen.ctx.ranges).rows(
            source, f"o.key = {q(anchor.key)} AND (o.lo IS NULL OR o.lo <= {as_of})",
            interval=anchor.key in derived.DERIVATIONS)
        late = "(o.lo IS NOT NULL AND o.hi > " + as_of + ")"
        rows = (f"SELECT o.patient_id, o.seq, CASE WHEN {late} THEN NULL ELSE o.cv END AS v, "
                f"list_concat(CASE WHEN o.cv IS TRUE THEN {EMPTY} ELSE [coalesce(o.pr, 'may meet the comparison')] END, "
                f"CASE WHEN {late} THEN ['its date may fall after the as-of date'] ELSE {EMPTY} END) AS reasons, "
                f"o.lo, o.hi, {q(anchor.label + ' result of ')} || (CASE WHEN o.lo IS NULL THEN 'no date' "
                f"ELSE {show('o.lo', 'o.hi')} END) AS named "
                f"FROM ({compared}) o WHERE o.cv IS NOT FALSE")
        has = (f"(NOT p.has_observations)", q("observations (not provided, needed as the anchor)"))
        series = f"(SELECT DISTINCT patient_id FROM nobs WHERE key = {q(anchor.key)})"
        if anchor.key in derived.DERIVATIONS:
            series = f"(SELECT DISTINCT patient_id FROM {source} s)"
        return rows, has[0], has[1], series, q(f"{anchor.label} result (needed as the anchor)"), "date"
    rows_a, _ = _record_rows(gen, anchor)
    named = _plain_name(anchor.noun, "a").replace("a.kind", q(anchor.kind))
    if node.anchor_at == "end":
        point = anchor.kind in _POINT_EVENTS
        status = "nullif(lower(r.status), '')"
        going_on = (f"((a.end_lo IS NOT NULL AND a.end_lo > {as_of}) OR (a.end_lo IS NULL AND "
                    f"{'FALSE' if point else f'a.act IS TRUE AND {status} IS DISTINCT FROM {chr(39)}intended{chr(39)}'}))")
        lo = f"(CASE WHEN a.end_lo IS NOT NULL THEN a.end_lo {'ELSE a.start_lo ' if point else ''}END)"
        hi = f"(CASE WHEN a.end_lo IS NOT NULL THEN a.end_hi {'ELSE a.start_hi ' if point else ''}END)"
        if point:
            why = "(CASE WHEN a.end_lo IS NULL AND a.start_lo IS NULL THEN 'date of the anchor not recorded' END)"
        else:
            why = (f"(CASE WHEN a.end_lo IS NULL THEN (CASE WHEN a.act IS FALSE THEN 'end date of the anchor not "
                   f"recorded (status ' || coalesce({status}, 'None') || ')' ELSE 'status and end date of the anchor not "
                   f"recorded (it may still be going on)' END) END)")
        rows = (f"SELECT a.patient_id, a.seq, a.v, list_concat(a.reasons, {lst(why)}) AS reasons, {lo} AS lo, {hi} AS hi, "
                f"{named} AS named FROM ({rows_a}) a JOIN {_records(anchor.kind)} r ON r.patient_id = a.patient_id "
                f"AND r.seq = a.seq WHERE a.v IS NOT FALSE AND NOT {going_on}")
    else:
        lo, hi = _start_range_sql(anchor.kind, "a")
        rows = (f"SELECT a.patient_id, a.seq, a.v, a.reasons, {lo} AS lo, {hi} AS hi, {named} AS named "
                f"FROM ({rows_a}) a WHERE a.v IS NOT FALSE")
    date_name = "end date" if node.anchor_at == "end" else _START_NAMES[anchor.kind]
    return (rows, f"(NOT p.has_{anchor.kind})", q(anchor.kind + " (not provided, needed as the anchor)"), None, None,
            date_name)


def _index_anchor_rows(gen: Generator, anchor: ir.IndexDate) -> tuple[str, str, str, str | None, str | None, str]:
    """_anchor_rows for the index date (evaluate._anchor_events): one event per patient, on the as-of date."""
    rows = (f"SELECT p.patient_id, 0 AS seq, TRUE AS v, {EMPTY} AS reasons, {gen.end} AS lo, {gen.end} AS hi, "
            f"{q(anchor.shown(gen.ctx.as_of_text))} AS named FROM patients p")
    return rows, "FALSE", q(""), None, None, "date"


def _anchored_record(gen: Generator, node: ir.AnchoredRecordTest, k: int):
    """evaluate.anchored_record_test: some record meeting the test dated in the window around some anchor event
    (a record meeting the anchor, at its start or its end; or a result meeting a lab comparison)."""
    test = node.test
    as_of = gen.end
    rows_t, _ = _record_rows(gen, test)
    rows_a, no_anchors, no_anchors_why, series, no_series_why, date_name = _anchor_rows(gen, node)
    s_lo, s_hi = _start_range_sql(test.kind, "t")
    if test.kind in ("conditions", "allergies"):
        e_lo, e_hi = s_lo, s_hi
    else:
        point = test.kind in _POINT_EVENTS
        e_lo = (f"(CASE WHEN t.end_lo IS NOT NULL THEN least(t.end_lo, {as_of}) "
                f"{'' if point else f'WHEN t.act IS TRUE THEN {as_of} '}ELSE {s_lo} END)")
        e_hi = (f"(CASE WHEN t.end_lo IS NOT NULL THEN least(t.end_hi, {as_of}) "
                f"{'ELSE ' + s_hi if point else f'ELSE {as_of}'} END)")
    a_lo, a_hi = "a.lo", "a.hi"
    if node.relation == "after":
        inside = f"(CASE WHEN {e_lo} > {a_hi} THEN TRUE WHEN {e_hi} < {a_lo} THEN FALSE ELSE NULL END)"
    elif node.relation == "before":
        inside = f"(CASE WHEN {s_hi} < {a_lo} THEN TRUE WHEN {s_lo} > {a_hi} THEN FALSE ELSE NULL END)"
    else:
        w1_lo, w1_hi, w2_lo, w2_hi = _window_around_sql(node, a_lo, a_hi)
        inside = (f"(CASE WHEN {s_hi} <= {w2_lo} AND {e_lo} >= {w1_hi} THEN TRUE "
                  f"WHEN {s_lo} > {w2_hi} OR {e_hi} < {w1_lo} THEN FALSE ELSE NULL END)")
    value = f"(CASE WHEN {s_lo} IS NULL OR {a_lo} IS NULL THEN NULL ELSE {inside} END)"
    t_name = _plain_name(test.noun, "t").replace("t.kind", q(test.kind))
    span = (f"(CASE WHEN {s_lo} IS NOT DISTINCT FROM {e_lo} AND {s_hi} IS NOT DISTINCT FROM {e_hi} THEN {_shown_sql(s_lo, s_hi)} "
            f"ELSE {_shown_sql(s_lo, s_hi)} || ' to ' || {show(e_lo, e_hi)} END)")
    # an end anchor with no known end says why among its own reasons (evaluate: no second reason)
    no_date = ("NULL" if node.anchor_at == "end" and not isinstance(node.anchor, ir.LabCompare) else
               f"{q(date_name + ' of the anchor ')} || a.named || ' not recorded'")
    date_why = (f"(CASE WHEN {s_lo} IS NULL THEN {q(_START_NAMES[test.kind] + ' not recorded')} "
                f"WHEN {a_lo} IS NULL THEN {no_date} "
                f"WHEN {inside} IS NULL THEN {q('dates not precise enough to tell (' + _START_NAMES[test.kind] + ' ')} || "
                f"{span} || ', anchor ' || {_shown_sql(a_lo, a_hi)} || ')' END)")
    why = (f"list_concat(t.reasons, list_transform(a.reasons, lambda r: 'anchor ' || a.named || ': ' || r), "
           f"{lst(date_why)})")
    item = f"{t_name} || {q(' ' + node.relation_text + ' ')} || a.named || ': ' || array_to_string({why}, ', ')"
    pairs = (f"SELECT t.patient_id, t.seq AS ts, a.seq AS aseq, {value} AS ins, t.v AS tv, a.v AS av, {item} AS item "
             f"FROM ({rows_t}) t JOIN ({rows_a}) a ON a.patient_id = t.patient_id WHERE t.v IS NOT FALSE")
    name = f"a{k}"
    gen.ctes.append((f"{name}t", f"SELECT patient_id, count(*) AS n FROM ({rows_t}) x WHERE v IS NOT FALSE "
                                 f"GROUP BY patient_id"))
    gen.ctes.append((f"{name}p", pairs))
    gen.ctes.append((name, f"SELECT c.patient_id, c.n, g.yes, g.open, g.m FROM {name}t c LEFT JOIN ("
                           f"SELECT patient_id, bool_or(ins IS TRUE AND tv IS TRUE AND av IS TRUE) AS yes, "
                           f"count(*) FILTER (WHERE ins IS NOT FALSE) AS open, "
                           f"list(item ORDER BY ts, aseq) FILTER (WHERE ins IS NOT FALSE AND NOT (ins IS TRUE AND tv IS TRUE "
                           f"AND av IS TRUE)) AS m FROM {name}p GROUP BY patient_id) g ON g.patient_id = c.patient_id"))
    gen.joins.append(f"LEFT JOIN {name} ON {name}.patient_id = p.patient_id")
    no_series = "FALSE"
    if series is not None:
        no_series = f"(p.patient_id NOT IN {series})"
    value = (f"(CASE WHEN NOT p.has_{test.kind} THEN NULL WHEN {name}.patient_id IS NULL THEN FALSE "
             f"WHEN {no_anchors} OR {no_series} THEN NULL WHEN {name}.yes IS TRUE THEN TRUE "
             f"WHEN coalesce({name}.open, 0) > 0 THEN NULL ELSE FALSE END)")
    missing = (f"(CASE WHEN NOT p.has_{test.kind} THEN [{q(test.kind + ' (not provided)')}] "
               f"WHEN {no_anchors} THEN [{no_anchors_why}] "
               + (f"WHEN {no_series} THEN [{no_series_why}] " if series is not None else "")
               + f"ELSE coalesce({name}.m, {EMPTY}) END)")
    return value, missing, EMPTY


def _anchored_lab(gen: Generator, node: ir.AnchoredLabTest, k: int):
    """evaluate.anchored_lab_test: the lab comparison (latest, any or every result) over the days of the window
    around each anchor event dated to the day; an anchor with a date not known to the day leaves it open."""
    lab = node.test
    as_of = gen.end
    rows_a, no_anchors, no_anchors_why, series, no_series_why, date_name = _anchor_rows(gen, node)
    gen.uses_obs = True
    gen.plan.keys.add(lab.key)
    name = f"a{k}"
    first, _, last, _ = _window_around_sql(node, "a.lo", "a.lo")
    gen.ctes.append((f"{name}a", f"SELECT a.*, {first} AS w_lo, least({last}, {as_of}) AS w_hi FROM ({rows_a}) a"))
    source, choose, chosen = gen.results(lab.key), "", "TRUE"
    if lab.key in derived.DERIVATIONS:  # the series is chosen per anchor window (derived.series_for)
        source, choose, chosen = _anchored_derived_source(gen, lab.key, name)
    compared = _Compare(lab, gen.ctx.ranges).rows(source, f"o.key = {q(lab.key)} AND (o.lo IS NULL OR o.lo <= {as_of})",
                                                  interval=lab.key in derived.DERIVATIONS)
    inside = _in_window("o.lo", "o.hi", "a.w_lo", "a.w_hi")
    # each result against each anchor dated to the day (results after the window's last day are not looked at)
    gen.ctes.append((f"{name}r", f"SELECT a.patient_id, a.seq AS aseq, o.seq, o.lo, o.hi, {inside} AS ins, "
                                 f"o.cv, o.pr, {_lab_item(lab.label, 'o.pr')} AS item, o.value AS val, o.resolution AS res "
                                 f"FROM {name}a a JOIN ({compared}) o ON o.patient_id = a.patient_id {choose}"
                                 f"WHERE a.lo = a.hi AND (o.lo IS NULL OR o.lo <= a.w_hi) AND {chosen}"))
    if lab.selector == "latest":
        gen.ctes.append((f"{name}s", f"SELECT *, row_number() OVER (PARTITION BY patient_id, aseq ORDER BY hi DESC NULLS "
                                     f"LAST, lo DESC NULLS LAST, seq) AS rn FROM {name}r"))
        uncertain = _uncertain_item(lab.label)
        tie = (q(f"{lab.label} result of ") + f" || {show('c.lo', 'c.hi')} || "
               "': which result is the latest depends on a date known only to the month or year'")
        rival = "coalesce(bool_or(r.patient_id IS NOT NULL AND r.cv IS DISTINCT FROM c.cv), FALSE)"
        body = f"""
            SELECT c.patient_id, c.aseq, c.ins IS FALSE AS nores,
                CASE WHEN c.ins IS FALSE OR c.ins IS NULL OR c.cv IS NULL OR {rival} THEN NULL ELSE c.cv END AS v,
                CASE WHEN c.ins IS FALSE THEN {EMPTY} WHEN c.ins IS NULL THEN (CASE WHEN c.cv IS NULL THEN [{uncertain}]
                     ELSE {EMPTY} END) WHEN c.cv IS NULL THEN {lst('c.item')} WHEN {rival} THEN [{tie}] ELSE {EMPTY} END AS m
            FROM {name}s c LEFT JOIN {name}s r ON r.patient_id = c.patient_id AND r.aseq = c.aseq AND r.rn > 1
                AND r.hi IS NOT NULL AND r.hi >= c.lo AND r.ins IS NOT FALSE
            WHERE c.rn = 1
            GROUP BY c.patient_id, c.aseq, c.ins, c.cv, c.pr, c.item, c.lo, c.hi"""
    else:
        every = lab.selector == "every"
        skip = "c.cv IS TRUE" if every else "c.cv IS FALSE"
        kept = f"(c.ins IS TRUE OR (c.ins IS NULL AND NOT ({skip})))"
        ev = "CASE WHEN c.ins IS NULL THEN NULL ELSE c.cv END"
        item = f"CASE WHEN c.ins IS NULL THEN {_uncertain_item(lab.label)} ELSE c.item END"
        if every:
            agg = "CASE WHEN bool_or(ev IS FALSE) THEN FALSE WHEN bool_or(ev IS NULL) THEN NULL ELSE TRUE END"
        else:
            agg = "CASE WHEN bool_or(ev IS TRUE) THEN TRUE WHEN bool_or(ev IS NULL) THEN NULL ELSE FALSE END"
        # items in the interpreter's order: newest result first (evaluate.lab_compare walks the series so)
        body = (f"SELECT patient_id, aseq, FALSE AS nores, {agg} AS v, "
                f"coalesce(list(item ORDER BY hi DESC NULLS LAST, lo DESC NULLS LAST, seq) "
                f"FILTER (WHERE ev IS NULL AND item IS NOT NULL), {EMPTY}) AS m "
                f"FROM (SELECT c.patient_id, c.aseq, c.seq, c.lo, c.hi, {ev} AS ev, {item} AS item FROM {name}r c "
                f"WHERE {kept}) GROUP BY patient_id, aseq")
        if (lab.occasions or 1) > 1 and not every:
            kept_rows = (f"SELECT c.patient_id, c.aseq, c.seq, c.lo, c.hi, c.val, c.res, {ev} AS ev, {item} AS item "
                         f"FROM {name}r c WHERE {kept}")
            body = _anchored_occasions(gen, lab, name, lab.occasions, kept_rows)
    gen.ctes.append((f"{name}l", body))
    shown = _shown_sql("a.lo", "a.hi")
    date_why = (f"(CASE WHEN a.lo IS NULL THEN {'NULL' if node.anchor_at == 'end' else q(date_name + ' of the anchor not recorded')} "
                f"WHEN a.lo <> a.hi THEN {q(date_name + ' of the anchor ')} || {shown} || ', not a full date' END)")
    # a result-less window (or only results ruled out of it) says which days; with no observations list at all,
    # lab_compare's own missing item
    no_result = (f"(CASE WHEN l.aseq IS NULL OR l.nores THEN (CASE WHEN NOT p.has_observations THEN "
                 f"{q(lab.label + ': no observations provided')} WHEN a.w_lo > {as_of} THEN 'the window begins on ' || "
                 f"CAST(a.w_lo AS VARCHAR) || ', after the as-of date' ELSE "
                 f"{q('no ' + lab.label + ' result from ')} || CAST(a.w_lo AS VARCHAR) || ' to ' || CAST(a.w_hi AS VARCHAR) "
                 f"END) END)")
    full = "(a.lo IS NOT NULL AND a.lo = a.hi)"
    lv = f"(CASE WHEN {full} THEN l.v END)"
    why = (f"list_concat(list_transform(a.reasons, lambda r: 'anchor: ' || r), "
           f"CASE WHEN {full} THEN list_concat({lst(no_result)}, coalesce(l.m, {EMPTY})) ELSE {lst(date_why)} END)")
    item = (f"{q(lab.label + ' ' + node.relation_text + ' ')} || a.named || ': ' || "
            f"(CASE WHEN len({why}) = 0 THEN 'unknown' ELSE array_to_string({why}, ', ') END)")
    gen.ctes.append((name, f"""
        SELECT a.patient_id, bool_or({lv} IS TRUE AND a.v IS TRUE) AS yes,
            count(*) FILTER (WHERE {lv} IS NOT FALSE) AS open,
            list({item} ORDER BY a.seq) FILTER (WHERE {lv} IS NOT FALSE) AS m
        FROM {name}a a JOIN patients p ON p.patient_id = a.patient_id
        LEFT JOIN {name}l l ON l.patient_id = a.patient_id AND l.aseq = a.seq
        GROUP BY a.patient_id"""))
    gen.joins.append(f"LEFT JOIN {name} ON {name}.patient_id = p.patient_id")
    no_series = f"(p.patient_id NOT IN {series})" if series is not None else "FALSE"
    value = (f"(CASE WHEN {no_anchors} OR {no_series} THEN NULL WHEN {name}.yes IS TRUE THEN TRUE "
             f"WHEN coalesce({name}.open, 0) > 0 THEN NULL ELSE FALSE END)")
    missing = (f"(CASE WHEN {no_anchors} THEN [{no_anchors_why}] "
               + (f"WHEN {no_series} THEN [{no_series_why}] " if series is not None else "")
               + f"ELSE coalesce({name}.m, {EMPTY}) END)")
    return value, missing, EMPTY


def _anchored_derived_source(gen: Generator, key: str, name: str) -> tuple[str, str, str]:
    """derived.series_for per anchor window, for a derived analyte tested around an anchor: (the measured and derived
    results as one source with ``drv`` and ``oldest``, the join to each window's choice, the condition keeping the
    chosen results). A window reads the derived results usable in it (made on or before its last day, every fresh
    input inside it) when no measured result is in it and some derived one is usable, else the measured ones."""
    _use_derived(gen, key)
    columns = ", ".join(_OBS_COLUMNS)
    source = (f"(SELECT {columns}, CAST(NULL AS DOUBLE) AS value_high, CAST(NULL AS DATE) AS oldest, FALSE AS drv "
              f"FROM nobs WHERE key = {q(key)} UNION ALL SELECT {columns}, value_high, oldest, TRUE AS drv "
              f"FROM dobs WHERE key = {q(key)})")
    gen.ctes.append((f"{name}u", f"SELECT a.patient_id, a.seq AS aseq FROM {name}a a WHERE a.lo = a.hi "
                                 f"AND NOT EXISTS (SELECT 1 FROM nobs m WHERE m.patient_id = a.patient_id AND m.key = {q(key)} "
                                 f"AND m.lo IS NOT NULL AND m.lo <= a.w_hi AND m.hi >= a.w_lo) "
                                 f"AND EXISTS (SELECT 1 FROM dobs d WHERE d.patient_id = a.patient_id AND d.key = {q(key)} "
                                 f"AND d.hi <= a.w_hi AND d.oldest >= a.w_lo)"))
    join = f"LEFT JOIN {name}u u ON u.patient_id = a.patient_id AND u.aseq = a.seq "
    chosen = "(CASE WHEN u.aseq IS NOT NULL THEN o.drv AND o.hi <= a.w_hi AND o.oldest >= a.w_lo ELSE NOT o.drv END)"
    return source, join, chosen


def _anchored_occasions(gen: Generator, lab: ir.LabCompare, name: str, need: int, rows: str) -> str:
    """:func:`_occasions` per anchor window (``rows``: the results kept in each window, by patient_id and aseq), for
    evaluate.anchored_lab_test over lab_compare's `on at least N occasions`. Too few occasions with none ruled out
    (lab_compare's "a repeat ... result") is said as the window's "no result from ... to ..." (``nores``), as the
    interpreter says it."""
    folded = _occasions_folded(lab.label, f"({rows})", "patient_id, aseq")
    gen.ctes.append((f"{name}f", folded))
    # the items newest result first, each once (evaluate._atom_missing: dict.fromkeys over the series order)
    firsts = (f"SELECT patient_id, aseq, k.item AS item, k.hi AS hi, k.lo AS lo, k.seq AS seq, row_number() OVER "
              f"(PARTITION BY patient_id, aseq, k.item ORDER BY k.hi DESC NULLS LAST, k.lo DESC NULLS LAST, k.seq) AS n "
              f"FROM {name}f WHERE k.ev IS NULL AND k.item IS NOT NULL")
    # sorted after, on a struct whose fields are the order (an ordered aggregate is not kept by every dialect)
    key = ("struct_pack(h := (CASE WHEN hi IS NULL THEN 1 ELSE 0 END), d := -date_diff('day', DATE '1970-01-01', "
           "coalesce(hi, DATE '1970-01-01')), l := (CASE WHEN lo IS NULL THEN 1 ELSE 0 END), "
           "e := -date_diff('day', DATE '1970-01-01', coalesce(lo, DATE '1970-01-01')), s := seq, item := item)")
    items = (f"SELECT patient_id, aseq, list_transform(list_sort(list({key})), lambda x: x.item) AS items "
             f"FROM ({firsts}) WHERE n = 1 GROUP BY patient_id, aseq")
    counts = ("SELECT patient_id, aseq, count(*) FILTER (WHERE k.ev IS TRUE) AS t, "
              "count(*) FILTER (WHERE k.ev IS NULL) AS u, count(*) FILTER (WHERE k.ev IS NOT FALSE) AS pending, "
              "coalesce(bool_or(k.hi IS NULL) FILTER (WHERE k.ev IS NOT FALSE), FALSE) AS undated, "
              "max(k.hi) FILTER (WHERE k.ev IS NOT FALSE) AS latest, max(k.lo) FILTER (WHERE k.ev IS FALSE) AS last_false "
              f"FROM {name}f GROUP BY patient_id, aseq")
    counted = (f"SELECT c.*, coalesce(i.items, {EMPTY}) AS items FROM ({counts}) c LEFT JOIN ({items}) i "
               f"ON i.patient_id = c.patient_id AND i.aseq = c.aseq")
    ruled_out = ("(CASE WHEN pending = 0 THEN TRUE WHEN undated THEN FALSE "
                 "ELSE coalesce(last_false > latest, FALSE) END)")
    few = f"(t < {need} AND t + u < {need} AND NOT {ruled_out})"
    return (f"SELECT patient_id, aseq, {few} AS nores, CASE WHEN t >= {need} THEN TRUE WHEN t + u >= {need} THEN NULL "
            f"WHEN {ruled_out} THEN FALSE ELSE NULL END AS v, "
            f"CASE WHEN t >= {need} OR {few} THEN {EMPTY} ELSE items END AS m FROM ({counted})")


def _interval_holds_sql(lab: ir.LabCompare, low: str, high: str) -> str:
    """evaluate._interval_holds: does every value in [low, high] meet the comparison (TRUE), none (FALSE), some (NULL)?"""
    if lab.op == "between":
        a, b = num(lab.bound.value), num(lab.upper.value)
        return (f"(CASE WHEN {a} <= {low} AND {high} <= {b} THEN TRUE WHEN {high} < {a} OR {low} > {b} THEN FALSE "
                f"ELSE NULL END)")
    limit = num(lab.bound.value)
    if lab.op in ("=", "!="):
        equal = "TRUE" if lab.op == "=" else "FALSE"
        outside = "TRUE" if lab.op == "!=" else "FALSE"
        return (f"(CASE WHEN {low} = {high} THEN (({low} = {limit}) = {equal}) "
                f"WHEN {limit} < {low} OR {limit} > {high} THEN {outside} ELSE NULL END)")
    op = _SQL_OPS[lab.op]
    return (f"(CASE WHEN ({low} {op} {limit}) = ({high} {op} {limit}) THEN ({low} {op} {limit}) ELSE NULL END)")


def _lab_aggregate(gen: Generator, node: ir.LabAggregate, k: int):
    """evaluate.lab_aggregate: the mean, lowest or highest of the latest N results (or of every result in the window)."""
    lab = node.lab
    if lab.bound.kind != "value" or (lab.upper is not None and lab.upper.kind != "value"):
        raise Unsupported(f"a multiple of ULN/LLN in a mean/min/max is not translated to SQL yet: {node.source_text}")
    gen.uses_obs = True
    gen.plan.keys.add(lab.key)
    start, end = gen.start(lab.window), gen.end
    inside = _in_window("o.lo", "o.hi", start, end)
    dim_bad = f"o.dimension IS DISTINCT FROM {q(lab.dimension)}" if lab.dimension else "FALSE"
    problem = (f"(CASE WHEN o.value IS NULL THEN coalesce(o.problem, 'a text result where a number is needed') "
               f"WHEN {dim_bad} THEN coalesce(o.unit, 'None') || ' cannot be compared with the threshold''s unit' END)")
    lo_end = "(CASE WHEN o.comparator IN ('<', '<=') THEN CAST('-inf' AS DOUBLE) ELSE o.value END)"
    hi_end = "(CASE WHEN o.comparator IN ('>', '>=') THEN CAST('inf' AS DOUBLE) ELSE o.value END)"
    source = _lab_source(gen, lab.key, start, end)
    if lab.key in derived.DERIVATIONS:  # a derived value may be an interval (the age is uncertain)
        hi_end = "(CASE WHEN o.comparator IN ('>', '>=') THEN CAST('inf' AS DOUBLE) ELSE coalesce(o.value_high, o.value) END)"
    name = f"a{k}"
    rows = (f"SELECT o.patient_id, o.seq, o.lo, o.hi, {inside} AS ins, {problem} AS pr, {lo_end} AS x_lo, {hi_end} AS x_hi, "
            f"row_number() OVER (PARTITION BY o.patient_id ORDER BY o.hi DESC NULLS LAST, o.lo DESC NULLS LAST, o.seq) AS rn "
            f"FROM {source} o WHERE o.key = {q(lab.key)} AND (o.lo IS NULL OR o.lo <= {end})")
    gen.ctes.append((f"{name}r", rows))
    # results before the first one outside the window; with N, the first N of them (and the next, for ties)
    stop = f"(SELECT patient_id, min(rn) AS stop FROM {name}r WHERE ins IS FALSE GROUP BY patient_id)"
    gen.ctes.append((f"{name}b", f"SELECT r.* FROM {name}r r LEFT JOIN {stop} s ON s.patient_id = r.patient_id "
                                 f"WHERE s.stop IS NULL OR r.rn < s.stop"))
    n = node.count
    used = f"rn <= {n}" if n is not None else "TRUE"
    within = f" within {lab.window}" if lab.window is not None else ""
    label = lab.label
    uncertain = (f"{q(label + ' result of ')} || (CASE WHEN lo IS NULL THEN 'no date' ELSE {show('lo', 'hi')} END) "
                 f"|| ': date uncertain relative to the window'")
    when = f"(CASE WHEN lo IS NULL THEN 'undated' ELSE {show('lo', 'hi')} END)"
    fold = {"mean": "list_reduce(xs, lambda a, b: a + b) / len(xs)", "min": "list_min(xs)", "max": "list_max(xs)"}[node.function]
    agg = (f"SELECT patient_id, "
           f"arg_min({uncertain}, rn) FILTER (WHERE ins IS NULL AND {used}) AS uncertain, "
           f"count(*) FILTER (WHERE {used}) AS taken, "
           f"arg_min({q(label + ' result of ')} || {when} || ': ' || pr, rn) FILTER (WHERE pr IS NOT NULL AND {used}) AS bad, "
           f"list(x_lo ORDER BY rn) FILTER (WHERE {used}) AS los, list(x_hi ORDER BY rn) FILTER (WHERE {used}) AS his, "
           + (f"bool_or(rn = {n + 1} AND hi IS NOT NULL) AS has_next, max(CASE WHEN rn = {n + 1} THEN hi END) AS next_hi, "
              f"max(CASE WHEN rn = {n + 1} THEN {show('lo', 'hi')} END) AS next_shown, "
              f"max(CASE WHEN rn = {n} THEN lo END) AS last_lo "
              if n is not None else "FALSE AS has_next, NULL AS next_hi, NULL AS next_shown, NULL AS last_lo ")
           + f"FROM {name}b GROUP BY patient_id")
    low = fold.replace("xs", "los")
    high = fold.replace("xs", "his")
    tie = (f"has_next AND last_lo IS NOT NULL AND next_hi >= last_lo AND taken = {n}" if n is not None else "FALSE")
    holds = _interval_holds_sql(lab, "lo_v", "hi_v")
    both = (f"'the {node.function} of the {label} results lies between ' || printf('%.6g', lo_v) || ' and ' || "
            f"printf('%.6g', hi_v) || ', on both sides of the limit'")
    few = (f"'{n} {label} results{within} (' || CAST(taken AS VARCHAR) || ' on record)'" if n is not None else "NULL")
    body = (f"SELECT patient_id, CASE WHEN uncertain IS NOT NULL OR ({tie}) OR taken = 0 "
            f"{f'OR taken < {n} ' if n is not None else ''}OR bad IS NOT NULL THEN NULL ELSE {holds} END AS v, "
            f"CASE WHEN uncertain IS NOT NULL THEN [uncertain] "
            f"WHEN {tie} THEN ['which are the latest {n} {label} results depends on dates or times not recorded (' "
            f"|| next_shown || ')'] "
            f"WHEN taken = 0 THEN [{q(_missing_lab(lab))}] "
            + (f"WHEN taken < {n} THEN [{few}] " if n is not None else "")
            + f"WHEN bad IS NOT NULL THEN [bad] WHEN {holds} IS NULL THEN [{both}] ELSE {EMPTY} END AS m "
            f"FROM (SELECT *, {low} AS lo_v, {high} AS hi_v FROM ({agg}))")
    return _lab_atom(gen, name, body, label, _missing_lab(lab), f'{name}.m')


# ---------------------------------------------------------------- daily dose totals
_FOREVER = "DATE '9999-12-31'"  # evaluate's FOREVER: after every date a record can carry
_INF_SQL = "CAST('inf' AS DOUBLE)"


def _in_dose_sql(op: str, low: str, high: str, value: float, upper: float | None, every: bool) -> str:
    """evaluate._in_dose: does every (``every``) / some value in [low, high] meet the dose comparison?"""
    v = num(value)
    if op == "between":
        u = num(upper)
        return f"({v} <= {low} AND {high} <= {u})" if every else f"({high} >= {v} AND {low} <= {u})"
    if op == "=":
        return f"({low} = {high} AND {high} = {v})" if every else f"({low} <= {v} AND {v} <= {high})"
    if op == "!=":
        return f"({v} < {low} OR {v} > {high})" if every else f"(NOT ({low} = {high} AND {high} = {v}))"
    sql_op = _SQL_OPS[op]
    if op in (">", ">="):
        return f"({low} {sql_op} {v})" if every else f"({high} {sql_op} {v})"
    return f"({high} {sql_op} {v})" if every else f"({low} {sql_op} {v})"


def _dose_total(gen: Generator, node: ir.DoseTotal, k: int):
    """evaluate.dose_total: the daily total of the records taken on each day where it may change (the days where
    a record's sure or possible period begins or ends after one), decided day by day, then the same fallbacks
    (one record alone; a record whose own dose is over a `>` limit)."""
    test, dose = node.test, node.dose
    if dose.per != "day":
        raise Unsupported(f"a dose total per administration is not translated to SQL: {node.source_text}")
    as_of = gen.end
    rows, _ = _record_rows(gen, test)
    today_only = test.status == "active" and test.window is None
    first = as_of if today_only else gen.start(test.window)
    status = "nullif(lower(m.status), '')"
    unsure_status = f"coalesce({status} IN ('on-hold', 'intended'), FALSE)"
    member = "(x.v IS TRUE)"
    # the days each record is surely / possibly taken (evaluate._taken_days)
    if today_only:
        sure_lo = sure_hi = f"(CASE WHEN {member} AND NOT {unsure_status} THEN {as_of} END)"
        pos_lo = pos_hi = as_of
    else:
        active = f"(CASE WHEN {status} = 'intended' THEN NULL ELSE {_active_sql('medications', as_of, 'm')} END)"
        e_lo = (f"(CASE WHEN m.end_lo IS NOT NULL THEN m.end_lo WHEN {active} IS TRUE THEN {_FOREVER} "
                f"ELSE coalesce(m.start_lo, {_NEVER}) END)")
        e_hi = (f"(CASE WHEN m.end_lo IS NOT NULL THEN m.end_hi WHEN {active} IS TRUE THEN {_FOREVER} "
                f"WHEN {active} IS FALSE THEN {as_of} ELSE {_FOREVER} END)")
        sure_ok = (f"(CASE WHEN m.start_lo IS NULL THEN {active} IS TRUE AND NOT {unsure_status} AND {e_lo} >= {as_of} "
                   f"ELSE NOT {unsure_status} AND m.start_hi <= {e_lo} END)")
        sure_lo = f"(CASE WHEN {sure_ok} THEN (CASE WHEN m.start_lo IS NULL THEN {as_of} ELSE m.start_hi END) END)"
        sure_hi = f"(CASE WHEN {sure_ok} THEN (CASE WHEN m.start_lo IS NULL THEN {as_of} ELSE {e_lo} END) END)"
        pos_lo = f"coalesce(m.start_lo, {_NEVER})"
        pos_hi = e_hi
    # the record's daily dose in mg/day (of the reference drug): evaluate._daily_amount
    amount = "dd.daily"
    path = "'$.medications[' || CAST(m.seq AS VARCHAR) || ']'"
    problem = (f"(CASE WHEN NOT dd.recorded THEN 'dose not recorded' WHEN dd.daily IS NULL THEN "
               f"coalesce(replace(dd.daily_problem, {q(DOSE_PATH)}, {path}), 'daily dose not recorded') END)")
    if node.reference is None:
        low, high = amount, amount
    else:
        drugs = [(drug, gen.matcher(drug.matcher)) for drug in node.equivalents]
        is_member = {i: f"(CASE WHEN dq.has_codes THEN dq.m{i} END)" for _, i in drugs}
        matched = " + ".join(f"(CASE WHEN {is_member[i]} IS TRUE THEN 1 ELSE 0 END)" for _, i in drugs) or "0"
        names = lst(*[f"(CASE WHEN {is_member[i]} IS TRUE THEN {q(d.drug)} END)" for d, i in drugs])
        doubt = "coalesce(" + ", ".join(
            [f"(CASE WHEN {is_member[i]} IS NULL THEN coalesce(CASE WHEN dq.has_codes THEN dq.w{i} ELSE m.unreadable END, "
             f"'terminology') END)" for _, i in reversed(drugs)] + ["NULL"]) + ")"
        low = "(CASE " + " ".join(f"WHEN {is_member[i]} IS TRUE THEN {_snap12(f'({amount} * {num(d.factor)})')}"
                                  for d, i in drugs) + " END)"
        high = "(CASE " + " ".join(f"WHEN {is_member[i]} IS TRUE THEN {_snap12(f'({amount} * {num(d.factor_high)})')}"
                                   for d, i in drugs) + " END)"
        no_equivalent = q(f"no {node.reference} equivalent is known for it (screening/data/dose_equivalents.toml)")
        problem = (f"(CASE WHEN {problem} IS NOT NULL THEN {problem} WHEN ({matched}) = 1 THEN NULL "
                   f"WHEN ({matched}) > 1 THEN 'it is more than one drug of the equivalence table (' || "
                   f"array_to_string({names}, ', ') || ')' WHEN {doubt} IS NOT NULL THEN "
                   f"'which drug of the equivalence table it is cannot be told (' || {doubt} || ')' "
                   f"ELSE {no_equivalent} END)")
    low = f"(CASE WHEN {problem} IS NULL THEN {low} ELSE CAST(0.0 AS DOUBLE) END)"
    high = f"(CASE WHEN {problem} IS NULL THEN {high} ELSE {_INF_SQL} END)"
    ranged = (f"(CASE WHEN {problem} IS NULL AND {low} <> {high} THEN 'its {node.reference} equivalent lies between ' || "
              f"printf('%g', {low}) || ' and ' || printf('%g', {high}) || ' mg/day (the table gives a range for this drug)' END)"
              if node.reference is not None else "NULL")
    held = f"(CASE WHEN {unsure_status} THEN {status} || ': not known to be taken' END)"
    why = f"list_concat(x.reasons, {lst(held, f'coalesce({problem}, {ranged})')})"
    who = _plain_name("medication", "m").replace("m.kind", q("medications"))
    doses_on = " AND ".join(f"dd.{c} IS NOT DISTINCT FROM m.{c}" for c in DOSE_COLUMNS)
    name = f"a{k}"
    gen.ctes.append((f"{name}r", f"""
        SELECT x.patient_id, x.seq, {member} AS member, NOT {unsure_status} AS taken_ok, {sure_lo} AS sure_lo,
            {sure_hi} AS sure_hi, {pos_lo} AS pos_lo, {pos_hi} AS pos_hi, {low} AS low, {high} AS high, {why} AS why,
            {who} AS who
        FROM ({rows}) x JOIN medications m ON m.patient_id = x.patient_id AND m.seq = x.seq
        LEFT JOIN dict_doses dd ON {doses_on}
        LEFT JOIN dict_record_codes dq ON dq.code IS NOT DISTINCT FROM m.code AND dq.codes IS NOT DISTINCT FROM m.codes
        WHERE x.v IS NOT FALSE"""))
    start = f"greatest({first}, min(pos_lo) OVER (PARTITION BY patient_id))"
    gen.ctes.append((f"{name}s", f"SELECT *, {start} AS first_day FROM {name}r"))
    edges = " UNION ".join(
        f"SELECT patient_id, {d} AS day, first_day FROM {name}s" for d in
        ("first_day", as_of, "sure_lo", f"(CASE WHEN sure_hi < {as_of} THEN CAST(sure_hi + INTERVAL 1 DAY AS DATE) END)",
         "pos_lo", f"(CASE WHEN pos_hi < {as_of} THEN CAST(pos_hi + INTERVAL 1 DAY AS DATE) END)"))
    gen.ctes.append((f"{name}d", f"SELECT DISTINCT patient_id, day FROM ({edges}) WHERE day IS NOT NULL "
                                 f"AND day >= first_day AND day <= {as_of}"))
    certain = "(r.member AND r.taken_ok AND r.sure_lo IS NOT NULL AND r.sure_lo <= d.day AND d.day <= r.sure_hi)"
    # the member/taken_ok test of `certain`: evaluate's `sure` is None for a record on hold or only intended

    def total(where: str, column: str) -> str:
        listed = f"coalesce(list({column} ORDER BY r.seq) FILTER (WHERE {where}), [])"
        return _snap12(f"list_reduce(list_prepend(CAST(0.0 AS DOUBLE), {listed}), lambda a, b: a + b)")
    doubt_why = (f"(CASE WHEN NOT {certain} AND len(r.why) = 0 THEN ['may not be taken that day (dates)'] "
                 f"ELSE r.why END)")
    gen.ctes.append((f"{name}t", f"""
        SELECT d.patient_id, d.day, bool_or({certain}) AS taking_sure, {total(certain, 'r.low')} AS lower,
            {total('TRUE', 'r.high')} AS upper,
            coalesce(min(r.low) FILTER (WHERE NOT {certain}), {_INF_SQL}) AS cheapest,
            list(r.who || ': ' || (CASE WHEN len({doubt_why}) = 0 THEN 'unknown' ELSE array_to_string({doubt_why}, ', ') END))
                FILTER (WHERE NOT {certain} OR isinf(r.high) OR r.low <> r.high) AS doubts
        FROM {name}d d JOIN {name}r r ON r.patient_id = d.patient_id AND r.pos_lo <= d.day AND d.day <= r.pos_hi
        GROUP BY d.patient_id, d.day"""))
    least = f"(CASE WHEN taking_sure THEN lower ELSE {_snap12('(lower + cheapest)')} END)"
    gen.ctes.append((f"{name}v", f"""
        SELECT patient_id, bool_or(taking_sure AND {_in_dose_sql(dose.op, 'lower', 'upper', dose.value, dose.upper, True)})
                AS yes,
            bool_or({_in_dose_sql(dose.op, least, 'upper', dose.value, dose.upper, False)}) AS open,
            flatten(coalesce(list(doubts) FILTER (WHERE {_in_dose_sql(dose.op, least, 'upper', dose.value, dose.upper,
                                                                      False)} AND doubts IS NOT NULL), [])) AS m
        FROM {name}t GROUP BY patient_id"""))
    alone = "(member AND taken_ok AND NOT isinf(high))"
    over = (f"bool_or(member AND taken_ok AND low {_SQL_OPS[dose.op]} {num(dose.value)})"
            if dose.op in (">", ">=") else "FALSE")
    gen.ctes.append((name, f"""
        SELECT c.patient_id, c.n, c.alone, c.holds, c.some, c.over, v.yes, v.open, v.m FROM (
            SELECT patient_id, count(*) AS n, bool_and({alone}) AS alone,
                bool_and({_in_dose_sql(dose.op, 'low', 'high', dose.value, dose.upper, True)}) AS holds,
                bool_and({_in_dose_sql(dose.op, 'low', 'high', dose.value, dose.upper, False)}) AS some,
                {over} AS over
            FROM {name}r GROUP BY patient_id) c LEFT JOIN {name}v v ON v.patient_id = c.patient_id"""))
    gen.joins.append(f"LEFT JOIN {name} ON {name}.patient_id = p.patient_id")
    a = name
    value = (f"(CASE WHEN NOT p.has_medications THEN NULL WHEN {a}.patient_id IS NULL THEN FALSE "
             f"WHEN {a}.yes IS TRUE THEN TRUE "
             f"WHEN {a}.n = 1 AND {a}.open IS TRUE AND {a}.alone AND {a}.holds THEN TRUE "
             f"WHEN {a}.n = 1 AND {a}.open IS TRUE AND {a}.alone AND NOT {a}.some THEN FALSE "
             f"WHEN {a}.over THEN TRUE WHEN {a}.open IS TRUE THEN NULL ELSE FALSE END)")
    missing = (f"(CASE WHEN NOT p.has_medications THEN ['medications (not provided)'] "
               f"WHEN len(coalesce({a}.m, [])) = 0 THEN ['the dates or doses of the records'] ELSE {a}.m END)")
    return value, missing, EMPTY


# ---------------------------------------------------------------- derived values (screening.derived)
_DERIVED_FORMULA = {
    "BMI": "({weight} / (({height} / 100.0) * ({height} / 100.0)))",
    "creatinine_clearance": ("((CAST(140 - {age} AS DOUBLE) * {weight} * (CASE WHEN p.sex = 'female' THEN 0.85 ELSE 1.0 END)) "
                             "/ (72.0 * {creatinine}))"),
    "eGFR": ("(142.0 * pow(least({creatinine} / (CASE WHEN p.sex = 'female' THEN 0.7 ELSE 0.9 END), 1.0), "
             "(CASE WHEN p.sex = 'female' THEN -0.241 ELSE -0.302 END)) "
             "* pow(greatest({creatinine} / (CASE WHEN p.sex = 'female' THEN 0.7 ELSE 0.9 END), 1.0), -1.200) "
             "* pow(0.9938, CAST({age} AS DOUBLE)) * (CASE WHEN p.sex = 'female' THEN 1.012 ELSE 1.0 END))"),
    "corrected_calcium": "({calcium} + 0.8 * (4.0 - {albumin}))",
}
"""derived.py's formulas, with the same operations in the same order (so the same floating-point results)."""


def _surely_adult_sql(day_sql: str) -> str:
    """derived._surely_adult_on."""
    return (f"(p.birth_hi IS NOT NULL AND p.birth_hi <= {day_sql} AND "
            f"{_whole('years', 'p.birth_hi', day_sql)} >= {derived.ADULT_YEARS})")


def _derivation_sql(d: derived.Derivation) -> str:
    """derived._derive for one derivation over every patient: one row per derived result (value or problem)."""
    from ..analytes import catalogue

    analyte = catalogue().lookup(d.key)
    keys = ", ".join(q(i.key) for i in d.inputs)
    days = f"SELECT DISTINCT patient_id, lo, hi FROM nobs WHERE key IN ({keys}) AND lo IS NOT NULL"
    ranked = ("SELECT patient_id, seq, lo, hi, value, comparator, problem, unit, "
              "(CASE WHEN factor IS NULL OR factor = 0 THEN value ELSE (value - addend) / factor END) AS own, "
              "row_number() OVER (PARTITION BY patient_id ORDER BY hi DESC NULLS LAST, lo DESC NULLS LAST, seq) AS rn "
              "FROM nobs WHERE key = {key}")
    picks, joins = [], []
    for j, spec in enumerate(d.inputs):
        cand = (f"SELECT d.patient_id, d.lo, d.hi, arg_min(struct_pack(seq := i.seq, lo := i.lo, hi := i.hi, "
                f"value := i.value, comparator := i.comparator, problem := i.problem, unit := i.unit, own := i.own), i.rn) AS c "
                f"FROM ({days}) d JOIN ({ranked.format(key=q(spec.key))}) i ON i.patient_id = d.patient_id "
                f"AND i.hi IS NOT NULL AND i.hi <= d.lo WHERE d.lo = d.hi GROUP BY d.patient_id, d.lo, d.hi")
        joins.append(f"LEFT JOIN ({cand}) c{j} ON c{j}.patient_id = d.patient_id AND c{j}.lo = d.lo AND c{j}.hi = d.hi")
        picks.append(f"c{j}.c AS i{j}")
    base = f"SELECT d.*, {', '.join(picks)} FROM ({days}) d {' '.join(joins)}"
    found, problems = [], []
    for j, spec in enumerate(d.inputs):
        c = f"i{j}"
        close = f"date_diff('day', {c}.hi, x.lo) <= {spec.days}"
        if spec.adult_any_time:
            close = f"({close} OR {_surely_adult_sql(f'{c}.lo')})"
        found.append(f"({c} IS NOT NULL AND {close})")
        usable = f"({c}.value IS NOT NULL AND {c}.comparator IS NULL AND {c}.lo = {c}.hi)"
        bound = (f"rtrim(rtrim('reported only as a bound (' || {c}.comparator || ' ' || printf('%.6g', {c}.own) || ' ' "
                 f"|| coalesce({c}.unit, '') || ')', ')'), ' ') || ')'")
        why = (f"(CASE WHEN {c}.lo <> {c}.hi THEN 'dated only ' || {show(f'{c}.lo', f'{c}.hi')} "
               f"WHEN {c}.comparator IS NOT NULL AND {c}.value IS NOT NULL THEN {bound} "
               f"ELSE coalesce({c}.problem, 'not a number') END)")
        limit = "on the same day" if spec.days == 0 else f"within {spec.days} days before"
        extra = " (or any height taken as an adult)" if spec.adult_any_time else ""
        problems.append(f"(CASE WHEN NOT {found[j]} THEN {q(f'no {spec.key} result {limit}{extra}')} "
                        f"WHEN NOT {usable} THEN {q(spec.key + ' result of ')} || {show(f'{c}.lo', f'{c}.hi')} "
                        f"|| ' cannot be used: ' || {why} END)")
    listed = [f"(CASE WHEN x.lo <> x.hi THEN 'an input is dated only ' || {show('x.lo', 'x.hi')} END)"]
    listed += [f"(CASE WHEN x.lo = x.hi THEN {p} END)" for p in problems]
    if d.needs_sex:
        listed.append("(CASE WHEN p.sex IS NULL OR p.sex = 'unknown' THEN 'sex not recorded' "
                      "WHEN p.sex NOT IN ('female', 'male') THEN 'sex ' || p.sex || ': the formula needs female or male' END)")
    young = _whole("years", "least(p.birth_hi, x.lo)", "x.lo")
    old = _whole("years", "p.birth_lo", "x.lo")
    if d.needs_age or d.adults_only:
        adults = ""
        if d.adults_only:
            adults = (f"WHEN {young} < {derived.ADULT_YEARS} THEN {q(d.method + ' is for adults; age on ')} || "
                      f"{show('x.lo', 'x.hi')} || ' is ' || (CASE WHEN {young} = {old} THEN CAST({young} AS VARCHAR) "
                      f"ELSE CAST({young} AS VARCHAR) || ' to ' || CAST({old} AS VARCHAR) END) ")
        listed.append(f"(CASE WHEN p.birth_lo IS NULL THEN 'birth_date not recorded' WHEN p.birth_lo > x.lo THEN "
                      f"'birth_date ' || {show('p.birth_lo', 'p.birth_hi')} || ' is after the result' {adults}END)")
    pre = f"list_filter([{', '.join(listed)}], lambda s: s IS NOT NULL)"
    identity = ", ".join(f"i{j}.seq" for j in range(len(d.inputs)))
    # a date whose inputs (all of them) are the same as an earlier date's gives no new value
    rows = (f"SELECT x.*, p.sex, {pre} AS pre, {young} AS young, {old} AS old FROM ({base}) x "
            f"JOIN patients p ON p.patient_id = x.patient_id "
            f"WHERE x.lo <> x.hi OR {found[0]}")
    kept = (f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY patient_id, len(pre) = 0, {identity} "
            f"ORDER BY lo) AS dup FROM ({rows})) WHERE len(pre) > 0 OR dup = 1")
    values = {spec.key: f"i{j}.value" for j, spec in enumerate(d.inputs)}
    formula = _DERIVED_FORMULA[d.key].replace("p.sex", "sex")  # the row carries the sex
    if d.needs_age:
        r_young = formula.format(age="young", **values)
        r_old = formula.format(age="old", **values)
        two = "(young <> old)"
    else:
        r_young = r_old = formula.format(**values)
        two = "FALSE"
    low, high = d.plausible
    top = "CAST('inf' AS DOUBLE)" if high == float("inf") else num(high)
    unit = analyte.unit_text
    computed = (f"SELECT *, least(ry, ro) AS r_lo, greatest(ry, ro) AS r_hi FROM (SELECT *, "
                f"(CASE WHEN len(pre) = 0 THEN {r_young} END) AS ry, (CASE WHEN len(pre) = 0 THEN {r_old} END) AS ro "
                f"FROM ({kept}))")
    shown = (f"(CASE WHEN {two} THEN printf('%.4g', r_lo) || ', ' || printf('%.4g', r_hi) ELSE printf('%.4g', r_lo) END)")
    no_value = " OR ".join(f"({r} IS NULL OR isnan({r}) OR isinf({r}) OR {r} < 0)" for r in ("ry", "ro"))
    outside = " OR ".join(f"(NOT ({num(low)} <= {r} AND {r} <= {top}))" for r in ("ry", "ro"))
    post = (f"(CASE WHEN len(pre) > 0 THEN NULL WHEN {no_value} THEN {q(d.method + ' gives no value for these inputs')} "
            f"WHEN {outside} THEN {q(d.method + ' gives ')} || {shown} || "
            f"{q(f', outside {low:g} to {high:g} {unit}: the inputs cannot be right')} END)")
    fresh = [f"i{j}.lo" for j, spec in enumerate(d.inputs) if spec.fresh]
    oldest = f"least({', '.join(fresh)})" if fresh else "lo"
    dimension = str(analyte.unit.dimension)
    final = (f"SELECT patient_id, lo, hi, problems, {q(d.key)} AS key, "
             f"CASE WHEN len(problems) = 0 THEN r_lo END AS value, "
             f"CASE WHEN len(problems) = 0 AND {two} AND r_hi <> r_lo THEN r_hi END AS value_high, "
             f"CASE WHEN len(problems) = 0 THEN {oldest} ELSE lo END AS oldest "
             f"FROM (SELECT *, list_filter(list_append(pre, {post}), lambda s: s IS NOT NULL) AS problems FROM ({computed}))")
    return (f"SELECT patient_id, CAST(-1 - row_number() OVER (PARTITION BY patient_id ORDER BY lo, hi) AS INTEGER) AS seq, "
            f"key, lo, hi, CAST(NULL AS VARCHAR) AS comparator, {q(unit)} AS unit, 'number' AS kind, "
            f"CAST(NULL AS VARCHAR) AS text, "
            f"CASE WHEN len(problems) > 0 THEN {q(f'cannot derive by {d.method}: ')} || array_to_string(problems, '; ') END "
            f"AS problem, value, CASE WHEN value IS NOT NULL THEN {q(dimension)} END AS dimension, "
            f"CAST(NULL AS DOUBLE) AS factor, CAST(NULL AS DOUBLE) AS addend, value AS raw_value, "
            f"CAST(0.0 AS DOUBLE) AS resolution, CAST(NULL AS DOUBLE) AS ref_low, CAST(NULL AS DOUBLE) AS ref_high, "
            f"CAST(NULL AS DOUBLE) AS raw_ref_low, CAST(NULL AS DOUBLE) AS raw_ref_high, "
            f"CAST(NULL AS VARCHAR) AS ref_problem_low, CAST(NULL AS VARCHAR) AS ref_problem_high, value_high, oldest "
            f"FROM ({final})")


def _derived_observations(keys: list[str]) -> str:
    """The derived results (screening.derived.derive_all) of the analytes in ``keys``, as rows shaped like nobs
    plus ``value_high`` (the top of an interval when the age is uncertain) and ``oldest`` (the oldest fresh input)."""
    return " UNION ALL ".join(_derivation_sql(derived.DERIVATIONS[k]) for k in keys)


def _use_derived(gen: Generator, key: str) -> None:
    """A test of a derived analyte reads its measured results and, from its inputs, its derived ones."""
    gen.derived_keys.add(key)
    gen.plan.keys.update(i.key for i in derived.DERIVATIONS[key].inputs)


def _lab_source(gen: Generator, key: str, start: str, end: str) -> str:
    """The results a test of ``key`` reads (derived.series_for): every measured result when one is in the window
    [start, end], else the derived results usable in the window when there are any, else the measured ones."""
    if key not in derived.DERIVATIONS:
        return gen.results(key)
    _use_derived(gen, key)
    measured = (f"SELECT DISTINCT patient_id FROM nobs WHERE key = {q(key)} AND lo IS NOT NULL AND lo <= {end} "
                f"AND hi >= {start}")
    kept = (f"SELECT * FROM dobs WHERE key = {q(key)} AND hi <= {end} AND oldest >= {start} "
            f"AND patient_id NOT IN ({measured})")
    columns = ", ".join(_OBS_COLUMNS)
    # no WITH here: Spark's rendering hoists every WITH to the top of the query, where names must differ
    return (f"(SELECT {columns}, CAST(NULL AS DOUBLE) AS value_high FROM nobs WHERE key = {q(key)} "
            f"AND patient_id NOT IN (SELECT patient_id FROM ({kept}) dk) UNION ALL SELECT {columns}, value_high "
            f"FROM ({kept}) dk)")


_OBS_COLUMNS = ("patient_id", "seq", "key", "lo", "hi", "comparator", "unit", "kind", "text", "problem", "value",
                "dimension", "factor", "addend", "raw_value", "resolution", "ref_low", "ref_high", "raw_ref_low",
                "raw_ref_high", "ref_problem_low", "ref_problem_high")
"""The columns of nobs a lab test reads (a derived series is read in their place: a union by position, which
every dialect has)."""


# ---------------------------------------------------------------- per-visit occasions
def _visit_occasions(gen: Generator, node: ir.VisitOccasions, k: int):
    """evaluate.visit_occasions: the expression decided on each date with a result of one of its analytes
    (evaluate._on_day), then the dates counted as `on at least N occasions` counts results."""
    gen.uses_obs = True
    gen.plan.keys.update(node.keys)
    start, end = gen.start(node.window), gen.end
    name = f"a{k}"
    keys = ", ".join(q(key) for key in node.keys)
    inside = _in_window("o.lo", "o.hi", start, end)
    gen.ctes.append((f"{name}d", f"SELECT DISTINCT o.patient_id, o.lo, o.hi, {inside} AS ins FROM nobs o "
                                 f"WHERE o.key IN ({keys}) AND o.lo IS NOT NULL AND o.lo <= {end} AND {inside} IS NOT FALSE"))
    joins, leaves = [], {}

    def walk(n) -> tuple[str, str]:
        if isinstance(n, ir.LabCompare):
            if id(n) not in leaves:
                i = leaves[id(n)] = len(leaves)
                compared = _Compare(n, gen.ctx.ranges).rows(
                    gen.results(n.key), f"o.key = {q(n.key)} AND o.lo IS NOT NULL AND o.lo <= {end} AND {inside} IS NOT FALSE")
                item = f"(CASE WHEN o.pr IS NOT NULL THEN {q(n.label + ' result of ')} || {show('o.lo', 'o.hi')} || ': ' || o.pr END)"
                rows = f"SELECT o.patient_id, o.lo, o.hi, o.cv, o.pr, {item} AS item FROM ({compared}) o"
                kinds = ("((count(*) FILTER (WHERE cv IS TRUE) > 0)::INTEGER + (count(*) FILTER (WHERE cv IS FALSE) > 0)"
                         "::INTEGER + (count(*) FILTER (WHERE cv IS NULL) > 0)::INTEGER)")
                probs = f"coalesce(list(item) FILTER (WHERE cv IS NULL AND pr IS NOT NULL), {EMPTY})"
                disagree = f"{q(n.label + ' results of ')} || {show('lo', 'hi')} || ' disagree'"
                gen.ctes.append((f"{name}l{i}", (
                    f"SELECT patient_id, lo, hi, CASE WHEN {kinds} > 1 THEN NULL ELSE bool_or(cv) END AS v, "
                    f"CASE WHEN {kinds} > 1 AND len({probs}) = 0 THEN [{disagree}] "
                    f"WHEN {kinds} > 1 OR bool_or(cv) IS NULL THEN {probs} ELSE {EMPTY} END AS m "
                    f"FROM ({rows}) GROUP BY patient_id, lo, hi")))
                joins.append(f"LEFT JOIN {name}l{i} l{i} ON l{i}.patient_id = d.patient_id AND l{i}.lo = d.lo "
                             f"AND l{i}.hi = d.hi")
            i = leaves[id(n)]
            return (f"l{i}.v", f"(CASE WHEN l{i}.patient_id IS NULL THEN [{q(n.label + ' on ')} || {show('d.lo', 'd.hi')}] "
                               f"ELSE l{i}.m END)")
        if isinstance(n, ir.Not):
            value, missing = walk(n.operand)
            return f"(NOT {value})", missing
        if isinstance(n, (ir.And, ir.Or)):
            parts = [walk(child) for child in n.operands]
            value = "(" + f" {'OR' if isinstance(n, ir.Or) else 'AND'} ".join(v for v, _ in parts) + ")"
            missing = cat(*[f"(CASE WHEN {v} IS NULL THEN {m} ELSE {EMPTY} END)" for v, m in parts])
            return value, f"(CASE WHEN {value} IS NULL THEN {missing} ELSE {EMPTY} END)"
        raise Unsupported(f"{type(n).__name__} inside per-visit occasions has no SQL translation: {node.source_text}")

    value, missing = walk(node.expr)
    partial = f"'the results of ' || {show('lo', 'hi')} || ': a date known only to the month or year'"
    uncertain = f"'the results of ' || {show('lo', 'hi')} || ': date uncertain relative to the window'"
    day = (f"SELECT d.patient_id, d.lo, d.hi, d.ins, {value} AS v0, {missing} AS m0 FROM {name}d d {' '.join(joins)}")
    adjusted = (f"SELECT patient_id, lo, hi, ins, CASE WHEN lo <> hi AND v0 IS NOT FALSE THEN NULL ELSE v0 END AS v1, "
                f"CASE WHEN lo <> hi AND v0 IS NOT FALSE THEN list_append(m0, {partial}) ELSE m0 END AS m1 "
                f"FROM ({day})")
    final = (f"SELECT patient_id, lo, hi, CASE WHEN ins IS NULL THEN NULL ELSE v1 END AS v, "
             f"CASE WHEN ins IS NULL THEN list_append(m1, {uncertain}) ELSE m1 END AS m "
             f"FROM ({adjusted}) WHERE NOT (ins IS NULL AND v1 IS FALSE)")
    gen.ctes.append((f"{name}s", final))
    need = node.count
    within = f" within {node.window}" if node.window is not None else ""
    repeat = f"a repeat visit with {', '.join(node.keys)} results{within}"
    counted = (f"SELECT patient_id, count(*) FILTER (WHERE v IS TRUE) AS t, count(*) FILTER (WHERE v IS NULL) AS u, "
               f"count(*) FILTER (WHERE v IS NOT FALSE) AS pending, max(hi) FILTER (WHERE v IS NOT FALSE) AS latest, "
               f"coalesce(flatten(list(m) FILTER (WHERE v IS NULL)), {EMPTY}) AS dm FROM {name}s GROUP BY patient_id")
    ruled = (f"(pending = 0 OR EXISTS (SELECT 1 FROM {name}s x WHERE x.patient_id = c.patient_id AND x.v IS FALSE "
             f"AND x.lo > c.latest))")
    gen.ctes.append((name, f"SELECT c.patient_id, CASE WHEN t >= {need} THEN TRUE WHEN t + u >= {need} THEN NULL "
                           f"WHEN {ruled} THEN FALSE ELSE NULL END AS v, "
                           f"CASE WHEN t >= {need} THEN {EMPTY} WHEN t + u >= {need} THEN dm WHEN {ruled} THEN {EMPTY} "
                           f"ELSE list_concat([{q(repeat)}], dm) END AS m FROM ({counted}) c"))
    gen.joins.append(f"LEFT JOIN {name} ON {name}.patient_id = p.patient_id")
    none_found = f"results of {', '.join(node.keys)}{within}"
    value = f"(CASE WHEN NOT p.has_observations THEN NULL ELSE {name}.v END)"
    missing = (f"(CASE WHEN NOT p.has_observations THEN ['observations (not provided)'] "
               f"WHEN {name}.patient_id IS NULL THEN [{q(none_found)}] "
               f"ELSE {name}.m END)")
    return value, missing, EMPTY


# ---------------------------------------------------------------- dose trends
def _dose_trend(gen: Generator, node: ir.DoseTrend, k: int):
    """evaluate.dose_trend: over the last N the drug is taken every day, by records with exact dates, at a daily
    dose that never changes (stable) or never rises (not increasing); false needs proof, unknown otherwise."""
    index = gen.matcher(node.matcher)
    as_of, start = gen.end, gen.start(node.duration)
    name = f"a{k}"
    who = _plain_name("medication", "e").replace("e.kind", q("medications"))
    verification = "lower(regexp_replace(e.verification, '^\\s+|\\s+$', '', 'g'))"
    never = ", ".join(q(x) for x in _NEVER_HAPPENED)
    on = " AND ".join(f"dd.{c} IS NOT DISTINCT FROM e.{c}" for c in DOSE_COLUMNS)
    status = "lower(e.status)"
    active = f"(CASE WHEN {status} = 'intended' THEN NULL ELSE {_active_sql('medications', as_of)} END)"
    sure = f"(dc.m{index} IS TRUE)"
    doubt = (f"(CASE WHEN NOT {sure} THEN {who} || ': ' || e.unreadable || {q(': cannot tell whether it is in ' + node.matcher.name)} "
             f"WHEN {verification} <> '' AND {verification} <> 'confirmed' THEN {who} || ': verification status ' "
             f"|| {verification} || ', not confirmed' "
             f"WHEN {status} = 'on-hold' THEN {who} || ': on hold' "
             f"WHEN e.start_lo IS NULL THEN {who} || ': start date not recorded' "
             f"WHEN e.start_lo <> e.start_hi THEN {who} || ': start date not a full date' "
             f"WHEN e.end_lo IS NOT NULL AND e.end_lo <> e.end_hi THEN {who} || ': end date not a full date' "
             f"WHEN e.end_lo IS NULL AND {active} IS FALSE THEN {who} || ': stopped, end date not recorded' "
             f"WHEN e.end_lo IS NULL AND {active} IS NULL THEN {who} || ': status and end date not recorded' END)")
    path = "'$.medications[' || CAST(e.seq AS VARCHAR) || ']'"
    dose_missing = (f"(CASE WHEN NOT dd.recorded THEN {who} || ': dose not recorded' WHEN dd.daily IS NULL THEN {who} "
                    f"|| ': ' || coalesce(replace(dd.daily_problem, {q(DOSE_PATH)}, {path}), 'daily dose not recorded') END)")
    rows = (f"SELECT e.patient_id, e.seq, {doubt} AS doubt, e.start_lo AS s, least(coalesce(e.end_lo, {as_of}), {as_of}) AS f, "
            f"CASE WHEN dd.recorded THEN dd.daily END AS d, {dose_missing} AS dm, {who} AS who "
            f"FROM medications e LEFT JOIN dict_record_codes dc ON dc.code IS NOT DISTINCT FROM e.code "
            f"AND dc.codes IS NOT DISTINCT FROM e.codes LEFT JOIN dict_doses dd ON {on} "
            f"WHERE NOT ((NOT {sure} AND e.unreadable IS NULL) OR coalesce({status} IN ({never}), FALSE)) "
            f"AND NOT coalesce(e.start_lo > {as_of}, FALSE) AND NOT coalesce(e.end_hi < {start}, FALSE)")
    gen.ctes.append((f"{name}r", rows))
    gen.ctes.append((f"{name}s", f"SELECT *, row_number() OVER (PARTITION BY patient_id ORDER BY s, f, seq) AS idx "
                                 f"FROM {name}r WHERE doubt IS NULL"))
    stable = "TRUE" if node.trend == "stable" else "FALSE"
    pairs = (f"SELECT a.patient_id, bool_or(b.s > a.f AND (b.d > a.d OR {stable})) AS falls, "
             f"list(a.who || ' and ' || b.who || ' overlap in time with different doses (' || printf('%g', a.d) || ' and ' "
             f"|| printf('%g', b.d) || ' mg/day)' ORDER BY a.idx, b.idx) FILTER (WHERE b.s <= a.f) AS om "
             f"FROM {name}s a JOIN {name}s b ON b.patient_id = a.patient_id AND b.idx > a.idx "
             f"AND a.d IS NOT NULL AND b.d IS NOT NULL AND a.d <> b.d GROUP BY a.patient_id")
    before = f"CAST({start} - INTERVAL 1 DAY AS DATE)"
    prev = (f"greatest({before}, coalesce(max(f) OVER (PARTITION BY patient_id ORDER BY idx ROWS BETWEEN UNBOUNDED "
            f"PRECEDING AND 1 PRECEDING), {before}))")
    covered = (f"SELECT patient_id, arg_min(struct_pack(lo := CAST(prev + INTERVAL 1 DAY AS DATE), "
               f"hi := CAST(s - INTERVAL 1 DAY AS DATE)), idx) FILTER (WHERE s > CAST(prev + INTERVAL 1 DAY AS DATE)) AS hole, "
               f"greatest({before}, max(f)) AS reach, list(dm ORDER BY idx) FILTER (WHERE dm IS NOT NULL) AS dms "
               f"FROM (SELECT *, {prev} AS prev FROM {name}s) GROUP BY patient_id")
    doubts = f"SELECT patient_id, list(doubt ORDER BY seq) AS ds FROM {name}r WHERE doubt IS NOT NULL GROUP BY patient_id"
    gap = (f"(CASE WHEN c.hole IS NOT NULL THEN c.hole WHEN coalesce(c.reach, {before}) < {as_of} THEN "
           f"struct_pack(lo := CAST(coalesce(c.reach, {before}) + INTERVAL 1 DAY AS DATE), hi := {as_of}) END)")
    when = (f"(CASE WHEN gap.lo = gap.hi THEN {show('gap.lo', 'gap.lo')} ELSE {show('gap.lo', 'gap.lo')} || ' to ' "
            f"|| {show('gap.hi', 'gap.hi')} END)")
    matcher = node.matcher.name
    body = (f"SELECT patient_id, falls, gap, ds, "
            f"list_concat(coalesce(ds, {EMPTY}), coalesce(dms, {EMPTY}), coalesce(om, {EMPTY}), "
            f"CASE WHEN gap IS NOT NULL THEN [{q('no ' + matcher + ' record with full dates covers ')} || "
            f"{when}] ELSE {EMPTY} END) AS missing FROM ("
            f"SELECT p.patient_id, pr.falls, {gap} AS gap, d.ds, c.dms, pr.om FROM patients p "
            f"LEFT JOIN ({covered}) c ON c.patient_id = p.patient_id LEFT JOIN ({pairs}) pr ON pr.patient_id = p.patient_id "
            f"LEFT JOIN ({doubts}) d ON d.patient_id = p.patient_id WHERE p.has_medications)")
    gen.ctes.append((name, f"SELECT patient_id, CASE WHEN falls IS TRUE THEN FALSE "
                           f"WHEN gap IS NOT NULL AND ds IS NULL THEN FALSE WHEN len(missing) > 0 THEN NULL ELSE TRUE END AS v, "
                           f"list_distinct(missing) AS m FROM ({body})"))
    gen.joins.append(f"LEFT JOIN {name} ON {name}.patient_id = p.patient_id")
    value = f"(CASE WHEN NOT p.has_medications THEN NULL ELSE {name}.v END)"
    missing = f"(CASE WHEN NOT p.has_medications THEN ['medications (not provided)'] ELSE {name}.m END)"
    return value, missing, EMPTY


def _lab_recorded(gen: Generator, node: ir.LabRecorded, k: int):
    """evaluate.lab_recorded: a result of the analyte dated in the window (any value); FALSE when the observation
    list holds none that may be one; NULL, naming each, when only undated, partly dated or empty results may be."""
    gen.uses_obs = True
    gen.plan.keys.add(node.key)
    start, end = gen.start(node.window), gen.end
    name = f"a{k}"
    inside = _in_window("o.lo", "o.hi", start, end)
    empty = f"(o.problem IS NOT DISTINCT FROM {q(NO_VALUE)})"
    date_why = ("(CASE WHEN o.lo IS NULL THEN 'date not recorded' ELSE 'date uncertain relative to the window' END)")
    why = f"array_to_string({lst(f'CASE WHEN {empty} THEN {q(NO_VALUE)} END', f'CASE WHEN {inside} IS NULL THEN {date_why} END')}, '; ')"
    rows = (f"SELECT o.patient_id, o.seq, o.lo, o.hi, {inside} IS TRUE AND NOT {empty} AS yes, "
            f"{q(node.label + ' result of ')} || {show('o.lo', 'o.hi')} || ': ' || {why} AS item "
            f"FROM nobs o WHERE o.key = {q(node.key)} AND (o.lo IS NULL OR o.lo <= {end}) AND {inside} IS NOT FALSE")
    gen.ctes.append((name, f"SELECT patient_id, bool_or(yes) AS yes, list(item ORDER BY hi DESC NULLS LAST, "
                           f"lo DESC NULLS LAST, seq) FILTER (WHERE NOT yes) AS m FROM ({rows}) GROUP BY patient_id"))
    gen.joins.append(f"LEFT JOIN {name} ON {name}.patient_id = p.patient_id")
    value = (f"(CASE WHEN NOT p.has_observations THEN NULL WHEN {name}.yes IS TRUE THEN TRUE "
             f"WHEN len(coalesce({name}.m, {EMPTY})) > 0 THEN NULL ELSE FALSE END)")
    missing = (f"(CASE WHEN NOT p.has_observations THEN [{q(node.label + ': no observations provided')}] "
               f"ELSE coalesce({name}.m, {EMPTY}) END)")
    return value, missing, EMPTY


def _refuse(what: str):
    def translate(gen, node, k):
        raise Unsupported(f"{what} is not translated to SQL yet: {node.source_text}")
    return translate


ATOMS = {
    ir.Const: _const,
    ir.AgeTest: _age,
    ir.SexTest: _sex,
    ir.FactTest: _fact,
    ir.Review: _review,
    ir.LabCompare: _lab_compare,
    ir.LabText: _lab_text,
    ir.LabRecorded: _lab_recorded,
    ir.RecordTest: _record_test,
    ir.RecordCount: _record_count,
    ir.InvestigationalTest: _investigational,
    ir.AnchoredRecordTest: _anchored_record,
    ir.AnchoredLabTest: _anchored_lab,
    ir.LabAggregate: _lab_aggregate,
    ir.DoseTotal: _dose_total,
    ir.VisitOccasions: _visit_occasions,
    ir.DoseTrend: _dose_trend,
}
"""Atom node type -> translation ``f(generator, node, k) -> (value, missing, reviews)`` SQL expressions over the
patient row ``p`` and the CTEs the function adds."""


def plan(checked: ir.CheckedRuleSet, as_of: date) -> Plan:
    """Compile a checked rule set for one as-of date. Raises :class:`Unsupported` for a construct not translated."""
    return Generator(checked, as_of).build()


def compile_sql(checked: ir.CheckedRuleSet, as_of: date, dialect: str = "duckdb", pretty: bool = False) -> str:
    """The query of a checked rule set, in ``dialect`` (``duckdb``, ``spark`` ...)."""
    return plan(checked, as_of).render(dialect, pretty)
