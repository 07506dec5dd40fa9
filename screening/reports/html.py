"""The HTML report: one self-contained file a coordinator opens from disk or prints.

Rendered with Jinja2 from the templates shipped in this package (``templates/report.html.j2``),
with autoescaping on: every text from a rule file or a patient record reaches the page as an
escaped string, never as markup and never as template source. CSS is inline; charts are inline
SVG drawn here (bars with ``data-key``/``data-count`` attributes and a ``<title>`` each); the page
loads nothing from anywhere and runs no script.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from ..report import DECISIONS
from .sources import Source
from .view import Row, TrialSummary, pages

CHART_BARS = 10          # bars per chart: the criteria that exclude most, the data most often missing
CHART_WIDTH = 760
LABEL_WIDTH = 300        # room for the bar labels, left of the bars
VALUE_WIDTH = 110        # room for "12 (66.7%)" right of the longest bar
ROW_HEIGHT = 24
LABEL_CHARS = 44         # a bar's label is cut here (the whole text is in its <title>)


@dataclass
class Bar:
    key: str
    label: str        # shown, cut at LABEL_CHARS
    title: str        # the whole text, in the bar's <title>
    count: int
    share: str        # "66.7%" of the trial's patients
    y: float
    width: float


@dataclass
class Chart:
    name: str         # "excluding" or "missing": the svg's data-chart
    caption: str
    bars: list
    height: int
    width: int = CHART_WIDTH
    label_width: int = LABEL_WIDTH
    row_height: int = ROW_HEIGHT


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "0%"


def _cut(text: str, limit: int = LABEL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(name: str, caption: str, items: list[dict], total: int) -> Chart:
    """A horizontal bar chart, longest bar for the largest count, one bar per item (in the given order)."""
    top = max((item["count"] for item in items), default=0)
    room = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    bars = []
    for i, item in enumerate(items):
        whole = f"{item['label']} {item['text']}".strip() if item["text"] != item["label"] else item["label"]
        bars.append(Bar(item["key"], _cut(whole), f"{whole}: {item['count']} of {total} patients "
                        f"({_share(item['count'], total)})", item["count"], _share(item["count"], total),
                        i * ROW_HEIGHT, round(room * item["count"] / top, 1) if top else 0.0))
    return Chart(name, caption, bars, max(len(bars), 1) * ROW_HEIGHT)


def describe_terminology(sources) -> str:
    """The terminology line of a result (``terminology``), tolerant of what a results file holds."""
    if not isinstance(sources, list) or not sources:
        return "none"
    parts = []
    for s in sources:
        if not isinstance(s, dict):
            continue
        text = str(s.get("source", "?"))
        if s.get("version"):
            text += f" version {s['version']}"
        if s.get("effective") and s.get("effective") != s.get("version"):
            text += f" (effective {s['effective']})"
        parts.append(text)
    return "; ".join(parts) or "none"


def environment() -> Environment:
    """The Jinja2 environment: package templates, autoescape on, undefined names are errors."""
    return Environment(loader=PackageLoader("screening.reports", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def trial_view(trial: TrialSummary) -> dict:
    return {
        "id": trial.id, "title": trial.title, "total": trial.total,
        "decisions": [(d, trial.decisions[d], _share(trial.decisions[d], trial.total)) for d in DECISIONS],
        "excluding": bar_chart("excluding", "Criteria that exclude most (patients for whom the criterion fails)",
                               trial.excluding(CHART_BARS), trial.total),
        "missing": bar_chart("missing", "Data most often missing (patients for whom it is missing)",
                             trial.most_missing(CHART_BARS), trial.total),
    }


def render(source: Source, title: str = "Screening report"):
    """The report's HTML, as a stream of text chunks (patient pages are built one at a time)."""
    rows: list[Row] = source.collector.worklist()
    trials = [trial_view(t) for t in source.collector.trials.values()]
    as_of = sorted({_page_as_of(source, rows)} - {""})
    template = environment().get_template("report.html.j2")
    stream = template.stream(
        title=title, origin=source.origin, trials=trials, rows=rows, pages=pages(rows, source.fetch),
        problems=source.problems, problem_count=source.problem_count, notes=source.notes,
        terminology=describe_terminology(source.terminology), as_of=", ".join(as_of),
        decisions=DECISIONS,
    )
    stream.enable_buffering(200)  # write in chunks of a few KB, not one call per template fragment
    return stream


def _page_as_of(source: Source, rows: list[Row]) -> str:
    """The screening date, from the first result (every result of one run shares it)."""
    if not rows:
        return ""
    value = source.fetch(rows[0]).get("as_of")
    return str(value) if value else ""


def write_report(source: Source, out: Path, title: str = "Screening report") -> None:
    """Write the report to ``out`` atomically (a temporary file in the same folder, then renamed)."""
    folder = out.parent if str(out.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            for chunk in render(source, title):
                stream.write(chunk)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)  # as any file the user writes (mkstemp makes it private)
        os.replace(temporary, out)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
