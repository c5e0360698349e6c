"""The OpenAPI document loads, lists every route with a summary, and the CLI knows serve / import / token."""
from __future__ import annotations

from entrypoints.cli import build_parser
from tests.unit.http_support import client, system  # noqa: F401  (fixtures)

ROUTES = {
    ("post", "/enrollments"), ("post", "/transfers/in"), ("post", "/imports"), ("post", "/tax/payments"),
    ("post", "/persons/{id_type}/{id_number}/assessments/resident-year"),
    ("post", "/persons/{id_type}/{id_number}/assessments/employee-month"),
    ("post", "/persons/{id_type}/{id_number}/payment-corrections"),
    ("post", "/persons/{id_type}/{id_number}/transfers/out"),
    ("post", "/persons/{id_type}/{id_number}/transfers/cancel"),
    ("post", "/persons/{id_type}/{id_number}/transfers/request"),
    ("post", "/persons/{id_type}/{id_number}/enrollments/end"),
    ("post", "/persons/{id_type}/{id_number}/account/credits"),
    ("post", "/persons/{id_type}/{id_number}/account/debits"),
    ("post", "/statuses"), ("post", "/persons/{id_type}/{id_number}/statuses/revoke"),
    ("get", "/persons/{id_type}/{id_number}"), ("get", "/persons/{id_type}/{id_number}/entitlement"),
    ("get", "/persons/{id_type}/{id_number}/history"),
    ("get", "/grids/{code}/gaps"), ("get", "/grids/{code}/coverage"), ("get", "/arrears"), ("get", "/health"),
    ("get", "/grids/{code}/gaps.csv"), ("get", "/grids/{code}/gaps.xlsx"), ("get", "/me"),
    ("get", "/entitlements/{person_id}"), ("get", "/transfers"),
    ("get", "/views/quarantine"), ("get", "/regions/{code}/areas"),
    ("get", "/fees"), ("get", "/fees.csv"), ("get", "/fees.xlsx"), ("get", "/arrears.csv"), ("get", "/arrears.xlsx"),
    ("post", "/late-fees/payments"), ("post", "/late-fees/waivers"),
    ("post", "/persons/{id_type}/{id_number}/merges"), ("get", "/changes"), ("get", "/changes/{change_id}"),
    ("post", "/changes/{change_id}/approve"), ("post", "/changes/{change_id}/reject"),
    ("get", "/imports/template.xlsx"), ("get", "/imports/template.csv"),
    ("get", "/regions/{code}/dashboard"), ("get", "/regions/{code}/dashboard.svg"),
    ("get", "/regions/{code}/dashboard.png"),
}


def test_the_openapi_document_lists_every_route_with_a_summary(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["info"]["title"].startswith("Medical insurance ledger API")
    operations = {(method, path): op for path, item in spec["paths"].items() for method, op in item.items()}
    assert set(operations) == ROUTES
    for key, op in operations.items():
        assert op.get("summary"), key
        if key != ("get", "/health"):
            assert op.get("description"), key
            assert op.get("security") == [{"HTTPBearer": []}], key
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_money_fields_are_integers_and_errors_documented(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["AccountEntryIn"]["properties"]["amount_fen"]["type"] == "integer"
    assert schemas["AccountEntryIn"]["additionalProperties"] is False
    credit = spec["paths"]["/persons/{id_type}/{id_number}/account/credits"]["post"]
    assert {"201", "200", "401", "403", "404", "409", "422"} <= set(credit["responses"])
    upload = spec["paths"]["/imports"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload and "text/csv" in upload


def test_the_interactive_docs_are_served(client):
    assert client.get("/docs").status_code == 200


def test_unknown_routes_answer_with_a_code(client):
    r = client.get("/nowhere")
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = client.delete("/enrollments")
    assert (r.status_code, r.json()["code"]) == (405, "METHOD_NOT_ALLOWED")


def test_the_cli_has_serve_import_and_token():
    parser = build_parser()
    args = parser.parse_args(["serve", "--host", "0.0.0.0", "--port", "9000"])
    assert (args.host, args.port, args.func.__name__) == ("0.0.0.0", 9000, "cmd_serve")
    args = parser.parse_args(["import", "a.csv"])
    assert (args.file, args.func.__name__) == ("a.csv", "cmd_import")
    args = parser.parse_args(["token", "add", "--user", "u", "--role", "clerk", "--scope", "610902"])
    assert args.func.__name__ == "cmd_token_add" and args.scope == ["610902"]
