"""The syntax tree of a rule set: frozen dataclasses that keep the span they were written at."""
from __future__ import annotations

from dataclasses import dataclass, field

from .source import Source, Span


@dataclass(frozen=True)
class Node:
    span: Span = field(repr=False, compare=False, kw_only=True)


# ------------------------------------------------------------------ building blocks
@dataclass(frozen=True)
class Duration(Node):
    amount: int
    unit: str  # days | weeks | months | years (singular forms normalised to plural)


@dataclass(frozen=True)
class Window(Node):
    duration: Duration


@dataclass(frozen=True)
class AnalyteRef(Node):
    """A lab named by catalogue name (``ALT``) or by code (``LOINC:1742-6``)."""

    name: str | None = None
    code: str | None = None

    @property
    def text(self) -> str:
        return self.name or self.code or ""


@dataclass(frozen=True)
class Quantity(Node):
    value: float
    unit: str | None  # as written; None for a bare number


@dataclass(frozen=True)
class Limit(Node):
    """A multiple of the upper or lower limit of normal: ``2.5 x ULN``."""

    multiplier: float
    which: str  # "ULN" | "LLN"


Bound = Quantity | Limit


@dataclass(frozen=True)
class CodeLiteral(Node):
    system: str
    code: str
    op: str = ""  # value-set members only: "<<" the concept and its descendants, "<" the descendants only

    @property
    def text(self) -> str:
        return f"{self.system}:{self.code}"

    @property
    def written(self) -> str:
        return f"{self.op}{self.system}:{self.code}"


@dataclass(frozen=True)
class Qualifier(Node):
    field_name: str
    op: str  # "=" | "!=" | "contains" | "matches" with text; < <= > >= = != with a number
    value: str | float  # a number: a numeric comparison of the field


@dataclass(frozen=True)
class DoseQualifier(Node):
    """``with dose <= 10 mg/day``: a medication record's dose against a quantity with a unit."""

    field_name: str
    op: str  # < <= > >= = != between
    value: float
    unit: str
    upper: float | None = None
    upper_unit: str | None = None
    reference: str | None = None  # `prednisone equivalent`: the drug whose mg the total is counted in
    reference_span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CodeQualifier(Node):
    """``with histology in lobular_carcinoma``: a code-valued field of the record in a value set (or a code)."""

    field_name: str
    valueset: str | None
    code: CodeLiteral | None
    negated: bool = False  # `with histology not in X`
    cause: str | None = None  # `caused by medication X`: the record kind of the cause (field caused_by)


@dataclass(frozen=True)
class ListQualifier(Node):
    """``with intent not in ("palliative", "maintenance")`` or ``with histology in (ICD10:C50.1, <<SNOMED:x)``:
    a record field against a list written in the rule (texts, or codes)."""

    field_name: str
    negated: bool
    texts: tuple[str, ...]
    codes: tuple[CodeLiteral, ...]
    valuesets: tuple[str, ...] = ()


@dataclass(frozen=True)
class OtherThan(Node):
    """``condition malignancy other than breast_cancer``: the record's own codes outside a value set."""

    valueset: str | None
    code: CodeLiteral | None
    codes: tuple[CodeLiteral, ...] = ()  # `other than (A, B, c)`: the codes of the list
    valuesets: tuple[str, ...] = ()  # and its value-set names
    texts: tuple[str, ...] = ()  # texts in the list (an error: a record's codes are codes)


# ------------------------------------------------------------------ expressions
@dataclass(frozen=True)
class Expr(Node):
    pass


@dataclass(frozen=True)
class Const(Expr):
    value: bool


@dataclass(frozen=True)
class Reference(Expr):
    name: str


@dataclass(frozen=True)
class And(Expr):
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or(Expr):
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr


@dataclass(frozen=True)
class Unless(Expr):
    main: Expr
    exception: Expr


@dataclass(frozen=True)
class IfThenElse(Expr):
    condition: Expr
    then: Expr
    otherwise: Expr


@dataclass(frozen=True)
class CountOf(Expr):
    mode: str  # at_least | at_most | any | all
    count: int
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class LabCompare(Expr):
    selector: str  # latest | any | every
    analyte: AnalyteRef
    op: str  # < <= > >= = != between
    bound: Bound
    upper: Bound | None = None  # the second bound of `between`
    occasions: int | None = None
    window: Window | None = None


@dataclass(frozen=True)
class VisitOccasions(Expr):
    """`(systolic_bp > 140 mmHg or diastolic_bp > 90 mmHg) on at least 3 occasions within 6 months`."""

    expr: Expr
    count: int
    window: Window | None = None


@dataclass(frozen=True)
class RecordCount(Expr):
    """`at most 2 courses of medication chemo`, `at least 2 condition mi`: a number of matching records."""

    mode: str  # at_least | at_most
    count: int
    courses: bool  # count distinct start dates (treatment courses), not records
    test: "RecordTest"


@dataclass(frozen=True)
class LabAggregate(Expr):
    """`mean QTcF of the latest 3 > 470 ms`, `max ALT within 3 months > 120 U/L`."""

    function: str  # mean | min | max
    analyte: AnalyteRef
    count: int | None  # of the latest N; None: every result in the window
    op: str
    bound: Bound
    upper: Bound | None = None
    window: Window | None = None
    second_window: Window | None = None  # a window written both before and after the comparison (an error)


@dataclass(frozen=True)
class LabText(Expr):
    selector: str
    analyte: AnalyteRef
    negated: bool
    value: str
    window: Window | None = None
    op: str = "is"  # "is", or a comparison on the ordinal scale (urine_protein >= 2+)


@dataclass(frozen=True)
class LabRecorded(Expr):
    """`HIV_test on record [within 5 years]`: a result of the analyte is on record, whatever its value."""

    analyte: AnalyteRef
    window: Window | None = None


@dataclass(frozen=True)
class AgeTest(Expr):
    op: str  # comparison operator or "between"
    value: float
    upper: float | None
    unit: str  # years | months


@dataclass(frozen=True)
class SexTest(Expr):
    negated: bool
    sex: str


@dataclass(frozen=True)
class RecordTest(Expr):
    kind: str  # condition | medication | procedure | allergy | immunization
    status: str | None
    valueset: str | None
    code: CodeLiteral | None
    qualifiers: tuple[Qualifier, ...]
    window: Window | None = None
    timing: tuple[RecordTiming, ...] = ()  # started at least 4 weeks ago, for more than 1 month ...


@dataclass(frozen=True)
class RecordTiming(Node):
    """`started at least 4 weeks ago`, `stopped more than 14 days before screening`, `for at least 3 months`,
    `unchanged for at least 3 months`."""

    event: str  # start | end | duration | unchanged
    word: str  # as written: started stopped ended diagnosed onset performed for unchanged
    op: str  # at_least | more_than | at_most | less_than
    duration: Duration


@dataclass(frozen=True)
class AnchoredRecordTest(Expr):
    """A record test whose window is anchored at another record: `condition X after procedure Y`,
    `procedure X within 28 days after procedure Y`, `medication X from 5 days before to 2 days after procedure Y`."""

    test: RecordTest
    relation: str  # after | before | interval
    before: Duration | None  # interval: how far before the anchor's date it starts (None: on that date)
    after: Duration | None  # interval: how far after the anchor's date it ends (None: on that date)
    anchor: "RecordTest | LabCompare | None"  # an inline record test or lab comparison; None: a defined name
    anchor_name: str | None = None
    anchor_span: Span | None = field(default=None, compare=False)
    anchor_at: str = "start"  # start | end (`the end of procedure radiotherapy`)
    # a window on one side of the anchor (`between 4 and 12 weeks after R`): its first day is ``start_after`` past
    # the anchor's date (with ``after``), or its last day ``end_before`` ahead of it (with ``before``)
    start_after: Duration | None = None
    end_before: Duration | None = None


@dataclass(frozen=True)
class AnchoredLabTest(Expr):
    """A lab comparison in a window around another record: `ANC >= 1500/mm3 within 3 days before medication X`."""

    test: LabCompare
    relation: str  # interval (after / before are refused by the checker)
    before: Duration | None
    after: Duration | None
    anchor: "RecordTest | LabCompare | None"
    anchor_name: str | None = None
    anchor_span: Span | None = field(default=None, compare=False)
    anchor_at: str = "start"  # start | end
    start_after: Duration | None = None  # as for AnchoredRecordTest
    end_before: Duration | None = None


@dataclass(frozen=True)
class DoseTrend(Expr):
    """``medication X dose stable|not increasing for at least N``."""

    kind: str  # the record kind written (must be medication)
    valueset: str | None
    code: CodeLiteral | None
    trend: str  # stable | not increasing
    duration: Duration


@dataclass(frozen=True)
class InvestigationalTest(Expr):
    """``investigational medication within 4 weeks``: a medication record marked investigational."""

    status: str | None
    window: Window | None = None


@dataclass(frozen=True)
class FactTest(Expr):
    name: str
    mode: str  # true | compare | is
    op: str | None = None
    value: object = None
    negated: bool = False


@dataclass(frozen=True)
class Known(Expr):
    operand: Expr


@dataclass(frozen=True)
class Review(Expr):
    reason: str


# ------------------------------------------------------------------ declarations
@dataclass(frozen=True)
class ValueSetFile(Node):
    """``file "valuesets/x.json"``: a FHIR ValueSet read at compile time, relative to the rule file."""

    path: str


@dataclass(frozen=True)
class ValueSetPart(Node):
    """The members on one side of ``except``."""

    codes: tuple[CodeLiteral, ...] = ()
    includes: tuple[tuple[str, Span], ...] = ()
    files: tuple[ValueSetFile, ...] = ()


@dataclass(frozen=True)
class ValueSet(Node):
    name: str
    display: str | None
    codes: tuple[CodeLiteral, ...]
    includes: tuple[tuple[str, Span], ...]
    files: tuple[ValueSetFile, ...] = ()
    excluded: ValueSetPart | None = None  # the members after `except`


@dataclass(frozen=True)
class ReferenceRange(Node):
    analyte: AnalyteRef
    sex: str | None
    low: float
    high: float
    unit: str | None


@dataclass(frozen=True)
class Define(Node):
    name: str
    text: str | None
    expr: Expr


@dataclass(frozen=True)
class FactDeclaration(Node):
    """``fact NAME "description" question "..." asked of ROLE``: how reports name and ask for a fact."""

    name: str
    description: str
    question: str | None = None
    asked_of: str | None = None


@dataclass(frozen=True)
class Criterion(Node):
    id: str
    kind: str  # inclusion | exclusion
    text: str
    expr: Expr
    applies: Expr | None = None
    draft: bool = False


@dataclass(frozen=True)
class IndexDeclaration(Node):
    """`index date first_dose "first dose of study drug"`: the trial's own index event, named for anchors."""

    name: str
    description: str
    name_span: Span = field(compare=False)


@dataclass(frozen=True)
class RuleSetSyntax(Node):
    """A parsed rule file, before names, units and dimensions are checked."""

    source: Source
    trial_id: str
    title: str | None
    lab_window: Duration | None
    valuesets: tuple[ValueSet, ...]
    ranges: tuple[ReferenceRange, ...]
    defines: tuple[Define, ...]
    criteria: tuple[Criterion, ...]
    facts: tuple[FactDeclaration, ...] = ()  # fact declarations (descriptions and questions)
    indexes: tuple[IndexDeclaration, ...] = ()  # `index date NAME "..."` (at most one is allowed)
