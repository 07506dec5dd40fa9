"""Screening results -> CDS Hooks cards (a pure function of the JSON contract).

* eligible: an ``info`` card "Possibly eligible for NCT00659217" (screening proposes; the study
  team decides, hence "possibly").
* undetermined: an ``info`` card "Possibly eligible for NCT00659217: 2 items missing: ALT result
  within 3 months, ..." naming what would decide it (the questions of ``missing_items`` when the
  contract carries them, else the ``missing`` and review texts).
* ineligible: no card, unless asked for (``include_ineligible``): then an ``info`` card naming the
  criteria that exclude.

``info`` for all: a trial opportunity is never urgent in the chart, and alert fatigue is the
first reason clinicians switch CDS off. Text from rule files and patients is escaped for Markdown
(it cannot add links, images or HTML to the card) and has control characters shown as escapes.
"""
from __future__ import annotations

import re
import uuid

from ..limits import printable
from ..reports.worklist import criterion_reason
from .models import SUMMARY_MAX

# what can start emphasis, code, links, images, autolinks (www. and scheme:), HTML, tables or headings
_MARKDOWN = re.compile(r"([\\`*_{}\[\]#!|<>~&:.])")
_LEADING = re.compile(r"^([-+=]|\d+(?=[.)]))")
_NCT = re.compile(r"NCT\d{8}")


def md(text) -> str:
    """Plain text made inert in GitHub-flavoured Markdown: one line, every special character escaped."""
    escaped = _MARKDOWN.sub(r"\\\1", " ".join(printable(str(text)).split()))
    return _LEADING.sub(r"\\\1", escaped)  # a line may not start a list or a heading underline


def plain(text) -> str:
    """Plain text for a summary (not Markdown): one line, control characters escaped."""
    return " ".join(printable(str(text)).split())


def open_items(result: dict) -> tuple[list[str], list[str]]:
    """What would decide an undetermined result: (missing data, review questions), deduplicated.

    From each criterion left unknown or for review: its ``missing_items`` questions when the
    contract has them, else its ``missing`` texts and ``review_reasons``; plus the decision's own
    reason when something besides the criteria left it open (a death date that may precede the as-of).
    """
    missing: dict[str, None] = {}
    review: dict[str, None] = {}
    for criterion in result.get("criteria", ()):
        if criterion.get("verdict") not in ("unknown", "review"):
            continue
        items = criterion.get("missing_items")
        if items:
            for item in items:
                text = item.get("question") or item.get("text") or item.get("name") or item.get("code")
                if text:
                    (review if item.get("kind") == "review" else missing).setdefault(plain(text), None)
            continue
        for text in criterion.get("missing", ()):
            missing.setdefault(plain(text), None)
        for text in criterion.get("review_reasons", ()):
            review.setdefault(plain(text), None)
    if result.get("decision") == "undetermined" and result.get("decision_reason"):
        review.setdefault(plain(result["decision_reason"]), None)
    return list(missing), list(review)


def fit(head: str, items: list[str], limit: int = SUMMARY_MAX) -> str:
    """``head: a, b, c`` cut to ``limit`` characters at an item boundary (``, +2 more``)."""
    if not items:
        return head[:limit]
    text = f"{head}: {items[0]}"
    if len(text) > limit:
        room = limit - len(head) - 3
        return f"{head}: {items[0][:max(room, 0)]}…"[:limit] if room > 8 else head[:limit]
    for index, item in enumerate(items[1:], start=1):
        rest = len(items) - index - 1
        more = f", +{rest} more" if rest else ""
        if len(text) + 2 + len(item) + len(more) <= limit:
            text += f", {item}"
            continue
        return text + f", +{len(items) - index} more"
    return text


def _who(result: dict) -> str:
    """The patient as the chart names them: name and MRN when the record has them, else the record id."""
    label = result.get("patient_label")
    label = label if isinstance(label, dict) else {}
    parts = [str(label["name"]) if label.get("name") else None, f"MRN {label['mrn']}" if label.get("mrn") else None]
    return plain(" — ".join(p for p in parts if p) or result.get("patient", ""))


def card_for(result: dict, *, title: str | None, source_label: str, report_url: str | None,
             warnings: list[str], include_ineligible: bool = False) -> dict | None:
    """The card for one patient and trial, or None (an ineligible patient, unless included)."""
    trial = plain(result["trial"])
    decision = result["decision"]
    lines = [f"**{md(trial)}**" + (f": {md(title)}" if title else "")]
    lines += ["", f"Screened for {md(_who(result))} as of {md(result['as_of'])} from the EHR record."]
    if decision == "ineligible":
        if not include_ineligible:
            return None
        failing = [c for c in result["criteria"] if c.get("verdict") == "fail"]
        names = [plain(c["id"]) for c in failing]
        if result.get("decision_reason"):
            names.insert(0, plain(result["decision_reason"]))
        summary = fit(f"Not eligible for {trial}", names)
        lines.append("")
        lines.append("Not eligible because of:")  # a failing inclusion does not "exclude"
        if result.get("decision_reason"):
            lines.append(f"- {md(result['decision_reason'])}")
        for c in failing:
            reason = criterion_reason(c)
            lines.append(f"- {md(c['id'])} ({md(c['kind'])}): {md(c['text'])}" + (f" — {md(reason)}" if reason else ""))
    elif decision == "eligible":
        summary = fit(f"Possibly eligible for {trial}", [])
        lines.append("")
        lines.append(f"Every criterion ({len(result['criteria'])}) is met by the recorded data. "
                     "Screening proposes; the study team confirms eligibility.")
    else:
        missing, review = open_items(result)
        counts = []
        if missing:
            counts.append(f"{len(missing)} item{'s' if len(missing) != 1 else ''} missing")
        if review:
            counts.append(f"{len(review)} to review")
        head = f"Possibly eligible for {trial}" + (f": {', '.join(counts)}" if counts else "")
        summary = fit(head, missing + review)
        if missing:
            lines += ["", "To obtain:"] + [f"- {md(item)}" for item in missing]
        if review:
            lines += ["", "To review:"] + [f"- {md(item)}" for item in review]
    if warnings:
        lines += ["", "About the EHR data:"] + [f"- {md(w)}" for w in warnings]
    card = {
        "uuid": str(uuid.uuid4()),
        "summary": summary,
        "detail": "\n".join(lines),
        "indicator": "info",
        "source": {"label": source_label},
        "links": [],
    }
    if _NCT.fullmatch(result["trial"]):
        card["source"]["url"] = f"https://clinicaltrials.gov/study/{result['trial']}"
    if report_url is not None:
        card["links"].append({"label": f"Screening report for {trial}"[:200], "url": report_url, "type": "absolute"})
    return card
