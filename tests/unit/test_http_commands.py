"""Clerk commands over HTTP: outcomes, resends, region scoping, strict bodies, domain errors."""
from __future__ import annotations

import pytest

from tests.unit.http_support import (
    approve,
    CLERK,
    CLERK_HANYIN,
    HANBIN,
    HANYIN,
    GRID_HANYIN,
    TAX,
    TAX_OFFICE,
    auth,
    client,  # noqa: F401  (fixture)
    enroll,
    enrollment,
    event_count,
    number,
    pay,
    person_path,
    system,  # noqa: F401  (fixture)
    tax_payment,
)


def credit(amount_fen, **over):
    body = {"amount_fen": amount_fen, "reason": "CORRECTION", "reference": "窗口更正-1", "effective_date": "2025-01-05"}
    body.update(over)
    return body


# ------------------------------------------------------------------ outcomes and provenance
def test_enrollment_answers_201_with_the_outcome_and_records_who_asked(client, system):
    n = number(1)
    r = client.post("/enrollments", json=enrollment(n), headers=auth("tok-clerk", "req-enroll-1"))
    assert r.status_code == 201
    body = r.json()
    assert body["applied"] is True and body["message"] == "已参保登记" and len(body["event_ids"]) == 2  # Chinese by default
    assert body["person_id"] == str(system.ledger.person_id("RESIDENT_ID", n))
    assert r.headers["X-Request-ID"] == "req-enroll-1"
    enrolled = list(system.ledger.events.get(system.ledger.person_id("RESIDENT_ID", n)))[-1]
    assert enrolled.provenance["source"] == "api"
    assert enrolled.provenance["user"] == "clerk.hanbin"
    assert enrolled.provenance["request_id"] == "req-enroll-1"
    assert enrolled.channel == "COUNTER"


def test_a_request_id_is_made_when_none_is_sent_and_a_bad_one_is_replaced(client):
    r = client.post("/enrollments", json=enrollment(number(2)), headers=CLERK)
    assert len(r.headers["X-Request-ID"]) == 32
    r = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["X-Request-ID"] != "bad id with spaces"


def test_a_resend_with_the_same_request_id_says_so_and_changes_nothing(client, system):
    headers = auth("tok-clerk", "req-2")
    first = client.post("/enrollments", json=enrollment(number(3)), headers=headers)
    before = event_count(system)
    again = client.post("/enrollments", json=enrollment(number(3)), headers=headers)
    assert again.status_code == 200
    assert again.json()["applied"] is False
    assert again.json()["message"].startswith("请求 req-2 已于北京时间 ") and "未重复办理" in again.json()["message"]
    english = client.post("/enrollments", json=enrollment(number(3)), headers={**headers, "Accept-Language": "en"})
    assert "was already carried out at" in english.json()["message"] and "Beijing time" in english.json()["message"]
    assert again.json()["event_ids"] == first.json()["event_ids"]
    assert event_count(system) == before


def test_a_request_id_reused_for_another_body_is_a_conflict(client):
    client.post("/enrollments", json=enrollment(number(4)), headers=auth("tok-clerk", "req-3"))
    r = client.post("/enrollments", json=enrollment(number(4), grid_code="610902100002"),
                    headers=auth("tok-clerk", "req-3"))
    assert r.status_code == 409 and r.json()["code"] == "REQUEST_ID_REUSED"


def test_a_credit_resent_with_its_request_id_is_credited_once(client, system):
    n = number(5)
    enroll(client, n)
    for _ in range(2):
        client.post(person_path(n, "/account/credits"), json=credit(1500), headers=auth("tok-clerk", "credit-1"))
    assert system.ledger.find_person("RESIDENT_ID", n).account_balance_fen == 1500


def test_enrolling_again_without_a_request_id_is_409_already_enrolled(client):
    enroll(client, number(6))
    r = client.post("/enrollments", json=enrollment(number(6)), headers=CLERK)
    assert r.status_code == 409
    assert r.json()["code"] == "ALREADY_ENROLLED"
    assert set(r.json()) == {"code", "message", "details"}


# ------------------------------------------------------------------ region scoping
def test_a_clerk_cannot_enroll_in_another_region(client, system):
    r = client.post("/enrollments", json=enrollment(number(7), region_code=HANYIN, grid_code=GRID_HANYIN),
                    headers=CLERK)
    assert r.status_code == 403
    assert r.json()["code"] == "SCOPE_FORBIDDEN"
    assert "610921" in r.json()["message"] and "权限" in r.json()["message"]
    assert event_count(system) == 0


def test_a_clerk_cannot_act_on_a_person_enrolled_in_another_region(client):
    n = number(8)
    enroll(client, n)
    for path, body in [
        ("/assessments/resident-year", {"year": 2025}),
        ("/account/credits", credit(100)),
        ("/transfers/out", {"transfer_id": "T1", "counterpart_region": "330102", "effective_date": "2025-01-01"}),
        ("/enrollments/end", {"reason": "MOVED_OUT", "effective_date": "2025-01-01"}),
    ]:
        r = client.post(person_path(n, path), json=body, headers=CLERK_HANYIN)
        assert r.status_code == 403, path
        assert r.json()["code"] == "SCOPE_FORBIDDEN"


@pytest.mark.parametrize("headers", [auth("tok-grid-a"), auth("tok-auditor"), TAX])
def test_only_clerks_issue_commands(client, headers):
    r = client.post("/enrollments", json=enrollment(number(9)), headers=headers)
    assert r.status_code == 403
    assert r.json()["code"] == "ROLE_FORBIDDEN"
    assert "clerk" in r.json()["message"]


def test_commands_without_a_token_are_401(client):
    r = client.post("/enrollments", json=enrollment(number(10)))
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_MISSING"
    assert r.headers["WWW-Authenticate"] == "Bearer"


# ------------------------------------------------------------------ strict bodies
@pytest.mark.parametrize(("amount", "code"), [
    (100.0, "AMOUNT_NOT_INTEGER_FEN"), (99.5, "AMOUNT_NOT_INTEGER_FEN"), ("1500", "AMOUNT_NOT_INTEGER_FEN"),
    (True, "AMOUNT_NOT_INTEGER_FEN"), (None, "AMOUNT_NOT_INTEGER_FEN"),
    (-100, "AMOUNT_NOT_POSITIVE"), (0, "AMOUNT_NOT_POSITIVE"),
])
def test_money_is_a_positive_integer_number_of_fen(client, system, amount, code):
    n = number(11)
    enroll(client, n)
    before = event_count(system)
    r = client.post(person_path(n, "/account/credits"), json=credit(amount), headers=CLERK)
    assert r.status_code == 422
    assert r.json()["code"] == code
    assert r.json()["message"].startswith("金额（amount_fen）")  # Chinese by default
    assert r.json()["details"]["errors"][0]["message_en"].startswith("amount_fen:")
    assert r.json()["details"]["errors"][0]["field"] == "amount_fen"
    assert event_count(system) == before


def test_every_fen_field_is_strict(client):
    n = number(12)
    enroll(client, n, scheme="EMPLOYEE", flexible=True)
    r = client.post(person_path(n, "/assessments/employee-month"),
                    json={"month": "2025-03", "declared_base_fen": 500000.0}, headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "AMOUNT_NOT_INTEGER_FEN")
    transfer = {**enrollment(number(13)), "transfer_id": "T9", "counterpart_region": "330102",
                "contribution_months": 12}
    r = client.post("/transfers/in", json={**transfer, "account_balance_fen": -1}, headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "AMOUNT_NOT_POSITIVE")
    r = client.post("/transfers/in", json={**transfer, "account_balance_fen": 0}, headers=CLERK)
    assert r.status_code == 201  # a carried balance may be zero
    r = client.post("/tax/payments", json=tax_payment(number(14), amount_fen="40000"), headers=TAX)
    assert (r.status_code, r.json()["code"]) == (422, "AMOUNT_NOT_INTEGER_FEN")


@pytest.mark.parametrize("value", ["2024/09/10", "2024-02-30", "10-09-2024", 20240910, "2024-09-10T00:00:00", ""])
def test_malformed_dates_are_422_date_invalid_naming_the_field(client, system, value):
    r = client.post("/enrollments", json=enrollment(number(15), effective_date=value), headers=CLERK)
    assert r.status_code == 422
    assert r.json()["code"] == "DATE_INVALID"
    assert r.json()["message"].startswith("生效日期（effective_date）") and "YYYY-MM-DD" in r.json()["message"]
    assert r.json()["details"]["errors"][0]["message_en"].startswith("effective_date:")
    assert event_count(system) == 0


def test_an_instant_needs_a_time_zone(client):
    r = client.post("/tax/payments", json=tax_payment(number(16), paid_at="2024-10-08T09:30:00"), headers=TAX)
    assert (r.status_code, r.json()["code"]) == (422, "INSTANT_INVALID")


def test_unknown_fields_missing_fields_and_non_json_are_body_invalid(client):
    r = client.post("/enrollments", json={**enrollment(number(17)), "grid": "610902100001"}, headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "BODY_INVALID")
    assert r.json()["message"].startswith("网格（grid）不是本请求的字段")
    assert "not a field" in r.json()["details"]["errors"][0]["message_en"]
    body = enrollment(number(17))
    del body["scheme"]
    r = client.post("/enrollments", json=body, headers=CLERK)
    assert (r.status_code, r.json()["message"]) == (422, "缺少必填项：险种（scheme）")
    r = client.post("/enrollments", content=b"{not json", headers={**CLERK, "Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (422, "BODY_INVALID")
    assert "不是合法的 JSON" in r.json()["message"]
    assert "not valid JSON" in r.json()["details"]["errors"][0]["message_en"]
    r = client.post("/enrollments", json=enrollment(number(17), region_code="61090"), headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "BODY_INVALID")
    assert r.json()["details"]["errors"][0]["field"] == "region_code"


def test_a_body_too_deeply_nested_to_parse_is_refused_with_a_code_not_an_undeclared_400(client, system):
    before = event_count(system)
    # under the body limit: the entrance gate measures the nesting before the framework parses it
    r = client.post("/enrollments", content=b"[" * 60_000, headers={**CLERK, "Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (422, "BODY_TOO_COMPLEX")
    # over it: refused by its size, unread
    r = client.post("/enrollments", content=b"[" * 100_000, headers={**CLERK, "Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (413, "BODY_TOO_LARGE")
    assert event_count(system) == before


# ------------------------------------------------------------------ domain errors
def test_domain_errors_keep_their_code_and_status(client):
    r = client.post("/enrollments", json=enrollment("110105194912310021"), headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "ID_CHECKSUM")
    assert "110105194912310021" not in r.json()["message"]
    r = client.post("/enrollments", json=enrollment(number(18), scheme="EMPLOYEE"), headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "EMPLOYER_REQUIRED")


def test_commands_on_an_unknown_person_are_404(client):
    r = client.post(person_path(number(19), "/assessments/resident-year"), json={"year": 2025}, headers=CLERK)
    assert r.status_code == 404
    assert r.json()["code"] == "PERSON_NOT_FOUND"


# ------------------------------------------------------------------ each command
def test_assess_a_resident_year_then_again_is_200_nothing_changed(client):
    n = number(20)
    enroll(client, n)
    r = client.post(person_path(n, "/assessments/resident-year"), json={"year": 2025}, headers=CLERK)
    assert r.status_code == 201 and r.json()["message"] == "已核定 2025 缴费"
    r = client.post(person_path(n, "/assessments/resident-year"), json={"year": 2026},
                    headers={**CLERK, "Accept-Language": "en"})
    assert r.status_code == 201 and r.json()["message"] == "assessed 2026"
    r = client.post(person_path(n, "/assessments/resident-year"), json={"year": 2025}, headers=CLERK)
    assert r.status_code == 200 and r.json()["applied"] is False
    r = client.post(person_path(n, "/assessments/resident-year"), json={"year": 2031}, headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (404, "POLICY_YEAR_UNKNOWN")


def test_assess_an_employee_month(client, system):
    n = number(21)
    enroll(client, n, scheme="EMPLOYEE", employer_id="91610902MA0001", effective_date="2025-01-01")
    r = client.post(person_path(n, "/assessments/employee-month"),
                    json={"month": "2025-03", "declared_base_fen": 500000}, headers=CLERK)
    assert r.status_code == 201
    assert system.ledger.find_person("RESIDENT_ID", n).assessments["2025-03"].due_fen > 0


def test_counter_refund_and_reversal_point_at_the_original_voucher(client, system):
    n = number(22)
    enroll(client, n)
    pay(client, n, "V100")
    refund = {"kind": "REFUND", "voucher_no": "R100", "tax_office": TAX_OFFICE, "original_voucher_no": "V100",
              "amount_fen": 10000, "reason": "多缴退费", "corrected_at": "2024-11-01T10:00:00+08:00"}
    r = client.post(person_path(n, "/payment-corrections"), json=refund, headers=auth("tok-clerk", "refund-1"))
    assert r.status_code == 201, r.json()
    again = client.post(person_path(n, "/payment-corrections"), json=refund, headers=auth("tok-clerk", "refund-1"))
    assert again.status_code == 200 and again.json()["applied"] is False
    person = system.ledger.find_person("RESIDENT_ID", n)
    assert person.paid_fen_for("2025") == 30000
    too_much = {**refund, "voucher_no": "R101", "amount_fen": 30001}
    r = client.post(person_path(n, "/payment-corrections"), json=too_much, headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "REFUND_EXCEEDS_PAID")
    unknown = {**refund, "voucher_no": "R102", "original_voucher_no": "NOPE"}
    r = client.post(person_path(n, "/payment-corrections"), json=unknown, headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "REFUND_UNKNOWN_VOUCHER")
    reversal = {**refund, "kind": "REVERSAL", "voucher_no": "C100", "amount_fen": 30000, "reason": "冲正"}
    r = client.post(person_path(n, "/payment-corrections"), json=reversal, headers=CLERK)
    assert r.status_code == 201
    person = system.ledger.find_person("RESIDENT_ID", n)
    assert person.paid_fen_for("2025") == 0
    events = list(system.ledger.events.get(person.id))
    assert type(events[-1]).__name__ == "ContributionReversed" and events[-1].original_voucher_no == "V100"
    r = client.post(person_path(n, "/payment-corrections"), json={**refund, "voucher_no": "R103"}, headers=CLERK_HANYIN)
    assert r.status_code == 403


def test_transfer_out_then_in_elsewhere(client, system):
    n = number(23)
    enroll(client, n)
    r = client.post(person_path(n, "/transfers/out"),
                    json={"transfer_id": "ZY-1", "counterpart_region": HANYIN, "effective_date": "2025-06-30"},
                    headers=CLERK)
    assert r.status_code == 201
    assert system.ledger.find_person("RESIDENT_ID", n).active_enrollment is None
    transfer_in = {**enrollment(n, region_code=HANYIN, grid_code=GRID_HANYIN, effective_date="2025-07-01"),
                   "transfer_id": "ZY-1", "counterpart_region": HANBIN, "account_balance_fen": 0,
                   "contribution_months": 0}
    assert client.post("/transfers/in", json=transfer_in, headers=CLERK).status_code == 403
    r = client.post("/transfers/in", json=transfer_in, headers=CLERK_HANYIN)
    assert r.status_code == 201, r.json()
    assert system.ledger.find_person("RESIDENT_ID", n).active_enrollment.region_code == HANYIN


def test_end_an_enrollment(client):
    n = number(24)
    enroll(client, n)
    body = {"reason": "MOVED_OUT", "effective_date": "2025-03-01"}
    proposed = client.post(person_path(n, "/enrollments/end"), json=body, headers=CLERK)
    assert proposed.status_code == 202 and proposed.json()["event_ids"] == []  # maker-checker: pending first
    approve(client, proposed)
    r = client.post(person_path(n, "/enrollments/end"), json=body, headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "ENROLLMENT_NOT_ACTIVE")
    r = client.post(person_path(n, "/enrollments/end"), json={**body, "reason": "BORED"}, headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "BODY_INVALID")


def test_credit_and_debit_the_account(client, system):
    n = number(25)
    enroll(client, n)
    assert client.post(person_path(n, "/account/credits"), json=credit(5000), headers=CLERK).status_code == 201
    debit = credit(2000, reason="MEDICAL_EXPENSE")
    assert client.post(person_path(n, "/account/debits"), json=debit, headers=CLERK).status_code == 201
    assert system.ledger.find_person("RESIDENT_ID", n).account_balance_fen == 3000
    r = client.post(person_path(n, "/account/debits"), json=credit(9000, reason="MEDICAL_EXPENSE"), headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "ACCOUNT_INSUFFICIENT")


# ------------------------------------------------------------------ the tax integration
def test_tax_integration_posts_payments_exactly_once_per_voucher(client, system):
    n = number(26)
    first = client.post("/tax/payments", json=tax_payment(n), headers=TAX)
    assert first.status_code == 201
    person = system.ledger.find_person("RESIDENT_ID", n)
    assert person.active_enrollment.channel == "TAX_PAYMENT"
    again = client.post("/tax/payments", json=tax_payment(n), headers=TAX)
    assert again.status_code == 200 and again.json()["applied"] is False
    other = client.post("/tax/payments", json=tax_payment(n, amount_fen=38000), headers=TAX)
    assert (other.status_code, other.json()["code"]) == (409, "VOUCHER_CONFLICT")


def test_tax_integration_only_for_its_regions_and_only_it_posts(client):
    r = client.post("/tax/payments", json=tax_payment(number(27), region_code="610922"), headers=TAX)
    assert (r.status_code, r.json()["code"]) == (403, "SCOPE_FORBIDDEN")
    r = client.post("/tax/payments", json=tax_payment(number(27)), headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN")
