"""Missing data as structured items and as questions a coordinator can act on.

Every entry of a criterion's ``missing`` list (a sentence) has a :class:`MissingItem` beside it,
built from the IR atom that was left unknown (never by reading the sentence back): its *kind*
(``lab``, ``fact``, ``condition`` ...), the *code* or value set or fact name that would be
filled in, a human *name*, the time *window*, and a *question* ("ALT result within the last
3 months", "Is the transaminase rise due to active lupus? (investigator)"). Review reasons get
items of kind ``review``.

The texts mirror :func:`screening.evaluate._atom_missing` piece by piece; an item is matched to
its ``missing`` entry by that text, and a test checks that every entry of every sample finds its
item (an entry that does not gets a ``record`` item that repeats it, never nothing).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

from . import derived, ir
from .analytes import catalogue
from .dates import show
from .evaluate import TERMINOLOGY_REASON, Outcome, _atom_missing, anchor_label, entry_name

Kind = Literal["lab", "fact", "condition", "medication", "procedure", "allergy", "immunization", "birth_date",
               "sex", "terminology", "review", "record"]
KINDS: tuple[str, ...] = get_args(Kind)


@dataclass(frozen=True, slots=True)
class MissingItem:
    """One thing to obtain or decide. ``text`` is the matching entry of the criterion's ``missing``
    list (or the review reason)."""

    kind: str
    code: str
    name: str
    window: str | None
    question: str
    text: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "code": self.code, "name": self.name, "window": self.window,
                "question": self.question, "text": self.text}

    @classmethod
    def from_dict(cls, data: dict) -> "MissingItem":
        """An item read back from results.jsonl (unknown keys ignored, absent ones empty)."""
        window = data.get("window")
        return cls(str(data.get("kind") or "record"), str(data.get("code") or ""), str(data.get("name") or ""),
                   str(window) if window else None, str(data.get("question") or data.get("text") or ""),
                   str(data.get("text") or ""))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


@lru_cache(maxsize=1024)
def _within(window: ir.Duration | None) -> str | None:
    return f"within {window}" if window is not None else None


@lru_cache(maxsize=1024)
def _last(window: ir.Duration | None) -> str:
    return f" within the last {window}" if window is not None else ""


@lru_cache(maxsize=4096)
def lab_code(key: str) -> str:
    """``LOINC:1742-6`` for a catalogue analyte; the key itself for a code outside the catalogue."""
    analyte = catalogue().lookup(key)
    if analyte is not None and analyte.codes:
        return analyte.codes[0]
    return key


def _lab(node, text: str, question: str, window: ir.Duration | None = None) -> MissingItem:
    return MissingItem("lab", lab_code(node.key), node.label, _within(window), question, text)


def _no_result_question(node, window: ir.Duration | None) -> str:
    extra = derived.missing_inputs(node.key) if isinstance(node, ir.LabCompare) and node.key in derived.DERIVATIONS \
        else ""
    return f"{node.label} result{_last(window)}{extra}"


def _lab_items(info) -> list[MissingItem]:
    """Items of a ("lab", node, seen, missing) atom, in the order of _atom_missing."""
    node = info[1]
    items = []
    if info[3]:
        repeat = bool(info[2])  # results on record, too few of them: a repeat decides
        question = (f"Repeat {node.label} result{_last(node.window)}" if repeat
                    else _no_result_question(node, node.window))
        items.append(_lab(node, info[3], question, node.window))
    for obs, value, _limits, problem in info[2]:
        if value is not None or not problem:
            continue
        when = show(obs.lo, obs.hi) if obs.lo is not None else "undated"
        if problem.startswith("reference range"):
            kinds = {b.kind for b in (node.bound, node.upper) if b is not None and b.kind != "value"}
            which = "upper limit of normal" if kinds == {"ULN"} else (
                "lower limit of normal" if kinds == {"LLN"} else "limits of normal")
            items.append(MissingItem("lab", lab_code(node.key), f"{node.label} reference range", _within(node.window),
                                     f"Reference range ({which}) of the {node.label} result of {when}", problem))
            continue
        text = f"{node.label} result of {when}: {problem}"
        if problem == "date uncertain relative to the window" or "known only to the month or year" in problem:
            question = f"Full date of the {node.label} result of {when}"
        else:
            question = f"Check the {node.label} result of {when}: {problem}"
        items.append(_lab(node, text, question, node.window))
    return items


_VERB = {
    "condition": ("Has the patient had {what}{window}?", "Does the patient currently have {what}?"),
    "medication": ("Has the patient received {what}{window}?", "Is the patient currently taking {what}?"),
    "procedure": ("Has the patient had {what}{window}?", "Has the patient had {what}{window}?"),
    "allergy": ("Is the patient allergic to {what}?", "Is the patient allergic to {what}?"),
    "immunization": ("Has the patient been immunized with {what}{window}?",
                     "Has the patient been immunized with {what}{window}?"),
}


def _record_question(node: ir.RecordTest) -> str:
    general, current = _VERB.get(node.noun, ("Any {what}{window}?", "Any {what}{window}?"))
    template = current if node.status == "active" and node.window is None else general
    what = node.matcher.name
    if node.status in ("inactive", "resolved"):
        what = f"{node.status} {what}"
    return template.format(what=what, window=_last(node.window))


def _record_kind(noun: str) -> str:
    return noun if noun in KINDS else "record"


def _entry_items(node: ir.RecordTest, entries_reasons, texts: list[str]) -> list[MissingItem]:
    """One item per (entry, reasons) of a record test, given the texts _atom_missing made of them."""
    items = []
    for (entry, reasons), text in zip(entries_reasons, texts):
        shown = entry_name(node.noun, entry, True)
        if any(r.startswith(TERMINOLOGY_REASON) for r in reasons):
            items.append(MissingItem(
                "terminology", entry.code or node.matcher.name, shown, _within(node.window),
                f"Is {shown} one of {node.matcher.name}? (the terminology loaded cannot tell)", text))
        else:
            items.append(MissingItem(_record_kind(node.noun), entry.code or node.matcher.name, shown,
                                     _within(node.window), f"Check {shown}: {', '.join(reasons)}", text))
    return items


def _not_provided(node: ir.RecordTest, text: str) -> MissingItem:
    return MissingItem(_record_kind(node.noun), node.matcher.name, node.matcher.name, _within(node.window),
                       f"{_record_question(node)} (the record has no {node.kind} list)", text)


def _anchor_shown(node, other) -> str:
    """The anchor event as a person reads it: a record by its display, a lab result by its date (or the index date)."""
    if isinstance(node.anchor, (ir.LabCompare, ir.IndexDate)):
        return anchor_label(node, other)
    return entry_name(node.anchor.noun, other, True)


def _anchor_not_provided(anchor, text: str) -> MissingItem:
    if isinstance(anchor, ir.LabCompare):  # the anchor is a lab result and the record has no labs
        return _lab(anchor, text, _no_result_question(anchor, None))
    return _not_provided(anchor, text)


def atom_items(info) -> list[MissingItem]:
    """The missing items of one unknown atom, one per entry of ``_atom_missing(info)``."""
    kind = info[0]
    if kind == "lab":
        return _lab_items(info)
    texts = _atom_missing(info)
    if kind == "aggregate":
        lab = info[1].lab
        if not texts:
            return []
        count = f"the latest {info[1].count} " if info[1].count else ""
        question = (f"{_cap(count)}{lab.label} results{_last(lab.window)}" if not info[2]
                    else f"Check the {lab.label} results: {texts[0]}")
        return [_lab(lab, texts[0], question, lab.window)]
    if kind == "recorded":
        node = info[1]
        if info[3]:
            return [_lab(node, texts[0], f"{node.label} results on record (the observation list)", node.window)]
        items = []
        for (obs, problem), text in zip(info[4], texts):
            when = show(obs.lo, obs.hi) if obs.lo is not None else "undated"
            question = (f"Full date of the {node.label} result of {when}" if problem.startswith("date")
                        else f"Check the {node.label} result of {when}: {problem}")
            items.append(_lab(node, text, question, node.window))
        return items
    if kind == "visits":
        node = info[1]
        code = ", ".join(lab_code(k) for k in node.keys)
        return [MissingItem("lab", code, node.source_text or code, _within(node.window), _cap(text), text)
                for text in texts]
    if kind == "count":
        test = info[1].test
        if info[6]:
            return [_not_provided(test, texts[0])]
        return _entry_items(test, info[3], texts)
    if kind == "text":
        node = info[1]
        if info[3]:
            return [_lab(node, texts[0], _no_result_question(node, node.window), node.window)]
        if texts:
            obs = info[2]
            when = show(obs.lo, obs.hi) if obs is not None and obs.lo is not None else "undated"
            return [_lab(node, texts[0], f"Check the {node.label} result of {when}: {texts[0]}", node.window)]
        return []
    if kind == "age":
        if not texts:
            return []
        if isinstance(info[2], str):
            question = f"Check the date of birth: {texts[0]}"
        elif info[2] is None:
            question = "Date of birth"
        else:
            question = "Full date of birth (the year or month alone does not decide the age)"
        return [MissingItem("birth_date", "birth_date", "date of birth", None, question, texts[0])]
    if kind == "sex":
        return [MissingItem("sex", "sex", "sex", None, "Sex of the patient", text) for text in texts]
    if kind == "record":
        node = info[1]
        if info[3]:
            return [_not_provided(node, texts[0])]
        return _entry_items(node, info[4], texts)
    if kind == "anchored":
        node = info[1]
        if info[3]:
            if isinstance(node.anchor, ir.LabCompare) and node.test.kind not in info[3]:
                return [_anchor_not_provided(node.anchor, texts[0])]  # no labs, or no result of the anchor's lab
            test = node.anchor if info[3] == f"{getattr(node.anchor, 'kind', '')} (not provided, needed as the anchor)" \
                else node.test
            return [_not_provided(test, texts[0])]
        items = []
        for (entry, other, reasons), text in zip(info[4], texts):
            shown = f"{entry_name(node.test.noun, entry, True)} {node.relation_text} {_anchor_shown(node, other)}"
            items.append(MissingItem(_record_kind(node.test.noun), entry.code or node.test.matcher.name, shown, None,
                                     f"Check {shown}: {', '.join(reasons)}", text))
        return items
    if kind == "anchored_lab":
        node = info[1]
        if info[3]:
            return [_anchor_not_provided(node.anchor, texts[0])]  # the only reason with no anchor to look at
        items = []
        for (other, _lab_info, reasons), text in zip(info[4], texts):
            shown = _anchor_shown(node, other)
            question = f"{node.test.label} result {node.relation_text} {shown}"
            if not isinstance(node.anchor, ir.LabCompare) and any(TERMINOLOGY_REASON in r for r in reasons):
                # whether this record is an anchor at all comes first; its lab matters only if it is
                group = node.anchor.matcher.name
                items.append(MissingItem("terminology", other.code or group, shown, None,
                                         f"Is {shown} one of {group}? (the terminology loaded cannot tell)", text))
                question += f" (if it is one of {group})"
            items.append(_lab(node.test, text, question))
        return items
    if kind == "fact":
        node = info[1]
        if not texts:
            return []
        about = node.about
        if about is not None:
            question = about.question or f"{about.description}?"
            if about.asked_of:
                question += f" ({about.asked_of})"
            return [MissingItem("fact", node.name, about.description, None, question, texts[0])]
        return [MissingItem("fact", node.name, node.name.replace("_", " "), None,
                            f"Record the fact {node.name} (the rule set does not declare it)", texts[0])]
    if kind == "dose_total":
        test = info[1].test
        return [MissingItem("medication", test.matcher.name, test.matcher.name, _within(test.window), f"Check {text}",
                            text) for text in texts]
    if kind in ("dose_trend", "investigational"):
        matcher = getattr(info[1], "matcher", None)
        code = matcher.name if matcher is not None else "investigational medication"
        window = _within(getattr(info[1], "window", None) or getattr(info[1], "duration", None))
        return [MissingItem("medication", code, code, window, f"Check {text}", text) for text in texts]
    return [MissingItem("record", "", text, None, _cap(text), text) for text in texts]


def review_item(reason: str, criterion_id: str = "") -> MissingItem:
    """A review reason as an item: the question is the reason, asked of a reviewer."""
    text = " ".join(reason.split())
    return MissingItem("review", criterion_id or "review", text, None, _cap(text) + " (review)", reason)


def fallback_item(text: str) -> MissingItem:
    """An item for a missing entry no atom explains (never expected; kept so that nothing is lost)."""
    return MissingItem("record", "", text, None, _cap(text), text)


def _collect(outcome: Outcome, found: dict[str, list[MissingItem]], seen: set[int]) -> None:
    """The items of every unknown atom under ``outcome``, in rule order, grouped by their ``missing`` text.

    One sentence can stand for several atoms ("conditions (not provided)" for each condition test of
    the criterion): each keeps its own item, so every test left open is asked, not only the first."""
    stack = [outcome]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if o.info is not None:
            if o.value is None and o.info[0] != "review":
                for item in atom_items(o.info):
                    group = found.setdefault(item.text, [])
                    if not any((i.kind, i.code, i.question) == (item.kind, item.code, item.question) for i in group):
                        group.append(item)
            continue
        stack.extend(reversed(o.deciding))


def missing_items(outcomes, missing: list[str], reviews: list[str], criterion_id: str = "") -> list[MissingItem]:
    """The structured items of a criterion: those of each ``missing`` entry (same order; one, or one per
    test when a sentence stands for several), then one per review reason.

    ``outcomes``: the criterion's explained outcomes (its condition, and its `applies if` premise).
    """
    found: dict[str, list[MissingItem]] = {}
    seen: set[int] = set()
    for outcome in outcomes:
        if isinstance(outcome, Outcome):
            _collect(outcome, found, seen)
    items = [item for text in dict.fromkeys(missing) for item in found.get(text) or [fallback_item(text)]]
    items += [review_item(reason, criterion_id) for reason in reviews]
    return items
