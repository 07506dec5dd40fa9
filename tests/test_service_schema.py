"""The service's OpenAPI schema, tested by schemathesis against the ASGI app in-process.

Every operation gets requests generated from the schema (valid and invalid ones); no answer may
be a 5xx, and every answer must have a status code, content type and body the schema declares.
Examples are bounded so the whole file runs in well under a minute.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance, negative_data_rejection, not_a_server_error, response_schema_conformance,
    status_code_conformance,
)

from screening.service import create_app  # noqa: E402

DEMO = Path(__file__).resolve().parent / "data" / "service" / "trials"
APP = create_app(DEMO, as_of=date(2026, 11, 25))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case) -> None:
    case.call_and_validate(checks=CHECKS)


def test_the_schema_describes_the_requests_and_answers() -> None:
    document = APP.openapi()
    hook = document["paths"]["/cds-services/screening-patient-view"]["post"]
    assert hook["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/HookRequest"}
    assert {"200", "400", "412", "413", "415"} <= set(hook["responses"])
    components = document["components"]["schemas"]
    assert components["HookRequest"]["required"] == ["hook", "hookInstance", "context"]
    assert components["Card"]["properties"]["summary"]["maxLength"] == 139
    assert components["Card"]["properties"]["indicator"]["enum"] == ["info", "warning", "critical"]
    screen = document["paths"]["/screen"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert screen == {"type": "array", "items": {"$ref": "#/components/schemas/ScreeningResult"},
                      "title": screen.get("title")} or screen["items"] == {"$ref": "#/components/schemas/ScreeningResult"}
