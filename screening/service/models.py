"""The service's request and response shapes (pydantic), so that the OpenAPI schema says what is sent.

CDS Hooks 2.0 shapes (discovery, hook request, cards) keep the specification's camelCase field
names. The screening result is the JSON contract of ``screening check --format json``
(:meth:`screening.report.PatientResult.to_dict`); its models allow extra fields, so fields the
contract gains later (``patient_label``, ``missing_items``) pass through and are still described.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

SUMMARY_MAX = 139
"""CDS Hooks: a card's summary is a "one-sentence, <140-character" message."""


# ---------------------------------------------------------------- discovery
class ServiceDefinition(BaseModel):
    """One CDS Service as listed by the discovery endpoint."""

    hook: str
    title: Optional[str] = None
    description: str
    id: str
    prefetch: Optional[dict[str, str]] = None
    usageRequirements: Optional[str] = None


class Discovery(BaseModel):
    """The answer of ``GET /cds-services``."""

    services: list[ServiceDefinition]


# ---------------------------------------------------------------- hook request
class HookContext(BaseModel):
    """The ``patient-view`` context: the patient whose chart was opened (and who opened it)."""

    model_config = ConfigDict(extra="allow")
    patientId: str = Field(min_length=1, max_length=256)
    userId: Optional[str] = None
    encounterId: Optional[str] = None


class HookRequest(BaseModel):
    """A CDS Hooks call. ``prefetch`` holds the FHIR data the discovery's templates asked for."""

    model_config = ConfigDict(extra="allow")
    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1)
    context: HookContext
    prefetch: Optional[dict[str, Any]] = None
    fhirServer: Optional[str] = None
    fhirAuthorization: Optional[dict[str, Any]] = None


# ---------------------------------------------------------------- cards
class Source(BaseModel):
    label: str
    url: Optional[str] = None


class Link(BaseModel):
    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"


class Card(BaseModel):
    """A CDS Hooks card: ``summary`` under 140 characters, ``detail`` in GitHub-flavoured Markdown."""

    uuid: str
    summary: str = Field(max_length=SUMMARY_MAX)
    detail: Optional[str] = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    links: list[Link] = Field(default_factory=list)


class CardsResponse(BaseModel):
    """The answer to a hook call (no cards: nothing to say for this patient)."""

    cards: list[Card]


# ---------------------------------------------------------------- errors
class Problem(BaseModel):
    """One problem of a request, at a JSON path (``$.prefetch.patient.birthDate``) or a text position."""

    path: str
    message: str
    code: str


class ErrorResponse(BaseModel):
    """Every error answer: a stable code, one message, and the problems with their paths."""

    error: str
    message: str
    problems: list[Problem] = Field(default_factory=list)


# ---------------------------------------------------------------- the JSON contract
class EvidenceOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    rule: str
    value: Optional[bool]
    detail: str


class CriterionOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    kind: Literal["inclusion", "exclusion"]
    text: str
    verdict: Literal["pass", "fail", "unknown", "review"]
    value: Optional[bool]
    explanation: str
    missing: list[str]
    applicable: Optional[bool]
    draft: bool
    rule: str
    review_reasons: list[str]
    evidence: list[EvidenceOut]
    not_considered: Optional[list[str]] = None
    missing_items: Optional[list[dict[str, Any]]] = None


class ScreeningResult(BaseModel):
    """One patient screened against one trial: the objects of ``screening check --format json``."""

    model_config = ConfigDict(extra="allow")
    trial: str
    patient: str
    as_of: str
    decision: Literal["eligible", "ineligible", "undetermined"]
    decision_reason: Optional[str]
    criteria: list[CriterionOut]
    source: str
    warnings: list[str]
    terminology: Optional[list[dict[str, Any]]]
    patient_label: Optional[dict[str, Any]] = None


class TrialInfo(BaseModel):
    id: str
    title: Optional[str]
    criteria: int
    source: str


class Health(BaseModel):
    """``GET /health``: the service is up, with the trials it loaded at start."""

    status: Literal["ok"]
    trials: list[TrialInfo]
    as_of: Optional[str]
