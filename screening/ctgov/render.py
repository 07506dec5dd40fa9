"""The writer: a :class:`StudyRecord` -> rule-set text that compiles (:func:`convert`)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError, DataProblem, SourceError
from .draft import Draft, construct_hint, draft_rule, heading_premise
from .read import StudyRecord, parse_document, read_record
from ..limits import forbidden_char
from .split import Bullet, Note, _collapse, split_document


@dataclass
class ImportedCriterion:
    """One criterion of the generated rule set."""

    ident: str
    kind: str
    text: str
    rule: str
    draft: bool
    source_text: str = ""
    context: str | None = None
    heading: str | None = None
    valuesets: dict[str, str] = field(default_factory=dict)
    comment: str | None = None
    family: str | None = None        # which drafter wrote the draft: "labs", "age", "history" (conditions),
                                     # "medications", "scores", "investigational"


@dataclass
class ImportResult:
    """The generated rule set: its text, and the criteria it holds (structured fields first)."""

    record: StudyRecord
    criteria: list[ImportedCriterion]
    text: str
    notes: list[Note] = field(default_factory=list)

    @property
    def drafted(self) -> list[ImportedCriterion]:
        """Criteria drafted from the registry's free text (not the structured AGE/SEX rules)."""
        return [c for c in self.criteria if c.draft and c.ident not in ("AGE", "SEX")]

    @property
    def registry_lines(self) -> list[ImportedCriterion]:
        return [c for c in self.criteria if c.ident not in ("AGE", "SEX")]


def _printable(text: str) -> str:
    """``text`` without the characters a rule file may not hold (controls, bidi overrides)."""
    return "".join(" " if forbidden_char(ch) or ch == "\n" else ch for ch in text)


def _string(text: str) -> str:
    """A STRING literal of the language: double quotes, with backslash and quote escaped."""
    return '"' + _printable(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


_NOTE_LABEL = {"note": "registry note (not a criterion)", "header": "registry sub-heading (not a criterion)",
               "boilerplate": "registry boilerplate (not a criterion)"}


def _note_line(note: Note) -> str:
    return f"# {_NOTE_LABEL[note.kind]}: {_collapse(_printable(note.text))}"


def _review_reason(text: str, limit: int = 80) -> str:
    short = text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."
    return f"not yet encoded: {short}"


# The look-back for drafted lab rules whose text names no window (`lab window` in the header).
DEFAULT_LAB_WINDOW = "28 days"

_AGE_FIELD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(years?|months?|weeks?|days?|hours?|minutes?)\s*$", re.I)
_DAYS_PER_MONTH = 30.4375


def _age_field(value: str | None, which: str) -> tuple[str | None, bool]:
    """One structured age bound as a test (``age >= 18 years``), and whether it is approximate."""
    if value is None:
        return None, False
    match = _AGE_FIELD.match(value)
    if match is None:
        return None, False
    amount, unit = float(match.group(1)), match.group(2).lower().rstrip("s")
    op = ">=" if which == "min" else "<="
    if unit in ("year", "month") and amount.is_integer():
        return f"age {op} {int(amount)} {unit}s", False
    days = amount * {"year": 365.25, "month": _DAYS_PER_MONTH, "week": 7, "day": 1, "hour": 1 / 24,
                     "minute": 1 / 1440}[unit]
    months = days / _DAYS_PER_MONTH
    # Whole months cannot state a bound in weeks or days exactly; round so that no patient the
    # registry admits is turned away (minimum rounds down, maximum up), and mark the rule draft.
    if which == "min":
        whole = math.floor(months)
        return (f"age >= {whole} months" if whole > 0 else None), True
    return f"age < {max(1, math.ceil(months))} months" if months > int(months) else f"age <= {int(months)} months", True


def _structured(record: StudyRecord) -> list[ImportedCriterion]:
    out = []
    low, low_approx = _age_field(record.minimum_age, "min")
    high, high_approx = _age_field(record.maximum_age, "max")
    tests = [t for t in (low, high) if t]
    if tests:
        said = []
        if low:
            said.append(f"Minimum age {record.minimum_age}")
        if high:
            said.append(f"maximum age {record.maximum_age}" if said else f"Maximum age {record.maximum_age}")
        text = "; ".join(said) + " (registry structured field)"
        approx = (low_approx and low is not None) or (high_approx and high is not None)
        comment = "ages in weeks or days rounded to whole months (less strict); check" if approx else None
        out.append(ImportedCriterion("AGE", "inclusion", text, " and ".join(tests), approx, text, comment=comment))
    if record.sex in ("FEMALE", "MALE"):
        word = record.sex.lower()
        text = f"Sex: {word} (registry structured field)"
        out.append(ImportedCriterion("SEX", "inclusion", text, f"sex is {word}", False, text))
    return out


# "Subjects eligible for enrollment in the Pilot Part of the study must meet all of the following criteria:": a
# header that restricts its items to one part of the study
_PART_CONTEXT = re.compile(
    r"\s*(?:subjects|patients|participants)\s+(?:eligible\s+for\s+(?:enrol?lment|entry)\s+)?in(?:to)?\s+the\s+"
    r"(?P<part>[\w-]+(?:\s+[\w-]+)?)\s+part\s+of\s+the\s+study\s+must\s+meet\s+all\s+(?:of\s+)?the\s+following"
    r"(?:\s+criteria)?\s*:?\s*", re.I)


def _every_part(bullets: list[Bullet]) -> dict[int, Draft]:
    """Drafts for items under a part header ("... in the Pilot Part of the study must meet all of the following
    criteria:") that every part of the study lists with the same rule: the restriction to one part then changes
    nothing, as every patient, whatever the part, must meet it (issue 9)."""
    parts: dict[str, dict[str, list[tuple[Bullet, Draft]]]] = {}
    for bullet in bullets:
        match = _PART_CONTEXT.fullmatch(bullet.context or "")
        if match is None or bullet.heading or bullet.lead_in:
            continue
        section = parts.setdefault(bullet.section, {})
        items = section.setdefault(match.group("part").lower(), [])
        draft = draft_rule(bullet.text, bullet.section)
        if draft is not None:
            items.append((bullet, draft))
    out = {}
    for section in parts.values():
        if len(section) < 2:
            continue
        keys = [{(d.rule, tuple(sorted(d.valuesets.items()))) for _, d in items} for items in section.values()]
        shared = set.intersection(*keys)
        for items in section.values():
            for bullet, draft in items:
                if (draft.rule, tuple(sorted(draft.valuesets.items()))) in shared:
                    out[id(bullet)] = Draft(draft.rule, draft.valuesets, draft.family,
                                            "every part of the study lists this criterion with the same rule: it "
                                            "applies whatever the part")
    return out


def _criterion(bullet: Bullet, every_part: dict[int, Draft] | None = None) -> ImportedCriterion:
    text = f"{bullet.context} {bullet.text}" if bullet.context else bullet.text
    context = " ".join(c for c in (bullet.lead_in, bullet.context) if c) or None
    draft = None if bullet.heading else draft_rule(bullet.text, bullet.section, context)
    if draft is None and every_part and id(bullet) in every_part:
        draft = every_part[id(bullet)]
    premise = heading_premise(bullet.heading) if bullet.heading else None
    if premise:
        # a heading that names its subgroup by a lab: the line's rule applies to that subgroup only
        draft = draft_rule(bullet.text, bullet.section, context)
        if draft is not None and (draft.family not in ("labs", "scores") or draft.rule.startswith("applies if")):
            draft = None
        if draft is not None:
            draft = Draft(f"applies if {premise}: {draft.rule}", draft.valuesets, draft.family,
                          f"under the heading {bullet.heading!r}: the rule applies where {premise}")
    if draft is None:
        return ImportedCriterion(bullet.ident, bullet.section, text, f"review {_string(_review_reason(text))}", False,
                                 bullet.text, bullet.context, bullet.heading, comment=construct_hint(text))
    return ImportedCriterion(bullet.ident, bullet.section, text, draft.rule, True, bullet.text, bullet.context,
                             bullet.heading, dict(draft.valuesets), family=draft.family, comment=draft.comment)


def _render(record: StudyRecord, criteria: list[ImportedCriterion],
            notes: list[Note] = ()) -> tuple[str, dict[int, ImportedCriterion]]:
    """The rule-set text, and which criterion starts on which line (for compile-error fallback)."""
    lines = [
        f"# Imported from ClinicalTrials.gov record {record.nct_id} ({Path(record.source).name}) by screening.ctgov.",
        "# Registry criteria are copied verbatim. `review` marks a criterion not yet encoded; `draft` marks a rule",
        "# the importer read from the text: check it against the text, then delete the word `draft`.",
    ]
    if record.healthy_volunteers is not None:
        said = "accepted" if record.healthy_volunteers else "not accepted"
        lines.append(f"# Healthy volunteers: {said} (registry field; it describes the study population, "
                     "not a test of one patient)")
    if record.sex_note:
        lines.append("# Sex eligibility note: " + _collapse(record.sex_note))
    lines.append(f"trial {_string(record.nct_id)}")
    if record.title:
        lines.append(f"title {_string(_collapse(record.title))}")
    if any(c.draft and c.family in ("labs", "scores") for c in criteria):
        lines += ["# lab window: an importer default, not the protocol's. Drafted lab and performance-score rules",
                  "# whose text names no window (or says only \"at screening\") use it; confirm it against the",
                  "# protocol's screening window.",
                  f"lab window {DEFAULT_LAB_WINDOW}"]
    valuesets: dict[str, str] = {}
    for c in criteria:
        if c.draft:
            valuesets.update(c.valuesets)
    if valuesets:
        lines += ["", "# Value sets used by drafted rules (ICD-10 and ATC codes from the importer's lexicon; extend with local codes)"]
        lines += list(valuesets.values())
    where: dict[int, ImportedCriterion] = {}
    heading_shown = None
    section_shown = None
    for c in criteria:
        if c.ident in ("AGE", "SEX") and section_shown is None:
            lines += ["", "# ---- structured registry fields"]
            section_shown = "structured"
        elif c.ident not in ("AGE", "SEX") and section_shown != c.kind:
            lines += ["", f"# ---- {c.kind} criteria"]
            section_shown = c.kind
            heading_shown = None
            lines += [_note_line(n) for n in notes if n.section == c.kind and n.after is None]
        if c.heading != heading_shown:
            if c.heading:
                lines.append(f"# under the heading {c.heading!r}: applies only where that heading says")
            heading_shown = c.heading
        if c.comment:
            lines.append(f"# {c.comment}")
        prefix = "draft " if c.draft else ""
        head = f"{prefix}{c.kind} {c.ident} {_string(c.text)} ="
        where[len(lines) + 1] = c
        lines.append(head)
        lines.append(f"    {c.rule}")
        if c.ident not in ("AGE", "SEX"):
            lines += [_note_line(n) for n in notes if n.section == c.kind and n.after == c.ident]
    shown = {c.kind for c in criteria if c.ident not in ("AGE", "SEX")}
    orphans = [n for n in notes if n.section not in shown]
    if orphans:                             # a section that holds only notes
        lines += [""] + [_note_line(n) for n in orphans]
    return "\n".join(lines) + "\n", where


def convert(record: StudyRecord, check: bool = True) -> ImportResult:
    """Turn a :class:`StudyRecord` into rule-set text (with every criterion it holds).

    With ``check`` (the default) the text is compiled; a drafted rule that does not compile is
    replaced by ``review`` and the text compiled again, so the result always compiles.
    """
    bullets, notes = split_document(record.criteria)
    every_part = _every_part(bullets)
    criteria = _structured(record) + [_criterion(b, every_part) for b in bullets]
    if not any(c.ident not in ("AGE", "SEX") for c in criteria):
        raise DataError(record.source, [DataProblem("criteria", "no criteria found in the eligibility text",
                                                    code="ctgov")])
    text, where = _render(record, criteria, notes)
    if not check:
        return ImportResult(record, criteria, text, notes)
    from ..compile import compile_text

    for _ in range(len(criteria) + 1):
        try:
            compile_text(text, f"{record.nct_id}.crit")
            return ImportResult(record, criteria, text, notes)
        except SourceError as error:
            failed = set()
            for diagnostic in error.diagnostics:
                owner = max((line for line in where if line <= diagnostic.span.line), default=None)
                if owner is not None and where[owner].draft:
                    failed.add(id(where[owner]))
            if not failed:
                raise
            for c in criteria:
                if id(c) in failed:
                    c.draft = False
                    c.rule = f"review {_string(_review_reason(c.text))}"
                    c.comment = "the importer's draft did not compile; left for review"
            text, where = _render(record, criteria, notes)
    raise AssertionError("unreachable: every draft was replaced")


def import_document(text: str, name: str) -> str:
    """Rule-set text for the registry record in ``text`` (API v2 JSON or legacy XML).

    ``name`` names the document in error messages. The result compiles with
    :func:`screening.compile.compile_text`. Raises :class:`UsageError` when the text is not a
    registry record and :class:`DataError` when it has no eligibility criteria.
    """
    return convert(parse_document(text, name)).text


def import_record(path: str | Path) -> str:
    """Rule-set text for the registry file at ``path`` (API v2 JSON study or legacy XML record).

    Structured fields become rules (``AGE``, ``SEX``); each registry criterion becomes one
    ``inclusion``/``exclusion`` with its registry id and text, ``review`` until encoded, or
    ``draft`` where the importer could read it. The result compiles with ``compile_text``.
    """
    return convert(read_record(path)).text
