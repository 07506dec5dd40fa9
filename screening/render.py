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


def _why(result) -> str:
    """The compact one-line reason: what is missing, the review, or the deciding evidence."""
    from .reports.worklist import criterion_reason

    return criterion_reason(result.to_dict())


def _full(result) -> str:
    """Every line of a criterion's explanation (for --wide): evidence, missing data, reviews."""
    if result.evidence and result.applicable is not False:
        lines = [f"{MARK[e.value]} {' '.join(e.rule.split())}: {e.detail}" for e in result.evidence]
        if result.applicable is None:
            lines.insert(0, "whether it applies is unknown")
        if result.draft:
            lines.insert(0, "DRAFT rule, not yet confirmed by an author")
    else:
        lines = [result.explanation] if result.explanation else []
    if result.missing:
        lines.append("missing: " + ", ".join(result.missing))
    if result.reviews:
        lines.append("review: " + "; ".join(result.reviews))
    return "\n".join(lines)


def patient_heading(result: PatientResult) -> Text:
    """``Patient Doe, Jane — MRN 12345 (p06.json)  trial X  as of D  decision: ELIGIBLE``: the patient
    by label (the record id only where the label does not show it otherwise)."""
    label = result.patient_label
    return Text.assemble(
        ("Patient ", "bold"), (printable(str(label.get("display") or result.patient)), "bold"),
        f"  trial {printable(result.trial)}  as of {result.as_of}  ",
        ("decision: ", "bold"), (result.decision.upper(), DECISION_STYLE[result.decision]),
    )


def print_results(console: Console, trial, results: list[PatientResult], wide: bool = False) -> None:
    """One table per patient: every criterion's id, kind, verdict and a one-line reason, then the decision.

    Nothing is cut: columns fold and text wraps to the console's width. ``wide`` adds the registry
    text and the full explanation of every criterion (``explain`` gives the evidence line by line)."""
    for result in results:
        console.print(patient_heading(result))
        if wide and result.patient not in str(result.patient_label.get("display")):
            console.print(literal(f"  record id {result.patient}"))
        if result.decision_reason:
            console.print(literal(f"  {result.decision_reason}", style=DECISION_STYLE[result.decision]))
        table = Table(show_lines=wide, pad_edge=False, expand=False)
        table.add_column("id", no_wrap=True, overflow="fold")
        table.add_column("kind", no_wrap=True, overflow="fold")
        table.add_column("verdict", overflow="fold")
        if wide:
            table.add_column("registry text", overflow="fold", ratio=2)
        table.add_column("why" if wide else "reason", overflow="fold", ratio=3)
        for c in result.criteria:
            verdict = Text(c.verdict + (" (draft)" if c.draft else ""), style=VERDICT_STYLE[c.verdict])
            if c.applicable is False:
                verdict.append(" (n/a)")
            cells = [literal(c.id), literal(c.kind), verdict]
            if wide:
                cells += [literal(c.text), literal(_full(c))]
            else:
                cells.append(literal(_why(c)))
            table.add_row(*cells)
        console.print(table)
        counts = {v: sum(1 for c in result.criteria if c.verdict == v) for v in VERDICT_STYLE}
        reason = f" ({result.decision_reason})" if result.decision_reason else ""
        console.print(literal(
            "  " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + f"  ->  {result.decision}{reason}"))
        console.print()


def print_explanation(console: Console, trial, result: PatientResult, show_all: bool = False) -> None:
    """For every criterion that is not a pass (or all with show_all): evidence, limits, margins, missing data."""
    console.print(patient_heading(result))
    if result.patient not in str(result.patient_label.get("display")):
        console.print(literal(f"  record id {result.patient}"))
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
            asks = list(dict.fromkeys(i.question for i in c.missing_items if i.kind != "review"))
            if asks:
                console.print(Text("  ask:      ", style="yellow") + literal("; ".join(asks)))
        if c.not_considered:
            console.print(Text("  not considered: ") + literal("; ".join(c.not_considered)))
        if c.reviews:
            console.print(Text("  review:   ", style="magenta") + literal("; ".join(c.reviews)))


def print_analytes(console: Console, analytes) -> None:
    """The names rules may use, never cut or broken: a table whose columns wrap between words when the
    console is wide enough for every word, else one block per analyte (lines wrap between words)."""
    headers = ("name", "aliases", "unit", "molar mass g/mol", "LOINC")
    rows = [(a.name, ", ".join(a.aliases), a.unit_text or "(text)", f"{a.molar_mass:g}" if a.molar_mass else "",
             ", ".join([*a.loinc, *(f"LOCAL:{c}" for c in a.local)])) for a in analytes]
    columns = list(zip(headers, *rows))
    natural = [max(len(cell) for cell in column) for column in columns]
    # the name is typed: it never wraps; the other columns may wrap between words, never inside one
    least = [natural[0]] + [max(len(word) for cell in column for word in cell.split() or [""])
                            for column in columns[1:]]
    available = console.width - (3 * len(headers) - 1)  # borders and padding (no padding at the edges)
    if sum(least) > available:
        for name, aliases, unit, mass, codes in rows:
            console.print(Text(name, style="bold") + literal(f"  {unit}" + (f"  molar mass {mass} g/mol" if mass else "")
                                                           + (f"  LOINC {codes}" if codes else "")))
            if aliases:
                console.print(literal(f"  aliases: {aliases}"))
        return
    widths = list(natural)
    excess = sum(widths) - available
    while excess > 0:  # narrow the column with the most room to spare, one character at a time
        index = max(range(1, len(widths)), key=lambda k: widths[k] - least[k])
        if widths[index] <= least[index]:
            break
        widths[index] -= 1
        excess -= 1
    table = Table(pad_edge=False)
    for header, width in zip(headers, widths):
        table.add_column(header, width=width, overflow="fold", no_wrap=header == "name")
    for row in rows:
        table.add_row(*(literal(cell) for cell in row))
    console.print(table)
