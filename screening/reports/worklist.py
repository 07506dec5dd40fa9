"""The worklist: one row per patient and trial, ordered for action (docs/worklist.md).

Eligible patients first, then undetermined ones by how few items are missing, then ineligible
ones. Each row names the patient by label and carries the deciding criteria (with a one-line
reason), what to obtain (questions) and the review questions.

Rows are built from the JSON contract (``PatientResult.to_dict()``, a line of results.jsonl),
read by key, so results of any engine that writes the same fields can be listed; a result
without ``missing_items`` or explanations (an engine that records verdicts and ``missing`` only)
still gives a row, with its ``missing`` sentences as the items.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import DataError, DataProblem, UsageError
from ..missing import MissingItem
from ..report import make_label

DECISION_ORDER = {"eligible": 0, "undetermined": 1, "ineligible": 2}
CSV_COLUMNS = ("patient", "label", "trial", "as_of", "decision", "items_missing", "deciding", "to_obtain",
               "review_questions", "input")
"""The worklist's CSV columns; ``summary.csv`` carries the same ``label`` ... ``review_questions``."""
SEPARATOR = "; "
"""Between the entries of a list cell in CSV (``to_obtain``: one question after another)."""


@dataclass(frozen=True)
class Deciding:
    """A criterion that decides (or holds up) the decision: a fail, or an unknown / review."""

    id: str
    kind: str
    verdict: str
    reason: str

    def line(self) -> str:
        """``E2 fail: condition ICD10:C50.9 matches ...``; an unknown or review criterion by id and verdict
        (what it needs is in the row's questions)."""
        if self.verdict == "fail" and self.reason:
            return f"{self.id} fail: {self.reason}"
        return f"{self.id} {self.verdict}"

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "verdict": self.verdict, "reason": self.reason}


@dataclass
class Row:
    """One patient and trial."""

    patient: str
    label: dict
    trial: str
    as_of: str
    decision: str
    deciding: list[Deciding] = field(default_factory=list)
    obtain: list[MissingItem] = field(default_factory=list)  # data and answers to get (not reviews)
    reviews: list[MissingItem] = field(default_factory=list)  # a person's judgment
    decision_reason: str | None = None
    input: str | None = None

    @property
    def items_missing(self) -> int:
        """Distinct things to obtain or review: the undetermined rows are ordered by it."""
        return len(self.obtain) + len(self.reviews)

    @property
    def display(self) -> str:
        return str(self.label.get("display") or self.patient)

    def sort_key(self) -> tuple:
        rank = DECISION_ORDER.get(self.decision, 3)
        return (rank, self.items_missing if rank == 1 else 0, self.display.casefold(), self.trial)

    def to_dict(self) -> dict:
        return {"patient": self.patient, "patient_label": dict(self.label), "trial": self.trial, "as_of": self.as_of,
                "decision": self.decision, "decision_reason": self.decision_reason,
                "items_missing": self.items_missing, "deciding": [d.to_dict() for d in self.deciding],
                "to_obtain": [i.to_dict() for i in self.obtain], "review_questions": [i.to_dict() for i in self.reviews],
                "input": self.input}

    def cells(self) -> dict[str, str]:
        """The row as CSV cells (lists joined with :data:`SEPARATOR`)."""
        return {
            "patient": self.patient, "label": self.display, "trial": self.trial, "as_of": self.as_of,
            "decision": self.decision, "items_missing": str(self.items_missing),
            "deciding": SEPARATOR.join(d.line() for d in self.deciding) or (self.decision_reason or ""),
            "to_obtain": SEPARATOR.join(i.question for i in self.obtain),
            "review_questions": SEPARATOR.join(i.question for i in self.reviews),
            "input": self.input or "",
        }


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _list(value) -> list:
    """A list from a results line, or empty (results from other engines are read by key, leniently)."""
    return value if isinstance(value, list) else []


def criterion_reason(c: dict) -> str:
    """One line saying why a criterion has its verdict (for tables and the worklist)."""
    if c.get("applicable") is False:
        return _one_line(c.get("explanation") or "does not apply")
    reviews = _reviews(c)
    if c.get("verdict") == "review" and reviews:
        return "review: " + _one_line("; ".join(map(str, reviews)))
    items = [i for i in _list(c.get("missing_items")) if isinstance(i, dict) and i.get("kind") != "review"]
    if items:
        # a fact's sentence is its identifier: a person reads its question; a sentence shared by
        # several items ("conditions (not provided)") is written once
        shown = dict.fromkeys(str((i.get("question") if i.get("kind") == "fact" else None)
                                  or i.get("text") or i.get("question") or "") for i in items)
        return "missing: " + _one_line(", ".join(shown))
    missing = _list(c.get("missing"))
    if missing:
        return "missing: " + _one_line(", ".join(map(str, missing)))
    value = c.get("value")
    evidence = [e for e in _list(c.get("evidence")) if isinstance(e, dict)]
    deciding = [e for e in evidence if e.get("value") is value] or evidence
    if deciding:
        return _one_line(deciding[0].get("detail") or "")
    return _one_line(c.get("explanation") or "")


def _items(c: dict) -> list[MissingItem]:
    items = c.get("missing_items")
    if isinstance(items, list):
        return [MissingItem.from_dict(i) for i in items if isinstance(i, dict)]
    # an engine that records the sentences only: each one is an item of its own
    found = [MissingItem("record", "", _one_line(t), None, _one_line(t)[:1].upper() + _one_line(t)[1:], str(t))
             for t in _list(c.get("missing"))]
    found += [MissingItem("review", str(c.get("id", "")), _one_line(r), None,
                          _one_line(r)[:1].upper() + _one_line(r)[1:] + " (review)", str(r))
              for r in _reviews(c)]
    return found


def _reviews(c: dict) -> list:
    """A criterion's review reasons: ``review_reasons`` (the per-patient engine), ``reviews`` (the SQL engines)."""
    return _list(c.get("review_reasons")) or _list(c.get("reviews"))


def row_from_result(data: dict) -> Row:
    """A worklist row from one result in the JSON contract."""
    patient = str(data.get("patient", ""))
    label = data.get("patient_label")
    if not isinstance(label, dict):
        source = data.get("input") or data.get("source")
        label = make_label(patient, str(source) if source else None, None, None)
    criteria = [c for c in _list(data.get("criteria")) if isinstance(c, dict)]
    decision = str(data.get("decision", ""))
    holding = ("fail",) if decision == "ineligible" else ("unknown", "review")
    deciding = [Deciding(str(c.get("id", "")), str(c.get("kind", "")), str(c.get("verdict", "")), criterion_reason(c))
                for c in criteria if c.get("verdict") in holding]
    obtain: dict[tuple, MissingItem] = {}
    reviews: dict[tuple, MissingItem] = {}
    if decision != "ineligible":  # for an ineligible patient nothing is worth obtaining
        for c in criteria:
            if c.get("verdict") not in ("unknown", "review"):
                continue
            for item in _items(c):
                target = reviews if item.kind == "review" else obtain
                target.setdefault((item.kind, item.code, item.question), item)
    reason = data.get("decision_reason")
    if decision == "undetermined" and reason:  # a death that may precede the as-of date: one more thing to check
        item = MissingItem("record", "deceased", "date of death", None, f"Is the patient alive? ({_one_line(reason)})",
                           str(reason))
        obtain = {("record", "deceased", item.question): item, **obtain}
    return Row(patient=patient, label=label, trial=str(data.get("trial", "")), as_of=str(data.get("as_of", "")),
               decision=decision, deciding=deciding, obtain=list(obtain.values()), reviews=list(reviews.values()),
               decision_reason=data.get("decision_reason"), input=data.get("input"))


def build(results: Iterable[dict], trials: set[str] | None = None) -> list[Row]:
    """The worklist of results (JSON contract dicts), ordered for action; ``trials``: keep only these ids."""
    rows = [row_from_result(r) for r in results if trials is None or str(r.get("trial")) in trials]
    rows.sort(key=Row.sort_key)
    return rows


# ---------------------------------------------------------------- reading batch results
RESULTS_FILE = "results.jsonl"


MAX_RESULT_BYTES = 256 * 1024 * 1024
"""The longest line of results.jsonl read (a result carries every explanation; this bounds memory)."""


def read_results(folder: Path) -> Iterator[dict]:
    """The results of a ``screening batch`` output folder (``results.jsonl``), one dict per line.

    A line that is not a JSON object (or not UTF-8, nested too deep, longer than
    :data:`MAX_RESULT_BYTES`) is bad input: :class:`DataError` at ``file:line``.
    """
    from ..patient.load import MAX_DEPTH, _too_deep

    path = Path(folder) / RESULTS_FILE
    if not path.is_file():
        raise UsageError(f"{folder}: no {RESULTS_FILE} in this folder (the --out folder of `screening batch`)")
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    with stream:
        number = 0
        while True:
            raw = stream.readline(MAX_RESULT_BYTES + 1)
            if not raw:
                return
            number += 1
            where = f"{path}:{number}"
            if len(raw) > MAX_RESULT_BYTES and not raw.endswith(b"\n"):
                raise DataError(where, [DataProblem("$", f"line longer than {MAX_RESULT_BYTES // 2**20} MiB")])
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(where, [DataProblem(f"byte {exc.start + 1}", "not UTF-8 text")]) from None
            if not line.strip():
                continue
            if _too_deep(line) is not None:
                raise DataError(where, [DataProblem("$", f"nested more than {MAX_DEPTH} levels deep")])
            try:
                data = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise DataError(where, [DataProblem("$", f"not JSON: {exc}")]) from None
            if not isinstance(data, dict):
                raise DataError(where, [DataProblem("$", "a result must be a JSON object")])
            if not isinstance(data.get("decision"), str) or not isinstance(data.get("trial"), str):
                raise DataError(where, [DataProblem("$", "not a screening result (no trial or decision)")])
            if not isinstance(data.get("criteria", []), list):
                raise DataError(where, [DataProblem("$.criteria", "must be a list")])
            yield data


# ---------------------------------------------------------------- output
def to_csv(rows: list[Row]) -> str:
    from ..batch import csv_line, csv_row  # the same formula guard and quoting as summary.csv

    lines = [csv_line(CSV_COLUMNS)]
    for row in rows:
        cells = row.cells()
        lines.append(csv_line(csv_row(cells[c] for c in CSV_COLUMNS)))
    return "".join(lines)


def to_json(rows: list[Row]) -> str:
    """The rows as a JSON array: each row's label, decision, deciding criteria and items (objects)."""
    return json.dumps([row.to_dict() for row in rows], indent=2, ensure_ascii=False) + "\n"


def to_html(rows: list[Row], title: str = "Screening worklist") -> str:
    """A plain, self-contained HTML table (every text escaped); the full report is `screening report`."""
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in ("patient", "trial", "decision", "items", "deciding criteria",
                                               "to obtain", "review questions"))
    body = []
    for row in rows:
        def items(values) -> str:
            return "<ul>" + "".join(f"<li>{e(v)}</li>" for v in values) + "</ul>" if values else ""
        deciding = [d.line() for d in row.deciding] or ([row.decision_reason] if row.decision_reason else [])
        body.append(
            f'<tr class="{e(row.decision)}"><td>{e(row.display)}</td><td>{e(row.trial)}</td>'
            f"<td>{e(row.decision)}</td><td>{row.items_missing}</td><td>{items(deciding)}</td>"
            f"<td>{items(i.question for i in row.obtain)}</td><td>{items(i.question for i in row.reviews)}</td></tr>")
    style = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:.3em .5em;vertical-align:top;text-align:left}"
             "tr.eligible td:nth-child(3){color:#060}tr.ineligible td:nth-child(3){color:#a00}"
             "tr.undetermined td:nth-child(3){color:#850}ul{margin:0;padding-left:1.1em}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{style}</style></head><body><h1>{e(title)}</h1>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></body></html>\n")


TABLE_WIDTH = 120
"""From this console width on, the worklist is a table; below it, one block per row."""


def _steps(row: Row) -> list[str]:
    """What a row says to do: the failing criteria (ineligible), else the questions."""
    if row.decision == "ineligible":
        return [d.line() for d in row.deciding] or ([row.decision_reason] if row.decision_reason else [])
    return [f"• {i.question}" for i in row.obtain] + [f"• {i.question}" for i in row.reviews]


def print_text(console, rows: list[Row]) -> None:
    """The worklist on a terminal: a table on a wide console, one block per row on a narrow one;
    text wraps to the width, nothing is cut."""
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from ..render import DECISION_STYLE, literal

    def decision_text(row: Row, sep: str) -> Text:
        text = Text(row.decision, style=DECISION_STYLE.get(row.decision, ""))
        if row.decision == "undetermined":
            text.append(f"{sep}{row.items_missing} item{'s' if row.items_missing != 1 else ''}")
            text.append(sep + " ".join(d.id for d in row.deciding) if sep == "\n" else
                        f" ({', '.join(d.id for d in row.deciding)})")
        return text

    if console.width >= TABLE_WIDTH:
        table = Table(show_lines=True, expand=False, pad_edge=False)
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("patient", overflow="fold", max_width=48)
        table.add_column("trial", overflow="fold")
        table.add_column("decision", overflow="fold", max_width=16)
        table.add_column("why, and what to do next", overflow="fold")
        for number, row in enumerate(rows, 1):
            table.add_row(str(number), literal(row.display), literal(row.trial), decision_text(row, "\n"),
                          literal("\n".join(_steps(row))))
        console.print(table)
    else:
        for number, row in enumerate(rows, 1):
            console.print(Text(f"{number}. ", style="bold") + literal(row.display, style="bold") + Text("  ")
                          + literal(row.trial) + Text("  ") + decision_text(row, ", "))
            for step in _steps(row):
                console.print(Padding(literal(step), (0, 0, 0, 4)))
    counts = {d: sum(1 for r in rows if r.decision == d) for d in DECISION_ORDER}
    console.print(literal(", ".join(f"{n} {d}" for d, n in counts.items()) + f" ({len(rows)} row{'' if len(rows) == 1 else 's'})"))
