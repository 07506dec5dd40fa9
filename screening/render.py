"""Terminal rendering of screening results with rich: the check table and the explain view.

Text from rule files and patients is data: it is always given to rich as :class:`Text` (never
as a markup string, so `[/]` or `[bold red]` print as written, and no `:emoji:` codes are
replaced), with control characters shown as escapes (see :func:`literal`), so that neither a
rule file nor a patient record can restyle or spoof a report.
"""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .limits import printable
from .report import PatientResult

VERDICT_STYLE = {"pass": "green", "fail": "bold red", "unknown": "yellow", "review": "magenta"}
DECISION_STYLE = {"eligible": "bold green", "ineligible": "bold red", "undetermined": "bold yellow"}
MARK = {True: "✓", False: "✗", None: "?"}


def literal(text, style: str = "") -> Text:
    """Data as rich text, printed exactly as written (control characters as ``\\xNN``)."""
    return Text(printable(str(text)), style=style)


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _why(result) -> str:
    if result.applicable is False:
        return result.explanation
    if result.missing:
        return "missing: " + ", ".join(result.missing)
    if result.verdict == "review" and result.reviews:
        return "review: " + "; ".join(result.reviews)
    deciding = [e for e in result.evidence if e.value is result.value] or result.evidence
    if deciding:
        return deciding[0].detail
    return result.explanation


def print_results(console: Console, trial, results: list[PatientResult]) -> None:
    """One table per patient: every criterion's verdict, then the decision."""
    for result in results:
        header = Text.assemble(
            ("Patient ", "bold"), (printable(result.patient), "bold"),
            f"  trial {printable(result.trial)}  as of {result.as_of}  ",
            ("decision: ", "bold"), (result.decision.upper(), DECISION_STYLE[result.decision]),
        )
        console.print(header)
        if result.decision_reason:
            console.print(f"  {result.decision_reason}", style=DECISION_STYLE[result.decision], markup=False)
        table = Table(show_lines=False, pad_edge=False, expand=False)
        table.add_column("criterion", no_wrap=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("verdict", no_wrap=True)
        table.add_column("registry text", max_width=48)
        table.add_column("why", max_width=70)
        for c in result.criteria:
            verdict = Text(c.verdict + (" (draft)" if c.draft else ""), style=VERDICT_STYLE[c.verdict])
            table.add_row(literal(c.id), literal(c.kind), verdict, literal(_short(c.text, 90)),
                          literal(_short(_why(c), 160)))
        console.print(table)
        counts = {v: sum(1 for c in result.criteria if c.verdict == v) for v in VERDICT_STYLE}
        reason = f" ({result.decision_reason})" if result.decision_reason else ""
        console.print(
            "  " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + f"  ->  {result.decision}{reason}",
            markup=False,
        )
        console.print()


def print_explanation(console: Console, trial, result: PatientResult, show_all: bool = False) -> None:
    """For every criterion that is not a pass (or all with show_all): evidence, limits, margins, missing data."""
    console.print(Text.assemble(
        ("Patient ", "bold"), (printable(result.patient), "bold"),
        f"  trial {printable(result.trial)}  as of {result.as_of}  ",
        ("decision: ", "bold"), (result.decision.upper(), DECISION_STYLE[result.decision]),
    ))
    if result.decision_reason:
        console.print(f"  {result.decision_reason}", style=DECISION_STYLE[result.decision], markup=False)
    shown = [c for c in result.criteria if show_all or c.verdict != "pass"]
    if not shown:
        console.print("Every criterion passes.", style="green")
        return
    for c in shown:
        console.print()
        console.print(Text.assemble(
            (f"{printable(c.id)} ", "bold"), f"({c.kind}) ", (c.verdict.upper(), VERDICT_STYLE[c.verdict]),
            ("  DRAFT rule" if c.draft else "", "magenta"),
        ))
        console.print(Text("  registry: ") + literal(c.text, style="italic"))
        console.print(Text("  rule:     ") + literal(" ".join(c.rule.split()), style="cyan"))
        console.print(Text(f"  value:    {'unknown' if c.value is None else str(c.value).lower()}"
                           + ("  (for an exclusion, true means excluded)" if c.kind == "exclusion" else "")))
        if c.applicable is False:
            console.print(literal(f"  {c.explanation}"))
        if c.applicable is None:
            console.print("  whether this criterion applies is unknown", markup=False)
        if c.evidence:
            console.print("  evidence:")
            for e in c.evidence:
                console.print(Text(f"    {MARK[e.value]} ") + literal(" ".join(e.rule.split()), style="cyan")
                              + literal(f": {e.detail}"))
        if c.missing:
            console.print(Text("  missing:  ", style="yellow") + literal(", ".join(c.missing)))
        if c.not_considered:
            console.print(Text("  not considered: ") + literal("; ".join(c.not_considered)))
        if c.reviews:
            console.print(Text("  review:   ", style="magenta") + literal("; ".join(c.reviews)))
