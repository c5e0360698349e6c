"""Schemathesis against the served OpenAPI document: no 5xx for any generated request, and
every response conforms to its declared schema.

Runs the app in-process (ASGI transport) on the in-memory ledger, with a person enrolled
and paid so person routes reach the domain. Marked ``integration`` (it is the slowest API
test), but needs no external service. Deterministic: hypothesis is derandomized and
keeps no example database.
"""
from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from tests.unit.http_support import AUDITOR, CLERK, TAX, TOKENS, enrollment, number, policies, tax_payment

pytestmark = pytest.mark.integration
CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")

_system = bootstrap(Settings(persistence="memory", id_key=b"schemathesis"), policies=policies())
app = create_app(_system, TokenStore.from_tokens(TOKENS))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def seeded_person():
    from fastapi.testclient import TestClient

    c = TestClient(app)
    assert c.post("/enrollments", json=enrollment(number(3)), headers=CLERK).status_code == 201
    assert c.post("/tax/payments", json=tax_payment(number(3)), headers=TAX).status_code == 201
    yield
    _system.close()


def headers_for(case) -> dict[str, str]:
    if case.path.startswith("/tax"):
        return dict(TAX)
    return dict(AUDITOR if case.method.upper() == "GET" else CLERK)


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx_and_conforms_to_its_schema(case):
    response = case.call(headers={**(case.headers or {}), **headers_for(case)})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    content_type = ",".join(response.headers.get("content-type", []))
    if response.status_code >= 400 and content_type.startswith("application/json"):
        body = response.json()
        assert isinstance(body, dict) and CODE.match(body.get("code", "")), body
