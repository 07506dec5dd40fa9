"""The checked form of a rule set: names resolved, codes indexed, thresholds in canonical units.

:mod:`screening.check` builds these nodes from the syntax tree; :mod:`screening.evaluate`
interprets them with explanations and :mod:`screening.compile` turns them into fast Python.
Every node keeps the text it was written as (``source_text``) for reports.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .codes import CodeMatcher
from .source import Span


@dataclass(eq=False)
class Node:
    span: Span = field(repr=False, kw_only=True)
    source_text: str = field(default="", repr=False, kw_only=True)


@dataclass(eq=False)
class Const(Node):
    value: bool


@dataclass(eq=False)
class Define(Node):
    """A use of a named sub-condition; evaluated once per patient."""

    name: str
    title: str | None
    body: Node | None = None  # filled in after all defines are checked (they may refer to each other)


@dataclass(eq=False)
class And(Node):
    operands: list[Node]


@dataclass(eq=False)
class Or(Node):
    operands: list[Node]


@dataclass(eq=False)
class Not(Node):
    operand: Node


@dataclass(eq=False)
class Known(Node):
    """True when the operand is true or false, false when it is unknown."""

    operand: Node


@dataclass(eq=False)
class IfThenElse(Node):
    condition: Node
    then: Node
    otherwise: Node


@dataclass(eq=False)
class CountOf(Node):
    mode: str  # at_least | at_most
    count: int
    operands: list[Node]


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: str

    def __str__(self) -> str:
        unit = self.unit[:-1] if self.amount == 1 else self.unit
        return f"{self.amount} {unit}"


@dataclass(frozen=True)
class Bound:
    """One side of a lab comparison: an absolute canonical value, or a multiple of ULN/LLN."""

    kind: str  # "value" | "ULN" | "LLN"
    value: float  # canonical value, or the multiplier of a limit
    written: str  # as the author wrote it, e.g. "1.5 mg/dL" or "2 x ULN"
    # a value converted (and so rounded) from another unit: the number as written and the conversion
    # from its unit; an observation written in the same unit is compared with it in that unit
    raw: float | None = None
    source: object = None  # units.Conversion


@dataclass(eq=False)
class LabCompare(Node):
    key: str  # analyte name (catalogue) or code; how the patient record groups observations
    label: str  # how reports name it
    canonical_unit: str | None  # display unit of canonical values
    dimension: str | None  # None: not checked at compile time (code outside the catalogue)
    selector: str  # latest | any | every
    op: str  # < <= > >= = != between
    bound: Bound
    upper: Bound | None
    occasions: int | None
    window: Duration | None


@dataclass(eq=False)
class VisitOccasions(Node):
    """Lab comparisons joined by and/or/not, decided with each day's results, true on at least ``count`` days."""

    expr: Node
    count: int
    window: Duration | None
    keys: tuple[str, ...]


@dataclass(eq=False)
class RecordCount(Node):
    """At least / at most ``count`` records (or treatment courses: distinct start dates) meeting ``test``."""

    mode: str  # at_least | at_most
    count: int
    courses: bool
    test: "RecordTest"


@dataclass(eq=False)
class LabAggregate(Node):
    """The mean, lowest or highest of the latest ``count`` results (or of every result in the window)
    compared with a value; ``lab`` holds the analyte, the comparison and the window."""

    function: str  # mean | min | max
    count: int | None
    lab: LabCompare


@dataclass(eq=False)
class LabText(Node):
    key: str
    label: str
    selector: str
    negated: bool
    value: str  # normalised text (a vocabulary term, or the text as written, lower case)
    window: Duration | None
    op: str = "is"  # "is", or < <= > >= = != on the ordinal scale (value is then a grade)


@dataclass(eq=False)
class LabRecorded(Node):
    """``HIV_test on record [within W]``: a result of the analyte is on record (dated in W, or at any date up
    to the as-of date), whatever its value; see evaluate.lab_recorded and docs/semantics.md#results-on-record."""

    key: str
    label: str
    window: Duration | None  # None: at any date (the rule set's `lab window` does not apply)


@dataclass(eq=False)
class AgeTest(Node):
    op: str
    value: float
    upper: float | None
    unit: str  # years | months


@dataclass(eq=False)
class SexTest(Node):
    negated: bool
    sex: str


_NUMERIC_TEXT = re.compile(r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)\s*")
_NUMERIC_OPS = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def field_number(actual) -> float | None:
    """A record field as a number: a JSON number, or text that is only a number ("3", " 2.5 ");
    anything else ("3A", "grade 3", "III", true) is not a number."""
    if isinstance(actual, bool):
        return None
    if isinstance(actual, (int, float)):
        return float(actual) if math.isfinite(actual) else None
    if isinstance(actual, str) and _NUMERIC_TEXT.fullmatch(actual):
        return float(actual)
    return None


@dataclass(eq=False)
class Qualifier:
    field_name: str
    op: str  # = != contains matches (text); < <= > >= = != (number, when value is a float)
    value: str | float
    pattern: object = None  # an RE2 pattern (linear-time matching), compiled by the checker

    @property
    def numeric(self) -> bool:
        return isinstance(self.value, float)

    def test(self, actual) -> bool | None:
        """The qualifier on one record's field: unknown when the field is absent, or when a number
        is needed and the field is not one."""
        if actual is None:
            return None
        if self.numeric:
            number = field_number(actual)
            return None if number is None else _NUMERIC_OPS[self.op](number, self.value)
        text = str(actual)
        if self.op in ("=", "!="):
            return (text.strip().lower() == self.value.strip().lower()) == (self.op == "=")
        if self.op == "contains":
            return self.value.lower() in text.lower()
        return self.pattern.search(text) is not None

    def unknown_reason(self, actual) -> str:
        """Why :meth:`test` is unknown for this field value."""
        if actual is None:
            return f"{self.field_name} not recorded"
        return f"{self.field_name} {str(actual)!r} is not a number"

    def __str__(self) -> str:
        if self.numeric:
            return f"{self.field_name} {self.op} {self.value:g}"
        return f'{self.field_name} {self.op} "{self.value}"'


@dataclass(eq=False)
class CodeQualifier:
    """``with histology in X``: the record's field holds a code (``"SNOMED:35917007"``) or a list of
    codes; true when one is in the value set, false when all are readable codes outside it, unknown
    when the field is absent or holds something that is not a code (a text such as "ductal")."""

    field_name: str
    matcher: CodeMatcher
    negated: bool = False  # `with FIELD not in X`: the Kleene negation of `in`
    cause: str | None = None  # `caused by medication X` (field caused_by): the record kind of the cause

    def test(self, actual) -> bool | None:
        """`in`: true when a readable code is in the set; false when every entry is a readable code and
        none is; unknown when the field is absent or an entry is not a code (it might be in the set).
        `not in`: the negation (unknown stays unknown)."""
        value = self._in(actual)
        return value if value is None or not self.negated else not value

    def _in(self, actual) -> bool | None:
        from .codes import SYSTEMS, normalise_code

        if actual is None:
            return None
        codes, unreadable = [], False
        for value in actual if isinstance(actual, list) else [actual]:
            system, sep, body = value.partition(":") if isinstance(value, str) else ("", "", "")
            if not sep or system not in SYSTEMS or not body.strip():
                unreadable = True
                continue
            codes.append(normalise_code(value))
        # each entry is its own concept (two suspected drugs, two morphologies): classified one by one, so
        # that a code the terminology store cannot place is unknown, never "not in the set"
        found = [self.matcher.classify((code,))[0] for code in codes]
        if True in found:
            return True
        return None if unreadable or not codes or None in found else False

    def unknown_reason(self, actual) -> str:
        if actual is None:
            if self.cause is not None:
                return f"what it was caused by is not recorded (caused_by; needed for '{self}')"
            return f"{self.field_name} not recorded"
        entries = actual if isinstance(actual, list) else [actual]
        from .codes import SYSTEMS

        if all(isinstance(v, str) and v.partition(":")[0] in SYSTEMS and v.partition(":")[2].strip() for v in entries):
            return f"{self.field_name} {actual!r}: cannot tell whether it is in {self.matcher.name} (terminology)"
        return f"{self.field_name} {actual!r} is not a code (SYSTEM:CODE) that can be compared with {self.matcher.name}"

    def __str__(self) -> str:
        if self.cause is not None:
            return f"caused by {self.cause} {self.matcher.name}"
        return f"{self.field_name} {'not in' if self.negated else 'in'} {self.matcher.name}"


@dataclass(eq=False)
class TextSetQualifier:
    """``with intent not in ("palliative", "maintenance")``: a text field (or a list of texts) against
    texts written in the rule, compared as `=` compares (case and surrounding spaces ignored). `in`:
    true when an entry is one of them, false when none is; `not in`: its negation; an absent field is
    unknown."""

    field_name: str
    values: frozenset[str]  # normalised: stripped, lower case
    negated: bool
    written: tuple[str, ...]

    def test(self, actual) -> bool | None:
        if actual is None:
            return None
        entries = actual if isinstance(actual, list) else [actual]
        found = any(str(e).strip().lower() in self.values for e in entries if e is not None)
        return found != self.negated

    def unknown_reason(self, actual) -> str:
        return f"{self.field_name} not recorded"

    def __str__(self) -> str:
        listed = ", ".join(f'"{w}"' for w in self.written)
        return f"{self.field_name} {'not in' if self.negated else 'in'} ({listed})"


@dataclass(eq=False)
class OtherThan:
    """``other than X`` on a record: none of the record's own codes is in X (a record coded both as a
    malignancy and as breast cancer is the index diagnosis, not another one). Reads ``entry.codes``."""

    field_name: str  # "codes" (the record's own codes), for explanations
    matcher: CodeMatcher

    def test(self, codes) -> bool | None:
        if not codes:
            return None  # an unreadable record: its codes are unknown
        member = self.matcher.classify(codes)[0]
        return None if member is None else not member  # a code the terminology cannot place: unknown

    def unknown_reason(self, codes) -> str:
        if codes:
            why = self.matcher.classify(codes)[1] or "terminology"
            return f"whether it is other than {self.matcher.name} cannot be told ({why})"
        return f"its code cannot be read, so whether it is other than {self.matcher.name} is not known"

    def __str__(self) -> str:
        return f"other than {self.matcher.name}"


@dataclass(eq=False)
class DoseQualifier:
    """``with dose <= 10 mg/day`` on a medication record: the daily total in mg/day (``per`` "day") or
    the amount per administration in mg (``per`` "dose"), thresholds converted at compile time."""

    field_name: str  # always "dose"
    op: str  # < <= > >= = != between
    value: float
    upper: float | None
    per: str  # day | dose
    text: str  # as written in the rule, for explanations
    reference: str | None = None  # `prednisone equivalent`: the total is in mg of that drug (DoseTotal only)

    def test(self, dose) -> bool | None:
        amount = self.amount(dose)
        if amount is None:
            return None
        if self.op == "between":
            return self.value <= amount <= self.upper
        return _NUMERIC_OPS[self.op](amount, self.value)

    def amount(self, dose) -> float | None:
        if dose is None:
            return None
        return dose.daily if self.per == "day" else dose.per_dose

    def unknown_reason(self, dose) -> str:
        if dose is None:
            return "dose not recorded"
        problem = dose.daily_problem if self.per == "day" else dose.per_dose_problem
        return problem or ("daily dose not recorded" if self.per == "day" else "dose not recorded")

    def __str__(self) -> str:
        return self.text


@dataclass(eq=False)
class RecordTest(Node):
    kind: str  # conditions | medications | procedures | allergies | immunizations (the patient record's list)
    noun: str  # condition | medication | procedure | allergy | immunization
    status: str | None  # active | inactive | resolved
    matcher: CodeMatcher
    qualifiers: list[Qualifier]
    window: Duration | None
    timing: tuple[RecordTiming, ...] = ()  # all must hold for the same record


_TIMING_OPS = {"at_least": "at least", "more_than": "more than", "at_most": "at most", "less_than": "less than"}


@dataclass(frozen=True)
class RecordTiming:
    """When a record began or ended, or how long it lasted, against a duration (docs/semantics.md#timing-of-a-record).

    ``event``: start (started, diagnosed, onset, performed), end (stopped, ended), duration (for),
    unchanged (started that long ago and still active). ``op``: at_least | more_than | at_most | less_than.
    """

    event: str
    word: str
    op: str
    duration: Duration

    def __str__(self) -> str:
        tail = " ago" if self.event in ("start", "end") else ""  # `before screening` means the same
        return f"{self.word} {_TIMING_OPS[self.op]} {self.duration}{tail}"


@dataclass(eq=False)
class AnchoredRecordTest(Node):
    """A record test whose window is anchored at the date of another record, at its end, or at a lab result
    (docs/semantics.md#anchored-windows).

    True when some record meeting ``test`` has its date in the interval around the date of some anchor event
    (a record meeting ``anchor``, at its start or end; or a result meeting the lab comparison ``anchor``): ``after`` / ``before`` the anchor's date (strictly), or ``interval`` from
    ``before`` ahead of it to ``after`` past it (either None: the anchor's date itself), both ends included.
    """

    test: RecordTest  # without a window
    # a record (without a window), each result meeting a lab comparison, or the trial's index date
    anchor: "RecordTest | LabCompare | IndexDate"
    relation: str  # after | before | interval
    before: Duration | None
    after: Duration | None
    anchor_at: str = "start"  # start: the anchor record's date (onset, start); end: its end (a lab result: its date)
    # a window on one side of the anchor (`between 4 and 12 weeks after R`, relation interval): its first day is
    # ``start_after`` past the anchor's date (``before`` is then None), or its last day ``end_before`` ahead of it
    # (``after`` is then None)
    start_after: Duration | None = None
    end_before: Duration | None = None

    @property
    def relation_text(self) -> str:
        text = (self.relation if self.relation in ("after", "before")
                else around_text(self.before, self.after, self.start_after, self.end_before))
        return text + (" the end of" if self.anchor_at == "end" else "")


@dataclass(frozen=True)
class IndexDate:
    """The trial's own index event as an anchor (`index date first_dose "first dose of study drug"`): no patient
    record holds it; the as-of date stands for it (screen as of the planned date). See docs/language.md."""

    name: str
    description: str

    def shown(self, as_of_text: str) -> str:
        """How explanations name it: ``the first dose of study drug (index date, as of 2026-11-25)``."""
        return f"the {self.description} (index date, as of {as_of_text})"


def around_text(before: Duration | None, after: Duration | None, start_after: Duration | None = None,
                end_before: Duration | None = None) -> str:
    """A window around an anchor's date as the rule wrote it: `within 3 days before`, `from ... to ...`,
    `between 4 weeks and 12 weeks after`."""
    if start_after is not None:
        return f"between {start_after} and {after} after"
    if end_before is not None:
        return f"between {end_before} and {before} before"
    if before is None:
        return f"within {after} after"
    if after is None:
        return f"within {before} before"
    return f"from {before} before to {after} after"


@dataclass(eq=False)
class AnchoredLabTest(Node):
    """A lab comparison in a window around the date of a record (docs/semantics.md#anchored-windows): true
    when, around some record meeting ``anchor``, the results from ``before`` ahead of its date to ``after``
    past it (None: its date) meet ``test``."""

    test: LabCompare  # its window unused
    anchor: "RecordTest | LabCompare | IndexDate"
    before: Duration | None
    after: Duration | None
    anchor_at: str = "start"  # start | end, as for AnchoredRecordTest
    start_after: Duration | None = None  # as for AnchoredRecordTest
    end_before: Duration | None = None

    @property
    def relation_text(self) -> str:
        return (around_text(self.before, self.after, self.start_after, self.end_before)
                + (" the end of" if self.anchor_at == "end" else ""))


def window_around(node, lo: int, hi: int) -> tuple[int, int, int, int]:
    """The window of an anchored test around an anchor dated [lo, hi] (day ordinals): the range of its first day
    and the range of its last day, (first_lo, first_hi, last_lo, last_hi). Both ends included."""
    from .dates import moved

    def shifted(offset) -> tuple:
        if offset is None:
            return lo, hi
        duration, forward = offset
        return moved(lo, duration.amount, duration.unit, forward), moved(hi, duration.amount, duration.unit, forward)

    start, end = window_offsets(node)
    first, last = shifted(start), shifted(end)
    return first[0], first[1], last[0], last[1]


def window_offsets(node) -> tuple:
    """How an anchored window's first and last day lie from the anchor: each (duration, forward), or None for the
    anchor's own day (``within N before R`` starts N before it, ``between N and M after R`` starts N after it ...).
    The one reading of the window fields that :func:`window_around` and the SQL generator share."""
    if node.before is not None:
        start = node.before, False
    elif node.start_after is not None:
        start = node.start_after, True
    else:
        start = None
    if node.after is not None:
        end = node.after, True
    elif node.end_before is not None:
        end = node.end_before, False
    else:
        end = None
    return start, end


@dataclass(eq=False)
class DoseTrend(Node):
    """A medication's daily dose over the last ``duration``: ``stable`` (unchanged) or ``not
    increasing`` (stable or decreasing); see evaluate.dose_trend and docs/semantics.md "Dose trends"."""

    matcher: CodeMatcher
    trend: str  # stable | not increasing
    duration: Duration


@dataclass(frozen=True)
class Equivalent:
    """One drug of a dose-equivalence table (screening/data/dose_equivalents.toml): records it matches
    count ``factor`` mg of the reference drug per mg."""

    drug: str
    matcher: CodeMatcher
    factor: float  # mg of the reference drug per mg of this one (the lower end, where the table gives a range)
    factor_high: float  # the upper end (== factor when the table gives one dose)


@dataclass(eq=False)
class DoseTotal(Node):
    """A daily dose summed over the records taken on the same day (docs/semantics.md#daily-dose-totals):
    ``current medication prednisone with dose > 10 mg/day``, ``... with dose > 10 mg/day prednisone equivalent``.

    The days looked at: the as-of date (``test.status`` active, no window), each day of ``test.window``, or
    (neither) every day up to the as-of date. On a day, the total is the sum of the daily doses of the
    records meeting ``test`` that are taken that day (each multiplied by its drug's factor in
    ``equivalents`` when ``reference`` names a reference drug). True when on some day at least one such
    record is taken and the total meets ``dose``; unknown when that depends on a record that may be taken
    that day, may match, or has no daily dose (or no equivalent); false otherwise.
    """

    test: RecordTest  # the record test without its daily-dose qualifier (status and window: the days)
    dose: DoseQualifier  # per "day"; thresholds in mg/day (of the reference drug when ``reference`` is set)
    reference: str | None  # the reference drug of an equivalent dose ("prednisone"), or None
    equivalents: tuple[Equivalent, ...]  # the table's drugs (empty without ``reference``)
    record: RecordTest  # the same test with its dose qualifier, per record (used where one record stands alone)


@dataclass(eq=False)
class InvestigationalTest(Node):
    """Any medication record marked ``investigational`` (active on the as-of date with status
    "active", or overlapping the window); see evaluate.investigational_test."""

    status: str | None  # active | None
    window: Duration | None


@dataclass(frozen=True)
class FactInfo:
    """A fact's declaration: what it means and the question that settles it (for reports)."""

    name: str
    description: str
    question: str | None = None
    asked_of: str | None = None  # who answers it: investigator, coordinator, patient ...


@dataclass(eq=False)
class FactTest(Node):
    name: str
    mode: str  # true | compare | is
    op: str | None
    value: object
    negated: bool
    about: FactInfo | None = None  # the rule set's `fact NAME "..."` declaration, if any


@dataclass(eq=False)
class Review(Node):
    reason: str


@dataclass(eq=False)
class Criterion:
    """A checked inclusion or exclusion criterion."""

    id: str
    kind: str
    text: str
    condition: Node
    applies: Node | None
    draft: bool
    span: Span
    rule_text: str


@dataclass
class RangeTable:
    """Fallback reference ranges by (analyte key, sex); sex None is the entry for everyone."""

    entries: dict[tuple[str, str | None], tuple[float | None, float | None]] = field(default_factory=dict)

    def lookup(self, key: str, sex: str | None) -> tuple[float | None, float | None] | None:
        if sex is not None:
            found = self.entries.get((key, sex))
            if found is not None:
                return found
        return self.entries.get((key, None))


@dataclass
class CheckedRuleSet:
    trial_id: str
    title: str | None
    criteria: list[Criterion]
    defines: dict[str, Define]
    ranges: RangeTable
    lab_window: Duration | None
    source_name: str
    warnings: list = field(default_factory=list)  # lint warnings (Diagnostics): they do not stop a compile
    matchers: list = field(default_factory=list)  # every value set and inline code of the rule set
    terminology: list | None = None  # the store's sources the value sets were expanded with; None: no store
    facts: dict = field(default_factory=dict)  # fact name -> FactInfo (declared facts)
    index: IndexDate | None = None  # `index date NAME "..."`: what the as-of date stands for


def children(node: Node) -> list[Node]:
    """The operands of a logical node (a defined name's body included); an atom has none."""
    if isinstance(node, Define):
        return [node.body] if node.body is not None else []
    if isinstance(node, (And, Or, CountOf)):
        return list(node.operands)
    if isinstance(node, (Not, Known)):
        return [node.operand]
    if isinstance(node, IfThenElse):
        return [node.condition, node.then, node.otherwise]
    return []
