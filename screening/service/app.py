"""The FastAPI application: CDS Hooks discovery and ``patient-view`` hook, ``POST /screen``, reports.

Every rule set of the trials folder is compiled once, when the app is created; a rule set that
does not compile stops start-up with its positioned message (``screening serve`` exits 2).
Requests are read by the project's own JSON reader (size and nesting limits, duplicate keys,
NaN), so a bad request is a 400 naming the JSON path or the line and column, never a traceback.
"""
from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError

from ..compile import Trial, compile_text, read_rule_file
from ..dates import DateProblem, parse_date
from ..errors import DataError, DataProblem, UsageError
from ..report import make_label
from ..patient.load import MAX_DOCUMENT_BYTES, json_path, parse_json, patient_from_document
from .cards import card_for
from .models import (
    CardsResponse, Discovery, ErrorResponse, Health, HookRequest, ScreeningResult, ServiceDefinition,
)
from .prefetch import ALWAYS, PrefetchMissing, assemble, record_lists, templates
from .reports import ReportCache

log = logging.getLogger("screening.service")

SERVICE_ID = "screening-patient-view"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""The largest request body accepted by default (16 MiB); at most the patient-document limit (64 MiB)."""


@dataclass
class Settings:
    """Everything the service is configured with (``screening serve`` options)."""

    trials_dir: Path
    as_of: Optional[date] = None  # None: today, at each request
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    include_ineligible: bool = False
    public_url: Optional[str] = None  # the service's address as the EHR's users reach it (for card links)
    report_cache_size: int = 1000
    report_ttl_seconds: float = 3600.0
    source_label: str = "Clinical trial screening"
    cors_origins: list[str] = field(default_factory=list)


@dataclass
class LoadedTrial:
    trial: Trial
    path: Path


def load_trial_folder(folder: Path, terminology=None) -> list[LoadedTrial]:
    """Compile every ``*.crit`` in ``folder`` (sorted by name); errors as :func:`screening.compile_text`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"--trials: {folder} is not a folder")
    paths = sorted(folder.glob("*.crit"))
    if not paths:
        raise UsageError(f"--trials: no rule sets (*.crit) in {folder}")
    loaded, seen = [], {}
    for path in paths:
        trial = compile_text(read_rule_file(path).decode("utf-8"), str(path), terminology)
        if trial.id in seen:
            raise UsageError(f"{path}: trial {trial.id!r} is also defined by {seen[trial.id]}; each trial may be "
                             "given once")
        seen[trial.id] = path
        loaded.append(LoadedTrial(trial, path))
    return loaded


# ---------------------------------------------------------------- errors as answers
class RequestProblem(Exception):
    """An answer other than 200: status, stable code, message, problems."""

    def __init__(self, status: int, error: str, message: str, problems: list[DataProblem] | None = None):
        self.status, self.error, self.message, self.problems = status, error, message, problems or []
        super().__init__(message)

    def response(self) -> JSONResponse:
        return error_response(self.status, self.error, self.message, self.problems)


def error_response(status: int, error: str, message: str, problems=()) -> JSONResponse:
    body = {"error": error, "message": message,
            "problems": [{"path": p.path, "message": p.message, "code": p.code} for p in problems]}
    return JSONResponse(body, status_code=status)


def _data_problem(exc: DataError, error: str = "invalid-data") -> RequestProblem:
    first = exc.problems[0] if exc.problems else DataProblem("$", "invalid")
    more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
    return RequestProblem(400, error, f"{first.path}: {first.message}{more}", exc.problems)


def _validation_problem(exc: ValidationError, what: str) -> RequestProblem:
    problems = []
    for err in exc.errors(include_url=False):
        message = "required field is missing" if err["type"] == "missing" else err["msg"]
        problems.append(DataProblem(json_path(tuple(err["loc"])), message, err["type"]))
    first = problems[0]
    return RequestProblem(400, "invalid-request", f"not a valid {what}: {first.path}: {first.message}", problems)


# ---------------------------------------------------------------- request body: size before parsing
class BodyLimit:
    """ASGI middleware: a body larger than ``limit`` bytes is refused with 413 before it is parsed
    (from Content-Length when sent, else while it streams in), so no request can make the
    service hold more than ``limit`` bytes of it."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size < 0:
                return await _send(send, error_response(400, "bad-request", "Content-Length is not a number"))
            if size > self.limit:
                return await _send(send, self._too_large(size))
        chunks, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.limit:
                return await _send(send, self._too_large(None))
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    def _too_large(self, size: int | None) -> JSONResponse:
        if size is None:  # sent without a length: refused as soon as it passed the limit
            message = f"the request body is larger than the limit of {self.limit:,} bytes"
        else:
            message = f"the request body is {size:,} bytes; the limit is {self.limit:,} bytes"
        return error_response(413, "too-large", message + " (screening serve --max-body-bytes)")


async def _send(send, response: JSONResponse) -> None:
    await response({"type": "http"}, _no_receive, send)


async def _no_receive():  # pragma: no cover - a JSONResponse never reads
    return {"type": "http.disconnect"}


async def read_json(request: Request) -> Any:
    """The request body as JSON, read by the project's reader: 415, or 400 with line and column."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise RequestProblem(415, "unsupported-media-type",
                             f"send JSON with Content-Type: application/json (got {kind or 'none'!r})")
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestProblem(400, "invalid-json", f"the body is not UTF-8 text (byte {exc.start})") from None
    try:
        return parse_json(text, "request")
    except DataError as exc:
        raise _data_problem(exc, "invalid-json") from None


# ---------------------------------------------------------------- the app
ERRORS = {status: {"model": ErrorResponse, "description": text} for status, text in {
    400: "The request is not valid JSON, not of the expected shape, or holds a patient that cannot be read; "
         "`problems` name each JSON path (or line and column).",
    413: "The body is larger than the configured limit (refused before it is parsed).",
    415: "The body is not sent as application/json.",
}.items()}


def create_app(trials_dir: str | Path, as_of: date | None = None, terminology=None, *,
               settings: Settings | None = None, trials: list[LoadedTrial] | None = None) -> FastAPI:
    """The service for every rule set in ``trials_dir``, compiled now (a SourceError stops it here).

    ``as_of``: the screening date of every request (default: today, at each request; ``POST
    /screen`` may give its own). ``terminology``: an open terminology store (or None) to expand
    value sets with. ``settings`` overrides the defaults of :class:`Settings`; ``trials``: already
    compiled rule sets (the CLI compiles before it starts the server).
    """
    settings = settings or Settings(Path(trials_dir))
    settings.trials_dir = Path(trials_dir)
    if as_of is not None:
        settings.as_of = as_of
    if not 0 < settings.max_body_bytes <= MAX_DOCUMENT_BYTES:
        raise UsageError(f"--max-body-bytes must be between 1 and {MAX_DOCUMENT_BYTES:,} (the patient-document limit)")
    loaded = trials if trials is not None else load_trial_folder(settings.trials_dir, terminology)
    by_id = {item.trial.id: item.trial for item in loaded}
    cache = ReportCache(settings.report_cache_size, settings.report_ttl_seconds)
    used = record_lists(by_id.values())
    searches = ALWAYS + tuple(key for key in ("allergies", "immunizations") if key in used)

    app = FastAPI(
        title="screening",
        version=_version(),
        description="Clinical-trial eligibility screening as a CDS Hooks service (patient-view) and a "
                    "JSON API. See docs/service.md.",
        docs_url=None, redoc_url=None,  # their pages load scripts from a CDN: the schema is /openapi.json
    )
    app.state.settings, app.state.trials, app.state.reports = settings, by_id, cache
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "Authorization"])
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    @app.exception_handler(RequestProblem)
    async def _problem(_request: Request, exc: RequestProblem):
        return exc.response()

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):  # never a traceback in an answer
        log.exception("unexpected error")
        return error_response(500, "internal-error", "the service failed on this request; the error is in its log")

    def day(text: str | None = None) -> date:
        if text is not None:
            try:
                return parse_date(text)
            except DateProblem as exc:
                raise RequestProblem(400, "invalid-as-of", f"as_of: {exc}",
                                     [DataProblem("as_of", str(exc), "date")]) from None
        return settings.as_of or date.today()

    def base_url(request: Request) -> str:
        return (settings.public_url or str(request.base_url)).rstrip("/")

    # ------------------------------------------------------------ CDS Hooks
    discovery = {"services": [ServiceDefinition(
        hook="patient-view", id=SERVICE_ID, title="Clinical trial screening",
        description="Screens the patient whose chart is opened against the trials loaded ("
                    + ", ".join(sorted(by_id)) + "): a card per trial the patient may be eligible for, "
                    "with what is still missing.",
        prefetch=templates(searches),
        usageRequirements="The prefetch is required: the service does not call the EHR's FHIR server.",
    ).model_dump(exclude_none=True)]}

    @app.get("/cds-services", response_model=Discovery, tags=["CDS Hooks"], summary="CDS Hooks discovery")
    async def cds_services():
        return JSONResponse(discovery)

    @app.post(f"/cds-services/{SERVICE_ID}", tags=["CDS Hooks"], summary="patient-view hook: cards",
              response_model=CardsResponse,
              responses={**ERRORS, 412: {"model": ErrorResponse, "description":
                                         "The Patient was not prefetched (the service has no FHIR server access)."}},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"$ref": "#/components/schemas/HookRequest"}}}}})
    async def patient_view(request: Request, ineligible: bool = Query(
            False, description="Also answer with a card for each trial the patient is not eligible for.")):
        document = await read_json(request)
        try:
            call = HookRequest.model_validate(document)
        except ValidationError as exc:
            raise _validation_problem(exc, "CDS Hooks request") from None
        if call.hook != "patient-view":
            raise RequestProblem(400, "unsupported-hook", f"this service answers the patient-view hook, not "
                                 f"{call.hook[:80]!r}", [DataProblem("$.hook", "expected 'patient-view'", "hook")])
        screening_day = day()
        include = ineligible or settings.include_ineligible
        base = base_url(request)

        def work():
            try:
                assembled = assemble(call.prefetch, call.context.patientId, searches)
            except PrefetchMissing as exc:
                raise RequestProblem(412, "prefetch-required", exc.message,
                                     [DataProblem(exc.path, exc.message, "prefetch")]) from None
            except DataError as exc:
                raise _data_problem(exc) from None
            try:
                record = patient_from_document(assembled.bundle, "prefetch")
            except DataError as exc:
                raise _data_problem(assembled.relocate(exc, "prefetch")) from None
            cards = []
            for trial in by_id.values():
                result = trial.screen(record, screening_day)
                label = result.patient_label  # the chart's name and MRN: no file to name here
                result.label = make_label(label["id"], None, label.get("mrn"), label.get("name"))
                data = result.to_dict()
                if data["decision"] == "ineligible" and not include:
                    continue
                key = cache.put(result, trial)
                url = (f"{base}/patients/{quote(result.patient, safe='')}/trials/{quote(trial.id, safe='')}"
                       f"?key={key}") if key else None
                card = card_for(data, title=trial.title, source_label=settings.source_label, report_url=url,
                                warnings=assembled.warnings, include_ineligible=include)
                if card is not None:
                    cards.append(card)
            return cards

        return JSONResponse({"cards": await anyio.to_thread.run_sync(work)})

    # ------------------------------------------------------------ JSON API
    @app.post("/screen", tags=["screening"], summary="Screen one patient (patient JSON or FHIR R4)",
              response_model=list[ScreeningResult],
              responses={**ERRORS, 404: {"model": ErrorResponse, "description": "No trial with that id is loaded."}},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "description": "Patient JSON version 1, or a FHIR R4 Bundle or Patient "
                  "resource (detected by resourceType), as `screening check` reads a file."}}}}})
    async def screen(request: Request,
                     trial: Optional[str] = Query(None, description="Only this trial (default: every loaded trial)."),
                     as_of: Optional[str] = Query(None, description="Screening date YYYY-MM-DD (default: the "
                                                  "service's --as-of, else today).")):
        chosen = list(by_id.values())
        if trial is not None:
            if trial not in by_id:
                raise RequestProblem(404, "unknown-trial", f"no trial {trial[:80]!r} is loaded (loaded: "
                                     f"{', '.join(sorted(by_id))})", [DataProblem("trial", "not loaded", "trial")])
            chosen = [by_id[trial]]
        screening_day = day(as_of)
        document = await read_json(request)

        def work():
            try:
                record = patient_from_document(document, "request")
            except DataError as exc:
                raise _data_problem(exc) from None
            return [t.screen(record, screening_day).to_dict() for t in chosen]

        return JSONResponse(await anyio.to_thread.run_sync(work))

    @app.get("/patients/{patient_id}/trials/{trial_id:path}", tags=["screening"],
             summary="The explanation behind a card (kept for a short while after the hook call)",
             response_model=ScreeningResult,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "The explanation as `screening explain` prints it (format=text), "
                                             "or the JSON contract (format=json)."},
                        404: {"model": ErrorResponse, "description": "No such report (unknown or expired key)."}})
    async def report(patient_id: str, trial_id: str,
                     key: str = Query(..., max_length=64, description="The key of the card's link."),
                     format: str = Query("text", pattern="^(text|json)$",
                                         description="text (the explanation) or json (the JSON contract)."),
                     all: bool = Query(False, description="Explain passing criteria too (format=text).")):
        found = cache.get(key, patient_id, trial_id)
        if found is None:
            raise RequestProblem(404, "no-report", "no such report: the link is unknown or expired (reports are kept "
                                 f"{settings.report_ttl_seconds:g} s; open the chart again for a new one)")
        if format == "json":
            return JSONResponse(found.result.to_dict())
        return PlainTextResponse(explanation_text(found.trial_object, found.result, show_all=all))

    @app.get("/health", response_model=Health, tags=["service"], summary="Liveness, and the trials loaded")
    async def health():
        return JSONResponse({"status": "ok", "as_of": settings.as_of.isoformat() if settings.as_of else None,
                             "trials": [{"id": t.trial.id, "title": t.trial.title, "criteria": len(t.trial.criteria),
                                         "source": t.path.name} for t in loaded]})

    def openapi():
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            body = HookRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components["HookRequest"] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app


ENVIRONMENT = "SCREENING_SERVICE_SETTINGS"
"""The variable through which ``screening serve --workers N`` hands its settings to each worker."""


def settings_to_environment(settings: Settings, terminology: str | None) -> str:
    """The settings (and the --terminology option) as the JSON that :func:`app_from_environment` reads."""
    data = {key: value for key, value in vars(settings).items()}
    data["trials_dir"] = str(settings.trials_dir)
    data["as_of"] = settings.as_of.isoformat() if settings.as_of else None
    data["terminology"] = terminology
    return json.dumps(data)


def app_from_environment() -> FastAPI:
    """The app of one uvicorn worker process (``screening serve --workers N``): settings from
    :data:`ENVIRONMENT`; each worker compiles the rule sets itself."""
    from ..cli import open_terminology

    data = json.loads(os.environ[ENVIRONMENT])
    terminology = data.pop("terminology")
    data["trials_dir"] = Path(data["trials_dir"])
    data["as_of"] = date.fromisoformat(data["as_of"]) if data["as_of"] else None
    settings = Settings(**data)
    return create_app(settings.trials_dir, terminology=open_terminology(terminology), settings=settings)


def explanation_text(trial, result, show_all: bool = False) -> str:
    """``screening explain`` as plain text (no colour), with the terminology line first."""
    from rich.console import Console

    from ..expand import describe_sources
    from ..render import print_explanation

    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None, highlight=False, emoji=False, soft_wrap=True)
    console.print(f"terminology: {describe_sources(trial.terminology)}", markup=False, highlight=False)
    print_explanation(console, trial, result, show_all=show_all)
    return buffer.getvalue()


def _version() -> str:
    from .. import __version__

    return __version__


__all__ = ["create_app", "Settings", "load_trial_folder", "explanation_text", "SERVICE_ID"]
