"""What a report shows, decided once from the JSON contract: counts, tallies, worklist rows, pages.

Input is the per-patient object of ``check --format json`` (one line of a batch's results.jsonl,
``input`` included). Everything beyond ``trial``, ``decision`` and each criterion's ``id`` and
``verdict`` is optional, so results written without explanations (verdicts and missing items
only) give counts, charts and a worklist, and pages that say what they lack.

Memory: the collector keeps counts (missing-data keys capped per trial as batch caps them) and one
compact worklist row per patient and trial; the patient pages are built one at a time, in
worklist order, from a callback that fetches a result again (a batch file is re-read at the
line's offset), so a report never holds the population's explanations.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, NamedTuple

from ..batch import MISSING_ITEMS, OTHER_MISSING, missing_key
from ..report import DECISIONS, VERDICTS, make_label
from . import worklist

MAX_TEXT = 20_000  # characters of one text field shown; a longer one is cut with a note (never a huge page)


class ResultProblem(ValueError):
    """A result object that does not follow the JSON contract: ``path`` is its JSON path."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


def _text(value) -> str:
    """A text field as shown: None is empty; anything else as a string, cut at MAX_TEXT."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"… ({len(text) - MAX_TEXT} more characters)"


def validate(result) -> None:
    """Raise ResultProblem (with a JSON path) when ``result`` lacks what every report needs."""
    if not isinstance(result, dict):
        raise ResultProblem("$", "not a JSON object")
    if not isinstance(result.get("trial"), str) or not result["trial"]:
        raise ResultProblem("$.trial", "missing or not a text")
    if result.get("decision") not in DECISIONS:
        raise ResultProblem("$.decision", f"must be one of {', '.join(DECISIONS)}")
    criteria = result.get("criteria")
    if not isinstance(criteria, list):
        raise ResultProblem("$.criteria", "missing or not a list")
    for i, criterion in enumerate(criteria):
        where = f"$.criteria[{i}]"
        if not isinstance(criterion, dict):
            raise ResultProblem(where, "not a JSON object")
        if not isinstance(criterion.get("id"), str) or not criterion["id"]:
            raise ResultProblem(f"{where}.id", "missing or not a text")
        if criterion.get("verdict") not in VERDICTS:
            raise ResultProblem(f"{where}.verdict", f"must be one of {', '.join(VERDICTS)}")
        for key, kind, name in _LISTS:
            value = criterion.get(key)
            if value is None:
                continue
            if not isinstance(value, list):
                raise ResultProblem(f"{where}.{key}", "not a list")
            for j, entry in enumerate(value):
                if not isinstance(entry, kind):
                    raise ResultProblem(f"{where}.{key}[{j}]", f"not {name}")


_LISTS = (("missing", str, "a text"), ("review_reasons", str, "a text"), ("not_considered", str, "a text"),
          ("missing_items", dict, "a JSON object"), ("evidence", dict, "a JSON object"))


# ------------------------------------------------------------------ patient labels and missing items
def patient_label(result: dict) -> Label:
    """The patient as a person names them: ``patient_label`` from the contract, else made as the
    engine makes it from the record's id and file (``input`` or ``source``)."""
    label = result.get("patient_label")
    record_id = _text(result.get("patient"))
    where = _text(result.get("input") or result.get("source"))
    if not isinstance(label, dict):
        label = make_label(record_id, where or None, None, None)
    out = {key: _text(label.get(key)) for key in Label._fields}
    out["id"] = out["id"] or record_id
    out["display"] = out["display"] or out["name"] or out["file"] or out["id"] or "(no id)"
    return Label(**out)


_ITEM_FIELDS = ("kind", "code", "name", "window", "question", "text")


def _items(criterion: dict) -> list[dict]:
    items = criterion.get("missing_items")
    if isinstance(items, list) and (items or not (criterion.get("missing") or criterion.get("review_reasons"))):
        out = []
        for item in items:
            if isinstance(item, dict):
                entry = {key: _text(item.get(key)) for key in _ITEM_FIELDS}
            else:
                entry = dict.fromkeys(_ITEM_FIELDS, "") | {"text": _text(item)}
            entry["question"] = entry["question"] or entry["text"] or entry["name"] or entry["code"]
            entry["text"] = entry["text"] or entry["question"]
            out.append(entry)
        return out
    return ([dict.fromkeys(_ITEM_FIELDS, "") | {"question": _text(t), "text": _text(t)}
             for t in (criterion.get("missing") or [])] +
            [dict.fromkeys(_ITEM_FIELDS, "") | {"kind": "review", "question": _text(t), "text": _text(t)}
             for t in (criterion.get("review_reasons") or [])])


def missing_items(criterion: dict) -> list[dict]:
    """The data a criterion lacks, structured: its ``missing_items`` (reviews aside) when the result
    has them, else one item per text of ``missing`` (kind unknown, the text is the question)."""
    return [item for item in _items(criterion) if item["kind"] != "review"]


def review_questions(criterion: dict) -> list[str]:
    """The questions for a person's judgment: the review items' questions, else ``review_reasons``."""
    return [item["question"] for item in _items(criterion) if item["kind"] == "review"]


def item_key(item: dict) -> tuple[str, str]:
    """(key, label) under which a missing item is counted: kind and code (or name) when structured
    (windows aside: "ALT within 3 months" and "ALT" are the same lab to obtain), else its text
    without dates (as batch counts it)."""
    what = item["code"] or item["name"]
    if item["kind"] and what:
        name = item["name"] or item["code"]
        label = name if name.startswith(item["kind"]) else f"{name} ({item['kind']})"
        return f"{item['kind']}:{what}", label
    text = missing_key(item["text"] or item["question"])
    return text, text


# ------------------------------------------------------------------ thresholds and margins
_LIMIT = re.compile(
    r"; (?P<what>limit|range) (?P<threshold>[^;]+?); "
    r"(?P<margin>(?:over|under) by [^;]+|exactly at the limit|(?:below|above) the range by [^;]+|within the range)")


def limits_of(detail: str) -> list[dict]:
    """Every compared threshold (as written, with its conversion to the patient's unit) and margin an
    evidence text states, in order: ``[{"threshold": "2 x ULN: ULN 40 U/L ... = 80 U/L",
    "margin": "over by 15 U/L"}]``."""
    return [{"threshold": m["threshold"].strip(), "margin": m["margin"].strip()} for m in _LIMIT.finditer(detail)]


# ------------------------------------------------------------------ the collector
class Label(NamedTuple):
    """The patient label of the JSON contract, every field a text (empty when absent)."""

    id: str
    file: str
    mrn: str
    name: str
    display: str


class Deciding(NamedTuple):
    id: str
    verdict: str
    reason: str


@dataclass(slots=True)
class Row:
    """One worklist row, as :mod:`screening.reports.worklist` builds it (so the report lists exactly
    what `screening worklist` lists, in its order), kept compact: a report holds one per result.
    Questions are interned (the same few recur across a population)."""

    order: int                    # input order: the page's anchor, the last tie-break
    key: tuple                    # the worklist's sort key
    trial: str
    decision: str
    label: Label
    deciding: tuple               # Deciding, for each criterion that fails (else is unknown / under review)
    obtain: tuple                 # questions of the data to obtain
    reviews: tuple                # review questions
    position: object = None       # how to fetch the full result again (a file offset, an index)

    @classmethod
    def of(cls, order: int, result: dict, position=None) -> "Row":
        item = worklist.row_from_result(result)
        return cls(order, item.sort_key(), sys.intern(item.trial), sys.intern(item.decision), patient_label(result),
                   tuple(Deciding(sys.intern(d.id), sys.intern(d.verdict), _text(d.reason)) for d in item.deciding),
                   tuple(sys.intern(_text(i.question)) for i in item.obtain),
                   tuple(sys.intern(_text(i.question)) for i in item.reviews), position)

    @property
    def missing_count(self) -> int:
        """Distinct things to obtain or review (the worklist's ``items_missing``)."""
        return len(self.obtain) + len(self.reviews)

    @property
    def anchor(self) -> str:
        return f"p{self.order + 1}"


@dataclass
class TrialSummary:
    id: str
    title: str = ""
    total: int = 0
    decisions: dict = field(default_factory=lambda: dict.fromkeys(DECISIONS, 0))
    fails: dict = field(default_factory=dict)       # criterion id -> patients for whom it fails
    criteria: dict = field(default_factory=dict)    # criterion id -> (first position seen, registry text)
    missing: dict = field(default_factory=dict)     # item key -> [label, patients]

    def excluding(self, limit: int = 10) -> list[dict]:
        """The criteria that exclude most: most fails first, then in rule-set order."""
        ranked = sorted(self.fails.items(), key=lambda kv: (-kv[1], self.criteria[kv[0]][0]))
        return [{"key": cid, "label": cid, "text": self.criteria[cid][1], "count": n} for cid, n in ranked[:limit]]

    def most_missing(self, limit: int = 10) -> list[dict]:
        """The data most often missing (counted once per patient), most first, ties by name."""
        ranked = sorted(self.missing.items(), key=lambda kv: (-kv[1][1], kv[1][0].casefold(), kv[0]))
        return [{"key": key, "label": label, "text": label, "count": n} for key, (label, n) in ranked[:limit]]


class Collector:
    """Counts and worklist rows, fed one result at a time."""

    def __init__(self) -> None:
        self.trials: dict[str, TrialSummary] = {}
        self.rows: list[Row] = []

    def add(self, result: dict, position=None, title: str = "") -> None:
        validate(result)
        trial = self.trials.get(result["trial"])
        if trial is None:
            trial = self.trials[result["trial"]] = TrialSummary(result["trial"], _text(title or result.get("title")))
        trial.total += 1
        trial.decisions[result["decision"]] += 1
        counted: dict[str, str] = {}
        for i, c in enumerate(result["criteria"]):
            if c["id"] not in trial.criteria and len(trial.criteria) < 10_000:
                trial.criteria[c["id"]] = (i, _text(c.get("text")))
            if c["verdict"] == "fail" and c["id"] in trial.criteria:
                trial.fails[c["id"]] = trial.fails.get(c["id"], 0) + 1
            for item in missing_items(c):
                key, label = item_key(item)
                counted.setdefault(key, label)
        for key, label in counted.items():
            entry = trial.missing.get(key)
            if entry is None:
                if len(trial.missing) >= MISSING_ITEMS:
                    key, label = OTHER_MISSING, OTHER_MISSING
                entry = trial.missing.setdefault(key, [label, 0])
            entry[1] += 1
        self.rows.append(Row.of(len(self.rows), result, position))

    def worklist(self) -> list[Row]:
        """Rows in the worklist's order (eligible, then undetermined by how few items are missing, then
        ineligible: :meth:`screening.reports.worklist.Row.sort_key`), input order last."""
        return sorted(self.rows, key=lambda r: (r.key, r.order))


# ------------------------------------------------------------------ one patient's page
MARK = {True: "✓", False: "✗", None: "?"}


def page(result: dict, row: Row) -> dict:
    """Everything a patient's printable page shows, from one full result."""
    criteria = []
    for c in result["criteria"]:
        evidence = []
        for e in c.get("evidence") or []:
            if not isinstance(e, dict):
                continue
            detail = _text(e.get("detail"))
            value = e.get("value") if isinstance(e.get("value"), bool) else None
            evidence.append({"rule": _text(e.get("rule")), "value": value, "mark": MARK[value],
                             "detail": detail, "limits": limits_of(detail)})
        criteria.append({
            "id": _text(c["id"]), "kind": _text(c.get("kind")), "verdict": c["verdict"],
            "text": _text(c.get("text")), "rule": " ".join(_text(c.get("rule")).split()),
            "draft": c.get("draft") is True, "applicable": c.get("applicable"),
            "explanation": _text(c.get("explanation")), "evidence": evidence,
            "missing": missing_items(c), "reviews": review_questions(c),
            "not_considered": [_text(x) for x in (c.get("not_considered") or [])],
        })
    explained = any(c["evidence"] or c["explanation"] for c in criteria)
    # what is open on this page: every criterion's items (the worklist leaves them out for an
    # ineligible patient, for whom no answer changes the decision; the page still says what they are)
    obtain = list(dict.fromkeys(m["question"] for c in criteria for m in c["missing"]))
    reviews = list(dict.fromkeys(q for c in criteria for q in c["reviews"]))
    return {
        "row": row, "label": row.label, "trial": _text(result["trial"]), "decision": result["decision"],
        "as_of": _text(result.get("as_of")), "decision_reason": _text(result.get("decision_reason")),
        "warnings": [_text(w) for w in (result.get("warnings") or [])], "criteria": criteria,
        "obtain": obtain, "reviews": reviews, "explained": explained,
        "counts": {v: sum(1 for c in criteria if c["verdict"] == v) for v in VERDICTS},
    }


def pages(rows: Iterable[Row], fetch: Callable[[Row], dict]) -> Iterator[dict]:
    """The pages of ``rows`` in that order, each built when it is needed."""
    for row in rows:
        yield page(fetch(row), row)
