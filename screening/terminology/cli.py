"""``screening terminology load | info | lookup | expand``.

Exit status: 0 when the command did its work; 1 when ``lookup`` or ``expand`` found nothing
(an unknown code); 2 for bad input (a malformed release file, reported ``FILE:LINE: message``,
after which the store is as it was; a missing store; a badly written member).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from ..errors import ScreeningError
from .progress import Progress
from .store import ENV_VAR, TerminologyStore, parse_member, resolve_store_path, split_ref

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="A local terminology store (SNOMED CT, RxNorm, ATC, FHIR value sets) that sites load "
                       "from their own licensed releases.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

STORE_HELP = f"Store file (default: ${ENV_VAR}, else terminology.sqlite in the per-user data folder)."


def _fail(exc: ScreeningError, code: int = 2) -> None:
    err.print(exc.render(), markup=False, highlight=False)
    raise typer.Exit(code)


def _open(store: Optional[Path]) -> TerminologyStore:
    try:
        return TerminologyStore.open(resolve_store_path(store))
    except ScreeningError as exc:
        _fail(exc)


class BarProgress(Progress):
    """A rich progress bar on stderr (drawn only on a terminal; one line per phase otherwise)."""

    def __init__(self, console: Console):
        from rich.progress import (BarColumn, DownloadColumn, Progress as RichProgress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn)

        self._bar = RichProgress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self._task = None
        self._plain = not console.is_terminal

    def __enter__(self):
        self._bar.start()
        return self

    def __exit__(self, *exc):
        self._bar.stop()

    def start(self, label: str, total: int | None = None) -> None:
        self.done()
        self._task = self._bar.add_task(label, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, amount)

    def done(self) -> None:
        if self._task is not None:
            self._bar.remove_task(self._task)
            self._task = None

    def note(self, message: str) -> None:
        self._bar.console.print(message, markup=False)


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e6:,.1f} MB" if size >= 1e5 else f"{size / 1e3:,.1f} kB"


@app.command()
def load(
    paths: List[Path] = typer.Argument(..., help="SNOMED CT RF2 release folders, RxNorm release folders "
                                                 "(RXNCONSO.RRF, RXNREL.RRF), FHIR CodeSystem/ValueSet JSON files or Bundles."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Build or update the store. All or nothing: a bad row stops the load with FILE:LINE and leaves the
    store as it was. Loading a source again replaces its earlier version."""
    import time

    from .load import load_paths

    target = resolve_store_path(store)
    started = time.perf_counter()
    try:
        with BarProgress(err) as progress:
            summary = load_paths(target, list(paths), progress)
    except ScreeningError as exc:
        _fail(exc)
    seconds = time.perf_counter() - started
    out.print(f"store: {target}", markup=False)
    for data, replaced in summary.sources:
        what = []
        if data.version:
            what.append(f"version {data.version}")
        if data.effective:
            what.append(f"effective {data.effective}")
        if replaced is not None:
            what.append("reloaded" if replaced == (data.version or "") else f"replaced version {replaced or '(none)'}")
        out.print(f"loaded {data.name}" + (f" ({', '.join(what)})" if what else ""), markup=False)
        counts = f"  {len(data.concepts):,} concepts, {len(data.edges):,} relationships"
        if data.links:
            counts += f", {len(data.links):,} links to RxNorm"
        for vs in data.valuesets:
            counts += f", value set of {len(vs.rules):,} {'entries' if data.details.get('from') == 'expansion' else 'rules'}"
        out.print(counts, markup=False)
    for system, rows in sorted(summary.closure_rows.items()):
        cycles = summary.cycles.get(system)
        note = f" ({cycles} cycles collapsed)" if cycles else ""
        out.print(f"closure {system}: {rows:,} rows{note}", markup=False)
    for warning in summary.warnings:
        err.print(f"warning: {warning}", markup=False)
    with TerminologyStore.open(target) as opened:
        counts = opened.counts()
    out.print(f"store now: {counts['concepts']:,} concepts, {counts['relationships']:,} relationships, "
              f"{counts['closure_rows']:,} closure rows, {counts['valuesets']:,} value sets; {_size(target)}; "
              f"loaded in {seconds:.1f} s", markup=False)


@app.command()
def info(
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="One JSON object instead of text."),
) -> None:
    """The store's sources (name, version, effective date), systems and sizes."""
    with _open(store) as opened:
        sources = opened.sources()
        systems = opened.systems()
        counts = opened.counts()
        closure = opened.closure_rows()
        valuesets = opened.valuesets()
    if as_json:
        print(json.dumps({"store": str(opened.path), "size_bytes": opened.path.stat().st_size,
                          "sources": [s.to_dict() for s in sources], "systems": systems,
                          "closure_rows": closure, "totals": counts,
                          "valuesets": [{"url": u, "version": v, "title": t} for u, v, t in valuesets]}, indent=2))
        return
    out.print(f"store: {opened.path} ({_size(opened.path)})", markup=False)
    out.print(f"sources: {len(sources)}", markup=False)
    for s in sources:
        bits = [f"version {s.version}" if s.version else "no version",
                f"effective {s.effective}" if s.effective else None,
                f"{s.concepts:,} concepts, {s.relationships:,} relationships",
                f"loaded {(s.loaded_at or '')[:16].replace('T', ' ')}"]
        out.print(f"  {s.name}: " + "; ".join(b for b in bits if b), markup=False)
    out.print("systems: " + (", ".join(f"{k} {v:,}" for k, v in systems.items()) or "none"), markup=False)
    out.print(f"closure rows: {counts['closure_rows']:,}"
              + (" (" + ", ".join(f"{k} {v:,}" for k, v in closure.items()) + ")" if closure else ""), markup=False)
    if valuesets:
        out.print(f"value sets: {len(valuesets)}", markup=False)
        for url, version, title in valuesets:
            out.print(f"  {url}" + (f"|{version}" if version else "") + (f"  {title}" if title else ""), markup=False)


@app.command()
def lookup(
    code: str = typer.Argument(..., help="SYSTEM:CODE (SNOMED:254837009, RXNORM:3002, ATC:L01AA01) or a bare code."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of text."),
) -> None:
    """A concept's display, whether it is active, its parents and all of its ancestors."""
    with _open(store) as opened:
        system, sep, body = code.partition(":")
        if sep and system.upper() in ("SNOMED", "RXNORM", "ATC", "LOINC", "ICD10", "CPT", "LOCAL") or \
                (sep and opened.has_system(system.upper())):
            found = [c for c in [opened.lookup(system.upper(), body)] if c is not None]
        else:
            found = opened.find(code)
    if not found:
        err.print(f"{code}: not in the terminology store {opened.path}", markup=False)
        raise typer.Exit(1)
    if as_json:
        payload = [{"code": c.ref, "display": c.display, "active": c.active, "term_type": c.kind, "source": c.source,
                    "parents": [{"code": f"{c.system}:{p}", "display": d} for p, d in c.parents],
                    "ancestors": [{"code": f"{c.system}:{a}", "display": d} for a, d in c.ancestors]} for c in found]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, ensure_ascii=False))
        return
    for index, c in enumerate(found):
        if index:
            out.print()
        out.print(f"{c.ref}  {c.display or '(no display)'}", markup=False)
        state = {True: "yes", False: "no (inactive)", None: "unknown (referenced, not defined, by a loaded source)"}
        out.print(f"  active:    {state[c.active]}", markup=False)
        if c.kind:
            out.print(f"  term type: {c.kind}", markup=False)
        out.print(f"  source:    {c.source or '-'}", markup=False)
        out.print(f"  parents:   {len(c.parents)}", markup=False)
        for p, d in c.parents:
            out.print(f"    {c.system}:{p}  {d or ''}", markup=False)
        out.print(f"  ancestors: {len(c.ancestors)}", markup=False)
        for a, d in c.ancestors:
            out.print(f"    {c.system}:{a}  {d or ''}", markup=False)


@app.command()
def expand(
    member: str = typer.Argument(..., help="<<SNOMED:363346000, <SNOMED:x, SNOMED:x, RXNORM:3002, ATC:L01AA, "
                                           "VALUESET:url."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
    limit: int = typer.Option(0, "--limit", help="Show at most this many codes (0: all)."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of text."),
) -> None:
    """What a value-set member stands for: its codes, with their displays, and a count."""
    with _open(store) as opened:
        try:
            codes = opened.expand(parse_member(member))
        except ScreeningError as exc:
            _fail(exc, 1 if exc.code in ("unknown-concept",) else 2)
        names = opened.displays(codes)
        rows = [(r, *names.get(r, (None, None))) for r in sorted(codes, key=lambda r: (split_ref(r)[0], r))]
    if as_json:
        print(json.dumps({"member": member, "count": len(rows),
                          "codes": [{"code": r, "display": d, **({"term_type": k} if k else {})} for r, d, k in rows]},
                         indent=2, ensure_ascii=False))
        return
    out.print(f"{member}: {len(rows):,} code{'s' if len(rows) != 1 else ''}", markup=False)
    shown = rows if limit <= 0 else rows[:limit]
    for ref, display, kind in shown:
        out.print(f"  {ref}  " + (f"[{kind}] " if kind else "") + (display or ""), markup=False)
    if len(shown) < len(rows):
        out.print(f"  ... {len(rows) - len(shown):,} more (--limit 0 shows all)", markup=False)
