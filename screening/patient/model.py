"""Patient JSON version 1: the pydantic models that validate a patient document.

Everything but ``id`` is optional. A list that is absent (``"conditions"`` missing) means
"not provided" and makes every question about it unknown; an empty list means "none recorded".
Conditions, medications, procedures, allergies and immunizations may carry extra fields
(``route``, ``response``, ``result`` ...), which rules can test with ``with FIELD = "..."``.
A record without a readable code carries ``unreadable`` instead of ``code``; ``verification``
other than confirmed and an observation's ``comparator`` are described in docs/fhir.md.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr,
                      model_validator)

from ..dates import DateProblem, parse_partial

CODE_SYSTEMS = ("LOINC", "SNOMED", "ICD10", "RXNORM", "ATC", "CPT", "CVX", "LOCAL")
MAX_POSITIVE_INT = 2_147_483_647
"""The largest count of administrations per period (FHIR's positiveInt); a larger one is refused (FHIR: left out)."""


def _check_date(value: str) -> str:
    try:
        parse_partial(value)
    except DateProblem as exc:
        raise ValueError(str(exc)) from None
    return value


def _check_code(value: str) -> str:
    system, sep, code = value.partition(":")
    if not sep or not code.strip():
        raise ValueError(f"{value!r} is not a code: write SYSTEM:CODE, e.g. LOINC:1742-6")
    if system not in CODE_SYSTEMS:
        raise ValueError(f"unknown code system {system!r} in {value!r}; use one of {', '.join(CODE_SYSTEMS)}")
    return value


PartialDate = Annotated[StrictStr, AfterValidator(_check_date)]
Code = Annotated[StrictStr, AfterValidator(_check_code)]
Number = Union[StrictInt, StrictFloat]


class ReferenceRange(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    low: Number | None = None
    high: Number | None = None
    unit: StrictStr | None = None
    text: StrictStr | None = None


class Observation(BaseModel):
    """A lab result or vital sign: a number with a unit, or a text/coded value."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    code: Code
    codes: list[Code] | None = None
    display: StrictStr | None = None
    value: Number | StrictBool | StrictStr | None = None
    value_code: Code | None = Field(
        None, description="a coded answer (FHIR valueCodeableConcept), e.g. LOINC:LA9623-5 (ECOG 1); a score "
                          "is read from it when the catalogue lists the code, and is unknown when it does not")
    unit: StrictStr | None = None
    reference_range: ReferenceRange | None = None
    date: PartialDate | None = None
    comparator: Literal["<", "<=", ">", ">="] | None = Field(
        None, description="the result is an interval, not a value: `>` with value 1.5 means 'more than 1.5' "
                          "(FHIR valueQuantity.comparator)")


class _Record(BaseModel):
    """A record of a list (condition, medication, ...). ``code`` is required unless the record is
    ``unreadable``: present in the source but without a code the engine can read (coded only as
    text, in ICD-9 or ICD-10-GM, a medication reference that does not resolve). Such a record may
    match any code test of its kind, so those tests are unknown unless another record decides them."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    code: Code | None = None
    codes: list[Code] | None = None
    display: StrictStr | None = None
    status: StrictStr | None = None
    verification: StrictStr | None = Field(
        None, description="verification status; anything but 'confirmed' (provisional, differential, "
                          "unconfirmed) never counts as a confirmed record")
    unreadable: StrictStr | None = Field(
        None, description="why the record has no usable code, e.g. 'coded only as text'")

    @model_validator(mode="after")
    def _code_or_unreadable(self):
        if self.code is None and self.unreadable is None:
            raise ValueError("a record needs a code (or, when it has none that can be read, "
                             "an 'unreadable' reason such as \"coded only as text\")")
        return self


class Condition(_Record):
    onset: PartialDate | None = None
    end: PartialDate | None = None
    caused_by: list[StrictStr] | StrictStr | None = Field(
        None, description="for an adverse event: the codes of what it is attributed to (the suspected medication "
                          "or procedure, e.g. RXNORM:1597876 or ATC:L01FF02); a text where no code is known. "
                          "Absent: the attribution is not recorded")


class DoseQuantity(BaseModel):
    """An amount with its unit: ``{"value": 5, "unit": "mg"}``, or for a daily total ``"mg/d"``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    value: Number
    unit: StrictStr | None = None


class Frequency(BaseModel):
    """How often a dose is given (FHIR Timing.repeat): ``frequency`` times per ``period``
    ``period_unit`` (s, min, h, d, wk, mo, a); ``as_needed`` gives no daily total."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    # FHIR's positiveInt: a count every engine and the store's integer column hold exactly
    frequency: Annotated[StrictInt, Field(ge=1, le=MAX_POSITIVE_INT)] | None = None
    period: Annotated[Number, Field(gt=0)] | None = None
    period_unit: Literal["s", "min", "h", "d", "wk", "mo", "a"] | None = None
    as_needed: StrictBool = False


class Medication(_Record):
    start: PartialDate | None = None
    end: PartialDate | None = None
    route: StrictStr | None = None
    response: StrictStr | None = None
    dose: DoseQuantity | None = Field(None, description="the amount given each time, e.g. {value: 5, unit: mg}")
    frequency: Annotated[Number, Field(gt=0)] | Frequency | None = Field(
        None, description="administrations per day, or a FHIR-style timing {frequency, period, period_unit}")
    daily_dose: DoseQuantity | None = Field(
        None, description="the total per day, e.g. {value: 10, unit: mg/d}; wins over dose x frequency")
    investigational: StrictBool | None = Field(
        None, description="true for an investigational (unapproved, study) agent, false for one known not to be; "
                          "absent means not known either way")


class Procedure(_Record):
    date: PartialDate | None = None
    end: PartialDate | None = None
    result: StrictStr | None = None


class Allergy(_Record):
    """An allergy or intolerance (FHIR AllergyIntolerance); ``status`` is its clinical status."""

    onset: PartialDate | None = None
    end: PartialDate | None = None
    criticality: StrictStr | None = None
    category: StrictStr | None = None


class Immunization(_Record):
    """A vaccine given (FHIR Immunization; CVX or SNOMED codes)."""

    date: PartialDate | None = None


class Patient(BaseModel):
    """A patient document (version 1). ``screening schema`` prints its JSON Schema."""

    model_config = ConfigDict(extra="forbid", title="screening patient, version 1", allow_inf_nan=False)
    version: Literal[1] | None = None
    id: StrictStr = Field(min_length=1)
    mrn: StrictStr | None = Field(None, description="medical record number, shown beside the id in reports")
    name: StrictStr | None = Field(None, description="the patient's name as reports show it, e.g. 'Doe, Jane'")
    birth_date: PartialDate | None = None
    sex: Literal["female", "male", "other", "unknown"] | None = None
    observations: list[Observation] | None = None
    conditions: list[Condition] | None = None
    medications: list[Medication] | None = None
    procedures: list[Procedure] | None = None
    allergies: list[Allergy] | None = None
    immunizations: list[Immunization] | None = None
    deceased: PartialDate | StrictBool | None = Field(
        None, description="date of death, or true when the patient is recorded as deceased without a date")
    facts: dict[str, StrictBool | Number | StrictStr | None] | None = None
