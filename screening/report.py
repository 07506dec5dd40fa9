"""Verdicts, decisions and explanations, and their JSON and text renderings.

A criterion's *value* is the truth of its condition (for an exclusion, true means excluded);
its *verdict* is the effect on eligibility: ``pass``, ``fail``, ``unknown`` or ``review``.
The trial decision is ``ineligible`` if any criterion fails, else ``undetermined`` if any is
unknown or needs review, else ``eligible``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from . import ir
from .dates import show
from .derived import DERIVATIONS
from .derived import describe as derived_text
from .evaluate import Outcome, entry_name, operands
from .missing import MissingItem, missing_items
from .units import snap_value

VERDICTS = ("pass", "fail", "unknown", "review")
DECISIONS = ("eligible", "ineligible", "undetermined")


@dataclass(slots=True)
class Evidence:
    """One deciding piece of a criterion: the rule text, its truth and what it rests on."""

    rule: str
    value: bool | None
    detail: str

    def to_dict(self) -> dict:
        return {"rule": self.rule, "value": self.value, "detail": self.detail}

    def line(self) -> str:
        return f"{self.rule} is {truth(self.value)}: {self.detail}"


@dataclass(slots=True)
class CriterionResult:
    id: str
    kind: str
    text: str
    verdict: str
    value: bool | None
    applicable: bool | None
    explanation: str
    missing: list[str] = field(default_factory=list)
    reviews: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    draft: bool = False
    rule: str = ""
    not_considered: list[str] = field(default_factory=list)  # records no value set of the rule set recognised
    # one per `missing` entry (same order), then one per review reason: see screening/missing.py
    missing_items: list[MissingItem] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {
            "id": self.id, "kind": self.kind, "text": self.text, "verdict": self.verdict, "value": self.value,
            "explanation": self.explanation, "missing": list(self.missing),
            "missing_items": [item.to_dict() for item in self.missing_items],
            "applicable": self.applicable, "draft": self.draft, "rule": self.rule,
            "review_reasons": list(self.reviews), "evidence": [e.to_dict() for e in self.evidence],
        }
        if self.not_considered:
            out["not_considered"] = list(self.not_considered)
        return out


@dataclass
class PatientResult:
    trial: str
    title: str | None
    patient: str
    source: str
    as_of: date
    decision: str
    criteria: list[CriterionResult]
    warnings: list[str] = field(default_factory=list)
    decision_reason: str | None = None  # set when something besides the criteria decided (death)
    terminology: list[dict] | None = None  # the terminology store's sources the rules were expanded with
    label: dict | None = None  # how a person names the patient: see patient_label()

    @property
    def patient_label(self) -> dict:
        """``{"id", "file", "mrn", "name", "display"}``: the record id, the file it came from, the MRN and
        name where the record has them, and the line a person reads."""
        return self.label if self.label is not None else make_label(self.patient, self.source, None, None)

    def to_dict(self) -> dict:
        return {
            "trial": self.trial, "patient": self.patient, "patient_label": dict(self.patient_label),
            "as_of": self.as_of.isoformat(),
            "decision": self.decision, "decision_reason": self.decision_reason,
            "criteria": [c.to_dict() for c in self.criteria],
            "source": self.source, "warnings": list(self.warnings),
            "terminology": [dict(s) for s in self.terminology] if self.terminology is not None else None,
        }

    def criterion(self, criterion_id: str) -> CriterionResult:
        for result in self.criteria:
            if result.id == criterion_id:
                return result
        raise KeyError(criterion_id)


def make_label(patient_id: str, source: str | None, mrn: str | None, name: str | None) -> dict:
    """The patient label: ``display`` is "Doe, Jane — MRN 12345 (p06.json)", or "p06 (p06.json)" for a
    record with neither name nor MRN (the record id, then the file). ``file`` is the file name without
    its folder (for an NDJSON line: ``patients.ndjson:12``)."""
    placeholder = bool(source) and source.startswith("<") and source.endswith(">")  # "<patient>": no file
    file = source.replace("\\", "/").rsplit("/", 1)[-1] if source and not placeholder else None
    who = " — ".join(part for part in (name, f"MRN {mrn}" if mrn else None) if part) or patient_id
    display = f"{who} ({file})" if file and file != who else who
    return {"id": patient_id, "file": file, "mrn": mrn, "name": name, "display": display}


def patient_label(patient) -> dict:
    """The label of an indexed patient record (see :func:`make_label`)."""
    return make_label(patient.id, patient.source, getattr(patient, "mrn", None), getattr(patient, "name", None))


def truth(value: bool | None) -> str:
    return "unknown" if value is None else ("true" if value else "false")


def decide(results: list[CriterionResult]) -> str:
    verdicts = {r.verdict for r in results}
    if "fail" in verdicts:
        return "ineligible"
    if "unknown" in verdicts or "review" in verdicts:
        return "undetermined"
    return "eligible"


def decide_patient(results: list[CriterionResult], patient, as_of: int) -> tuple[str, str | None]:
    """The decision and, when the patient's death decides or limits it, the reason.

    A patient who died on or before the as-of date (or is recorded as deceased without a date) is
    ineligible whatever the criteria say; one whose death date may fall on either side of the
    as-of date (a year or month only) is never eligible: at best undetermined.
    """
    decision = decide(results)
    deceased = getattr(patient, "deceased", None)
    if deceased is None:
        return decision, None
    if deceased is True:
        return "ineligible", "patient recorded as deceased (date of death not recorded)"
    lo, hi = deceased
    if hi <= as_of:
        return "ineligible", f"patient died on {show(lo, hi)}"
    if lo > as_of:
        return decision, None  # died after the as-of date: alive then
    reason = f"patient may have died on or before the as-of date (date of death {show(lo, hi)})"
    return ("undetermined" if decision == "eligible" else decision), reason


def _verdict(kind: str, value: bool | None, missing: list[str], reviews: list[str]) -> str:
    if value is None:
        return "review" if reviews and not missing else "unknown"
    excluded_or_met = value if kind == "inclusion" else not value
    return "pass" if excluded_or_met else "fail"


def criterion_result(criterion: ir.Criterion, outcome, applies, patient, ctx) -> CriterionResult:
    """Build a criterion's result from an Outcome (explained) or a bare truth value (fast path)."""
    explained = isinstance(outcome, Outcome)
    value = outcome.value if explained else outcome
    if criterion.applies is None:
        applies_value = True
    else:
        applies_value = applies.value if explained else applies
    if explained:
        evidence = explain(outcome, patient, ctx)
        missing, reviews = list(outcome.missing), list(outcome.reviews)
    else:
        evidence, missing, reviews = [], [], []
    result = CriterionResult(criterion.id, criterion.kind, criterion.text, "", value, True, "", missing, reviews,
                             evidence, criterion.draft, criterion.rule_text)
    if applies_value is False:
        result.applicable, result.value, result.verdict = False, None, "pass"
        result.missing, result.reviews, result.missing_items = [], [], []
        premise = criterion.applies.source_text
        result.evidence = explain(applies, patient, ctx) if explained else []
        result.explanation = f"does not apply: `{premise}` is false"
        if result.evidence:
            result.explanation += " (" + "; ".join(e.detail for e in result.evidence) + ")"
        return result
    moot = (criterion.kind == "inclusion" and value is True) or (criterion.kind == "exclusion" and value is False)
    if applies_value is None and moot:
        result.applicable = None  # met either way: whether it applies does not matter
    elif applies_value is None:
        result.applicable = None
        result.value = None
        if explained:
            result.evidence = explain(applies, patient, ctx) + evidence
            for item in applies.missing:
                if item not in result.missing:
                    result.missing.insert(0, item)
            result.reviews = list(dict.fromkeys([*applies.reviews, *reviews]))
    result.verdict = _verdict(criterion.kind, result.value, result.missing, result.reviews)
    if explained and (result.missing or result.reviews):
        result.missing_items = missing_items([outcome, applies], result.missing, result.reviews, criterion.id)
    if explained:
        lines = [f"{e.rule} is {_TRUTH[e.value]}: {e.detail}" for e in result.evidence]
        if result.applicable is None:
            lines.insert(0, f"whether it applies is unknown (`{criterion.applies.source_text}`)")
        if criterion.draft:
            lines.insert(0, "DRAFT rule, not yet confirmed by an author")
        result.explanation = "; ".join(lines)
    return result


_TRUTH = {True: "true", False: "false", None: "unknown"}


# ---------------------------------------------------------------- evidence in words
def _num(x: float) -> str:
    if x is None:
        return "?"
    text = f"{x:.6g}"
    if "e" in text:
        text = f"{x:,.0f}" if abs(x) >= 1 else f"{x:.3g}"
    return text


def _when(obs) -> str:
    return f"on {show(obs.lo, obs.hi)}" if obs.lo is not None else "(undated)"


def _class_scale(node: ir.LabCompare):
    """The catalogue analyte when it is a score written as classes (NYHA III, CCS II, Child-Pugh B), else None."""
    from .analytes import catalogue

    analyte = catalogue().lookup(node.key)
    if analyte is not None and analyte.is_score and (analyte.roman or analyte.classes):
        return analyte
    return None


def _class_detail(analyte, node: ir.LabCompare, obs, value, limits, problem) -> str:
    """A class score in the words of its scale: `NYHA III on 2026-11-01; limit II; 1 class above it`."""
    from .scores import shown

    text = f"{node.label} {shown(analyte, obs.value)} {_when(obs)}"
    if limits is None:
        return f"{text}: {problem}" if problem else text
    if node.op == "between":
        low, high = (shown(analyte, x) for x in limits)
        return f"{text}; range {low} to {high}; {'within' if value else 'outside'} the range"
    limit = limits[0]
    if node.op in ("=", "!="):
        return f"{text}; {'is' if obs.value == limit else 'is not'} {shown(analyte, limit)}"
    diff = int(round(obs.value - limit))
    if diff == 0:
        margin = "the same class as the limit"
    else:
        count = abs(diff)
        margin = f"{count} class{'es' if count > 1 else ''} {'above' if diff > 0 else 'below'} it"
    return f"{text}; limit {shown(analyte, limit)}; {margin}"


def _lab_detail(node: ir.LabCompare, obs, value, limits, problem, patient, ctx) -> str:
    label = node.label
    if obs.value is not None and obs.value_high is None and obs.comparator is None:
        analyte = _class_scale(node)
        if analyte is not None:
            return _class_detail(analyte, node, obs, value, limits, problem)
    if obs.value is None and obs.derived is not None:
        return f"{label} {_when(obs)} not derived: {problem}"
    if obs.value is None:
        shown = repr(obs.raw_value) if obs.raw_value is not None else "no value"
        return f"{label} {shown} {_when(obs)}: {problem}"
    unit = obs.unit or ""
    spaced = f" {unit}" if unit else ""
    bound = f"{obs.comparator} " if obs.comparator else ""  # "> 1.5 mg/dL": an interval, not a value
    text = f"{label} {bound}{_num(obs.in_own_unit(obs.value))}{spaced} {_when(obs)}"
    if obs.derived is not None or obs.key in DERIVATIONS:  # say which was used: measured or derived
        shown = _num(obs.value) + (f" to {_num(obs.value_high)}" if obs.value_high is not None else "")
        how = derived_text(obs) if obs.derived is not None else "measured"
        text = f"{label} {shown}{spaced} {_when(obs)} ({how})"
    if problem and limits is None:
        return f"{text}: {problem}"
    if limits is None:
        return text
    parts = []
    bounds = (node.bound, node.upper) if node.upper is not None else (node.bound,)
    for bound, limit in zip(bounds, limits):
        if bound.kind == "value":
            parts.append(_written_limit(bound, node.key, obs, unit))
        else:
            base = limit / bound.value
            which = obs.ref_high if bound.kind == "ULN" else obs.ref_low
            origin = "from the observation" if which is not None else "from the rule set's reference ranges"
            parts.append(f"{bound.written}: {bound.kind} {_num(obs.in_own_unit(base))}{spaced} ({origin}) "
                         f"= {_num(obs.in_own_unit(limit))}{spaced}")
    if node.op == "between":
        low, high = (obs.in_own_unit(x) for x in limits)
        own_value = obs.in_own_unit(obs.value)
        if own_value < low:
            margin = f"below the range by {_num(low - own_value)} {unit}"
        elif own_value > high:
            margin = f"above the range by {_num(own_value - high)} {unit}"
        else:
            margin = "within the range"
        caveat = f"; but {problem}" if problem and value is None else ""
        if obs.comparator:  # an interval: no single margin
            margin = ("the whole interval is " + ("within the range" if value else "outside the range")
                      if value is not None else caveat.removeprefix("; but "))
            caveat = ""
        return f"{text}; range {' to '.join(parts)}; {margin}{caveat}"
    x, t = operands(obs, node.bound, limits[0])  # what the decision compared
    if (x, t) != (obs.value, limits[0]):  # in the unit both were written in: the margin is in that unit
        diff, factor = snap_value(x - t), 1.0
    else:  # canonical values, both rounded on conversion: equal means equal
        diff = obs.value - limits[0]
        factor = obs.to_canonical.factor if obs.to_canonical is not None else 1.0
    if diff == 0:
        margin = "exactly at the limit"
    else:
        margin = f"{'over' if diff > 0 else 'under'} by {_num(abs(diff) / factor)}{spaced}"
    caveat = f"; but {problem}" if problem and value is None else ""
    if obs.comparator:  # an interval: no single margin
        margin = caveat.removeprefix("; but ") if value is None else "the whole interval is on one side of the limit"
        caveat = ""
    return f"{text}; limit {parts[0]}; {margin}{caveat}"


_WRITTEN: dict[tuple[ir.Bound, str, str], str] = {}


def _written_limit(bound: ir.Bound, analyte: str, obs, unit: str) -> str:
    """A threshold as written, plus its value in the patient's unit when that differs (cached per unit)."""
    key = (bound, analyte, unit)
    text = _WRITTEN.get(key)
    if text is None:
        limit_own = _num(obs.in_own_unit(bound.value))
        written = bound.written.replace(",", "")
        same = written.startswith(limit_own) and written.endswith(unit)
        text = bound.written if same else f"{bound.written} = {limit_own} {unit}".rstrip()
        if len(_WRITTEN) < 10000:
            _WRITTEN[key] = text
    return text


def describe_atom(node: ir.Node, value, info, patient, ctx) -> str:
    kind = info[0]
    as_of = ctx.as_of_text
    if kind == "lab":
        _, node, seen, missing = info
        if missing and not seen:
            return _no_result(missing, as_of)
        if len(seen) == 1:  # the latest result: the common case
            text = _lab_detail(node, *seen[0], patient, ctx)
            return f"{text}; no repeat: {missing} could still decide" if missing else text
        shown = [s for s in seen if s[1] is value] or list(seen)
        # the results that decided: one for any/every, N for "on at least N occasions"
        details = [_lab_detail(node, *s, patient, ctx) for s in shown[:node.occasions or 1]]
        if len(seen) > 1:
            trues = sum(1 for s in seen if s[1] is True)
            need = f"; needed on at least {node.occasions} occasions" if node.occasions else ""
            details.append(f"{trues} of {len(seen)} results meet it{need}")
        if missing:
            details.append(f"no normal repeat after the last: {missing} could still decide")
        return "; ".join(details)
    if kind == "recorded":
        _, node, obs, missing, doubts = info
        window = f" within {node.window}" if node.window is not None else ""
        if missing:
            return missing
        if obs is not None:
            shown = (repr(obs.raw_value) if obs.raw_value is not None else repr(obs.text) if obs.text is not None
                     else _num(obs.value) if obs.value is not None else "no value")
            return f"{node.label} result on record: {shown} {_when(obs)}"
        if doubts:
            return "; ".join(f"{node.label} result {_when(o)} may be on record{window}: {problem}"
                             for o, problem in doubts[:3])
        return f"no {node.label} result on record{window} on or before {as_of}"
    if kind == "aggregate":
        return _aggregate_detail(info, as_of)
    if kind == "count":
        return _count_detail(info)
    if kind == "visits":
        return _visits_detail(info)
    if kind == "text":
        _, node, obs, missing, problem = info
        if missing:
            return _no_result(missing, as_of)
        if obs.text is None and obs.value is not None:
            shown = f"{obs.comparator or ''} {_num(obs.in_own_unit(obs.value))} {obs.unit or ''}".strip()
            limit = obs.ref_high
            origin = "the observation's" if limit is not None else "the rule set's"
            if limit is None:
                fallback = ctx.ranges.lookup(node.key, patient.sex)
                limit = fallback[1] if fallback else None
            if limit is None:
                return f"{node.label} {shown} {_when(obs)}: {problem}"
            return (f"{node.label} {shown} {_when(obs)}; positive means above the upper limit "
                    f"{_num(obs.in_own_unit(limit))} {obs.unit or ''} ({origin} reference range)").replace("  ", " ")
        shown = obs.raw_value if obs.raw_value is not None else "no value"
        text = f"{node.label} {shown!r} {_when(obs)}"
        return f"{text}: {problem}" if problem else text
    if kind == "age":
        _, node, ages = info
        if ages is None:
            return "birth date not recorded"
        if isinstance(ages, str):  # born after the as-of date
            return ages
        youngest, oldest = ages
        age = f"{youngest}" if youngest == oldest else f"{youngest} to {oldest}"
        return f"age {age} {node.unit} on {as_of} (born {show(*patient.birth)})"
    if kind == "sex":
        return f"sex {info[2]}" if info[2] not in (None, "unknown") else "sex not recorded"
    if kind == "record":
        _, node, entry, missing, possible = info
        if missing:
            return missing
        if entry is not None:
            timing = "".join(f", {t}" for t in node.timing)
            return f"{_entry_text(node, entry)} matches {node.matcher.name}{timing}"
        if possible:
            return "; ".join(f"{_entry_text(node, e)} may match: {', '.join(reasons)}"
                             for e, reasons in possible[:3])
        entries = getattr(patient, node.kind) or []
        window = f" within {node.window}" if node.window else ""
        status = f"{node.status} " if node.status else ""
        plain = [q for q in node.qualifiers if not isinstance(q, ir.OtherThan)]
        extra = (" with " + ", ".join(str(q) for q in plain) if plain else "") + "".join(
            f" {q}" for q in node.qualifiers if isinstance(q, ir.OtherThan))
        extra += "".join(f" {t}" for t in node.timing)
        return f"no {status}{node.noun} in {node.matcher.name}{extra}{window} recorded ({len(entries)} checked)"
    if kind == "anchored":
        return _anchored_text(info, patient)
    if kind == "anchored_lab":
        return _anchored_lab_text(info, value, patient, ctx)
    if kind == "fact":
        _, node, fact_value, problem = info
        if fact_value is None:
            return f"fact {node.name} not recorded"
        shown = str(fact_value).lower() if isinstance(fact_value, bool) else repr(fact_value)
        return f"fact {node.name} = {shown}" + (f" ({problem})" if problem else "")
    if kind == "review":
        return f"needs review: {info[1].reason}"
    if kind in ("dose_trend", "investigational", "dose_total"):
        return info[2]
    return ""


def _visits_detail(info) -> str:
    """`3 of 4 occasions meet it, needed on at least 3: 2026-06-01 (systolic_bp 150 mmHg); ...`."""
    _, node, seen, missing = info
    if not seen:
        return f"no {missing}" if missing else "no occasions"
    trues = sum(1 for s in seen if s[1] is True)
    parts = []
    for (lo, hi), value, used, _missing in seen[:10]:
        shown = ", ".join(f"{leaf.label} {_num(obs.in_own_unit(obs.value)) if obs.value is not None else repr(obs.raw_value)}"
                          f"{' ' + obs.unit if obs.unit and obs.value is not None else ''}" for leaf, obs, _ in used)
        parts.append(f"{show(lo, hi)} {truth(value)}" + (f" ({shown})" if shown else ""))
    text = f"{trues} of {len(seen)} occasions meet it, needed on at least {node.count}: " + "; ".join(parts)
    return f"{text}; no normal repeat after the last: {missing} could still decide" if missing else text


def _count_detail(info) -> str:
    """`2 courses of medication in chemo (...); 1 more possible (...); needed at most 2`."""
    _, node, sure, possible, low, high, missing = info
    if missing:
        return missing
    test = node.test
    what = "courses of " if node.courses else ""
    found = "; ".join(_entry_text(test, e) for e in sure[:10]) + ("; ..." if len(sure) > 10 else "")
    count = f"{low}" if low == high else f"{low} to {high}"
    text = f"{count} {what}{test.noun} records in {test.matcher.name}" if not node.courses else \
        f"{count} courses of {test.noun} in {test.matcher.name}"
    if found:
        text += f" ({found})"
    if possible:
        text += "; may also count: " + "; ".join(f"{_entry_text(test, e)}: {', '.join(r)}" for e, r in possible[:5])
    return f"{text}; needed {node.mode.replace('_', ' ')} {node.count}"


def _aggregate_detail(info, as_of: str) -> str:
    """`mean of the latest 3 QTcF results 475 ms (470 ms on 2026-11-10, ...); limit 470 ms; over by 5 ms`."""
    _, node, used, interval, missing = info
    lab = node.lab
    unit = f" {lab.canonical_unit}" if lab.canonical_unit else ""
    which = (f"of the latest {node.count} {lab.label} results" if node.count is not None
             else f"of the {lab.label} results")
    if lab.window is not None:
        which += f" within {lab.window}"
    listed = []
    for obs, _interval, problem in used[:12]:
        shown = (f"{obs.comparator or ''}{_num(obs.value)}" if obs.value is not None
                 else "no value" if obs.derived is not None else repr(obs.raw_value))
        if obs.value_high is not None:
            shown += f" to {_num(obs.value_high)}"
        how = f", {derived_text(obs)}" if obs.derived is not None and obs.value is not None else ""
        listed.append(f"{shown}{unit if obs.value is not None else ''} {_when(obs)}{how}")
    if len(used) > 12:
        listed.append(f"and {len(used) - 12} more")
    results = f" ({'; '.join(listed)})" if listed else ""
    if interval is None:
        return f"{node.function} {which}{results}: {missing}" if used else _no_result(missing, as_of)
    low, high = interval
    value = _num(low) if low == high else f"between {_num(low)} and {_num(high)}"
    limit = lab.bound.written if lab.op != "between" else f"{lab.bound.written} to {lab.upper.written}"
    text = f"{node.function} {which}: {value}{unit}{results}; limit {limit}"
    if low == high and lab.op != "between":
        diff = low - lab.bound.value
        text += "; exactly at the limit" if diff == 0 else f"; {'over' if diff > 0 else 'under'} by {_num(abs(diff))}{unit}"
    return f"{text}; but {missing}" if missing else text


def _no_result(missing: str, as_of: str) -> str:
    if not missing.endswith("result") and " result within " not in missing:
        return missing
    if " within " in missing:
        return f"no {missing} before {as_of}"
    return f"no {missing} on or before {as_of}"


def _anchor_text(node, thing) -> str:
    """An anchor event in words: the record with its dates, or the lab result with its value and date."""
    anchor = node.anchor
    if isinstance(anchor, ir.IndexDate):
        return str(thing)
    if isinstance(anchor, ir.LabCompare):
        value = (f"{thing.comparator or ''}{_num(thing.in_own_unit(thing.value))} {thing.unit or ''}".strip()
                 if thing.value is not None else repr(thing.raw_value))
        return f"{anchor.label} {value} {_when(thing)}"
    text = _entry_text(anchor, thing)
    if node.anchor_at == "end" and anchor.kind in ("procedures", "immunizations") and thing.end_lo is not None \
            and (thing.end_lo, thing.end_hi) != (thing.start_lo, thing.start_hi):
        text += f" ended {show(thing.end_lo, thing.end_hi)}"
    return text


def _anchor_kind(node) -> str:
    anchor = node.anchor
    if isinstance(anchor, ir.IndexDate):
        return f"the {anchor.description} (the index date)"
    if isinstance(anchor, ir.LabCompare):
        return f"a result meeting {anchor.source_text or anchor.label}"
    return f"a {anchor.noun} in {anchor.matcher.name}"


def _anchored_text(info, patient) -> str:
    _, node, pair, missing, possible = info
    if missing:
        return missing
    if pair is not None:
        entry, anchor = pair
        return (f"{_entry_text(node.test, entry)} is {node.relation_text} "
                f"{_anchor_text(node, anchor)}")
    if possible:
        return "; ".join(f"{_entry_text(node.test, e)} may be {node.relation_text} {_anchor_text(node, a)}: "
                         f"{', '.join(reasons)}" for e, a, reasons in possible[:3])
    return (f"no {node.test.noun} in {node.test.matcher.name} {node.relation_text} {_anchor_kind(node)} "
            "recorded")


def _anchored_lab_text(info, value, patient, ctx) -> str:
    _, node, pair, missing, possible = info
    if missing:
        return missing
    if pair is not None:  # the anchor that decided: true, or (false) the first whose results rule it out
        anchor, lab_info = pair
        return (f"{node.relation_text} {_anchor_text(node, anchor)}: "
                f"{describe_atom(node.test, value, lab_info, patient, ctx)}")
    if possible:
        parts = []
        for anchor, lab_info, reasons in possible[:3]:
            detail = describe_atom(node.test, None, lab_info, patient, ctx) if lab_info is not None else ""
            parts.append(f"{node.relation_text} {_anchor_text(node, anchor)}: "
                         + ", ".join(list(reasons) + ([detail] if detail else [])))
        return "; ".join(parts)
    return f"no {_anchor_kind(node).removeprefix('a ')} recorded"


def _entry_text(node: ir.RecordTest, entry) -> str:
    point = node.kind in ("procedures", "immunizations")
    parts = [entry_name(node.noun, entry)]
    if entry.display and entry.code:
        parts.append(f"'{entry.display}'")
    dates = []
    if entry.start_lo is not None:
        dates.append(("date " if point else "from ") + show(entry.start_lo, entry.start_hi))
    if entry.end_lo is not None and not point:
        dates.append("to " + show(entry.end_lo, entry.end_hi))
    if entry.status:
        dates.append(entry.status)
    if entry.dose is not None and any(isinstance(q, ir.DoseQualifier) for q in node.qualifiers):
        dates.append(f"dose {entry.dose.shown}" + (f" = {entry.dose.daily:g} mg/day" if entry.dose.daily is not None
                                                   and "daily" not in entry.dose.shown else ""))
    for name, value in entry.attributes.items():
        if value is not None and any(q.field_name == name for q in node.qualifiers):
            dates.append(f"{name} {value!r}")
    if dates:
        parts.append("(" + ", ".join(dates) + ")")
    return " ".join(parts)


def _count_summary(outcome) -> str:
    values = [part.value for part in outcome.deciding]
    names = [getattr(part.node, "name", None) or part.node.source_text for part in outcome.deciding]
    trues = [n for n, v in zip(names, values) if v is True]
    unknown = [n for n, v in zip(names, values) if v is None]
    text = f"{len(trues)} true" + (f" ({', '.join(trues)})" if trues else "")
    if outcome.value is not True:
        text += f", {len(unknown)} unknown" + (f" ({', '.join(unknown)})" if unknown else "")
        text += f", {len(values) - len(trues) - len(unknown)} false"
    return text


def explain(outcome, patient, ctx) -> list[Evidence]:
    """The deciding atoms of an outcome, in rule order, as evidence lines."""
    found: list[Evidence] = []
    _walk(outcome, "", found, patient, ctx)
    return found


def _walk(o, prefix: str, found: list, patient, ctx) -> None:
    node = o.node
    if o.info is not None:
        detail = describe_atom(node, o.value, o.info, patient, ctx)
        rule = prefix + node.source_text if prefix else node.source_text
        last = found[-1] if found else None
        # the same test written twice in a row (known(fact x) then fact x) is shown once
        if last is None or last.rule != rule or last.detail != detail:
            found.append(Evidence(rule, o.value, detail))
        return
    kind = type(node)
    if kind is ir.Define:
        prefix = f"{node.name}: "  # say which named sub-condition the evidence belongs to
    elif kind is ir.CountOf:
        found.append(Evidence(f"{prefix}{node.mode.replace('_', ' ')} {node.count} of {len(node.operands)}",
                              o.value, _count_summary(o)))
    elif kind is ir.Const:
        found.append(Evidence(prefix + node.source_text, o.value, "constant"))
    for part in o.deciding:
        _walk(part, prefix, found, patient, ctx)
