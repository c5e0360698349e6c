"""Every error code the OpenAPI document declares answers in Chinese by default and in English under
``Accept-Language: en``, through the app's own error handlers; the code never changes with the language."""
from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from entrypoints import catalogue
from entrypoints.catalogue import _CJK, chinese_first
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from entrypoints.http.errors import install_error_handlers
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.errors import DomainError
from tests.unit.error_codes import openapi_codes
from tests.unit.http_support import CLERK, TOKENS, client, policies, system  # noqa: F401


def _document() -> dict:
    s = bootstrap(Settings(persistence="memory", id_key=b"k"), policies=policies())
    try:
        return create_app(s, TokenStore.from_tokens(TOKENS)).openapi()
    finally:
        s.close()


DOCUMENTED = sorted(openapi_codes(_document()))


def test_the_openapi_document_declares_error_codes():
    assert {"PERSON_NOT_FOUND", "GRID_FORMAT", "POLICY_YEAR_UNKNOWN", "BODY_TOO_LARGE"} <= set(DOCUMENTED)


@pytest.fixture(scope="module")
def raiser():
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise/{code}")
    def raise_it(code: str, said: str = "the case's own English sentence") -> None:
        raise DomainError(code, said, case=1)

    return TestClient(app)


@pytest.mark.parametrize("code", DOCUMENTED)
def test_each_documented_code_answers_in_chinese_and_in_english_on_request(raiser, code):
    zh = raiser.get(f"/raise/{code}").json()
    assert zh["code"] == code and zh["details"] == {"case": 1}
    assert chinese_first(zh["message"]) and zh["message"].startswith(catalogue.raw("errors", code, "zh"))
    en = raiser.get(f"/raise/{code}", headers={"Accept-Language": "en-GB,en;q=0.9"}).json()
    assert en["code"] == code and en["message"] == "the case's own English sentence"
    said = "中文说明（the English one）"
    assert raiser.get(f"/raise/{code}", params={"said": said}).json()["message"] == "中文说明"
    assert raiser.get(f"/raise/{code}", params={"said": "只有中文"},
                      headers={"Accept-Language": "en"}).json()["message"] == catalogue.raw("errors", code, "en")


def test_a_real_refusal_follows_accept_language(client):  # noqa: F811
    r = client.get("/persons/RESIDENT_ID/123", headers=CLERK)
    assert r.status_code in (404, 422) and chinese_first(r.json()["message"])
    en = client.get("/persons/RESIDENT_ID/123", headers={**CLERK, "Accept-Language": "en"})
    assert en.json()["code"] == r.json()["code"] and not _CJK.search(en.json()["message"])


def test_401_follows_accept_language(client):  # noqa: F811
    r = client.get("/persons/RESIDENT_ID/123")
    assert (r.status_code, r.json()["code"]) == (401, "TOKEN_MISSING")
    assert r.json()["message"].startswith("缺少访问令牌") and "send" not in r.json()["message"]
    en = client.get("/persons/RESIDENT_ID/123", headers={"Accept-Language": "en"}).json()
    assert en["message"] == "send your token as 'Authorization: Bearer <token>'"
