"""The `screening` command: check | explain | lint | schema | analytes (and the commands of later stages).

Exit status: 0 when the command did its work (whatever the eligibility decision), 2 for bad input
(a rule file that does not compile, a patient file that is not valid, an unknown option value).
Errors are printed as one clear message with file:line:column or a JSON path, never a traceback.
"""
from __future__ import annotations

import json
import sys
from datetime import date
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .compile import compile_trial
from .dates import DateProblem, parse_date
from .errors import ScreeningError, UsageError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Screen patients against clinical-trial eligibility criteria, criterion by criterion, and say why.",
)
out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def as_of_option(value: Optional[str]) -> date:
    if value is None:
        return date.today()
    try:
        return parse_date(value)
    except DateProblem as exc:
        raise UsageError(f"--as-of: {exc}") from None


AS_OF_HELP = "Screening date (YYYY-MM-DD); defaults to today. Windows and ages are computed at this date."


def _fail(exc: ScreeningError) -> None:
    err.print(exc.render(), markup=False, highlight=False)
    raise typer.Exit(2)


@app.command()
def check(
    trial_file: Path = typer.Argument(..., help="Rule-set file (.crit)."),
    patients: List[Path] = typer.Argument(..., help="Patient JSON or FHIR R4 files."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help=AS_OF_HELP),
    output_format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text (a table) or json."),
) -> None:
    """Screen patients: a verdict for every criterion and the trial decision."""
    from .patient.load import load_patient
    from .render import print_results

    try:
        day = as_of_option(as_of)
        trial = compile_trial(trial_file)
        records = [load_patient(p) for p in patients]
    except ScreeningError as exc:
        _fail(exc)
    results = [trial.screen(r, day) for r in records]
    if output_format is OutputFormat.json:
        payload = [r.to_dict() for r in results]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, ensure_ascii=False))
        return
    print_results(out, trial, results)
    for result in results:
        for warning in result.warnings:
            err.print(f"warning: {result.source}: {warning}", markup=False)


@app.command()
def explain(
    trial_file: Path = typer.Argument(..., help="Rule-set file (.crit)."),
    patient: Path = typer.Argument(..., help="Patient JSON or FHIR R4 file."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help=AS_OF_HELP),
    show_all: bool = typer.Option(False, "--all", help="Explain passing criteria too."),
) -> None:
    """Explain every criterion that failed, is unknown or needs review: evidence, limits, margins, missing data."""
    from .patient.load import load_patient
    from .render import print_explanation

    try:
        day = as_of_option(as_of)
        trial = compile_trial(trial_file)
        record = load_patient(patient)
    except ScreeningError as exc:
        _fail(exc)
    print_explanation(out, trial, trial.screen(record, day), show_all=show_all)


@app.command()
def lint(trial_files: List[Path] = typer.Argument(..., help="Rule-set files to compile.")) -> None:
    """Compile rule sets without screening and report every problem at once."""
    failed = False
    for path in trial_files:
        try:
            trial = compile_trial(path)
        except ScreeningError as exc:
            failed = True
            err.print(exc.render(), markup=False)
            continue
        drafts = sum(1 for c in trial.criteria if c.draft)
        note = f", {drafts} draft" if drafts else ""
        out.print(f"ok: {path}: trial {trial.id}, {len(trial.criteria)} criteria{note}", markup=False)
    if failed:
        raise typer.Exit(2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of patient JSON version 1."""
    from .patient.model import Patient

    print(json.dumps(Patient.model_json_schema(), indent=2))


@app.command()
def analytes() -> None:
    """List the lab and vital-sign names rules may use, with LOINC codes and units."""
    from rich.table import Table

    from .analytes import catalogue

    table = Table("name", "aliases", "unit", "molar mass g/mol", "LOINC")
    for a in catalogue().analytes:
        table.add_row(a.name, ", ".join(a.aliases), a.unit_text or "(text)",
                      f"{a.molar_mass:g}" if a.molar_mass else "", ", ".join(a.loinc))
    out.print(table)


def main() -> None:
    """Entry point of the `screening` console script."""
    try:
        app()
    except ScreeningError as exc:  # a late error outside a command's own handling
        err.print(exc.render(), markup=False)
        sys.exit(2)
