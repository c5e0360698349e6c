"""Person, grid and arrears reads over HTTP: who may read what, masking, 404s and malformed input."""
from __future__ import annotations

import pytest

from tests.unit.http_support import (
    AUDITOR,
    CLERK,
    CLERK_HANYIN,
    GRID_A,
    GRID_B,
    GRID_WORKER_A,
    GRID_WORKER_B,
    TAX,
    TOWNSHIP,
    TOWNSHIP_WORKER,
    client,  # noqa: F401  (fixture)
    enroll,
    number,
    pay,
    person_path,
    system,  # noqa: F401  (fixture)
)


def masked(n: str) -> str:
    return n[:4] + "*" * 10 + n[-4:]


@pytest.fixture()
def grids(client):
    """Grid A: one paid (covered in 2025), one enrolled and assessed but unpaid. Grid B: one unpaid."""
    paid, unpaid, other = number(31), number(32), number(33)
    for n in (paid, unpaid):
        enroll(client, n)
    enroll(client, other, grid_code=GRID_B)
    pay(client, paid, "V31")
    for n in (unpaid, other):
        r = client.post(person_path(n, "/assessments/resident-year"), json={"year": 2025}, headers=CLERK)
        assert r.status_code == 201
    return {"paid": paid, "unpaid": unpaid, "other": other}


# ------------------------------------------------------------------ one person
def test_clerk_of_the_region_and_auditor_see_the_full_id(client, grids):
    n = grids["paid"]
    for headers in (CLERK, AUDITOR):
        r = client.get(person_path(n), headers=headers)
        assert r.status_code == 200
        assert r.json()["id_number"] == n
    body = r.json()
    assert body["enrollments"][0]["region_code"] == "610902"
    assert body["paid_fen"] == {"2025": 40000}
    assert body["payments"][0]["voucher_no"] == "V31"


def test_grid_worker_of_the_persons_grid_sees_a_masked_id_others_are_refused(client, grids):
    n = grids["paid"]
    r = client.get(person_path(n), headers=GRID_WORKER_A)
    assert r.status_code == 200 and r.json()["id_number"] == masked(n)
    assert client.get(person_path(n), headers=TOWNSHIP_WORKER).json()["id_number"] == masked(n)
    r = client.get(person_path(n), headers=GRID_WORKER_B)
    assert (r.status_code, r.json()["code"]) == (403, "SCOPE_FORBIDDEN")
    r = client.get(person_path(n), headers=CLERK_HANYIN)
    assert (r.status_code, r.json()["code"]) == (403, "SCOPE_FORBIDDEN")
    assert "610902" in r.json()["message"]
    r = client.get(person_path(n), headers=TAX)
    assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN")
    assert client.get(person_path(n)).status_code == 401


def test_unknown_person_is_404_and_a_bad_number_422(client):
    r = client.get(person_path(number(39)), headers=AUDITOR)
    assert (r.status_code, r.json()["code"]) == (404, "PERSON_NOT_FOUND")
    r = client.get(person_path("110105194912310021"), headers=AUDITOR)
    assert (r.status_code, r.json()["code"]) == (422, "ID_CHECKSUM")


def test_entitlement_says_covered_from_when_and_why(client, grids):
    r = client.get(person_path(grids["paid"], "/entitlement"), params={"year": 2025, "on": "2025-03-01"},
                   headers=CLERK)
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["covered"] is True and body["reason"].startswith("covered")
    assert body["resident_year"]["coverage_start"] == "2025-01-01"
    assert body["resident_year"]["net_paid_fen"] == 40000
    assert body["policy_version"]
    r = client.get(person_path(grids["unpaid"], "/entitlement"), params={"year": 2025, "on": "2025-03-01"},
                   headers=GRID_WORKER_A)
    assert r.json()["covered"] is False and "not paid" in r.json()["reason"]
    assert r.json()["id_number"] == masked(grids["unpaid"])


def test_entitlement_for_a_year_without_policy_or_a_malformed_day(client, grids):
    path = person_path(grids["paid"], "/entitlement")
    r = client.get(path, params={"year": 2031}, headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (404, "POLICY_YEAR_UNKNOWN")
    r = client.get(path, params={"on": "2025-02-30"}, headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "DATE_INVALID")
    assert r.json()["message"].startswith("查询日期（on）")
    assert r.json()["details"]["errors"][0]["message_en"].startswith("on:")
    r = client.get(path, params={"year": "twenty"}, headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "PARAMETER_INVALID")


def test_history_is_for_auditors_with_the_hash_chain(client, grids):
    n = grids["paid"]
    r = client.get(person_path(n, "/history"), headers=AUDITOR)
    assert r.status_code == 200
    body = r.json()
    assert body["chain_intact"] is True
    assert [e["type"] for e in body["events"]][:2] == ["Registered", "Enrolled"]
    assert body["events"][0]["fields"]["id_number"] == n
    assert body["events"][1]["provenance"]["user"] == "clerk.hanbin"
    assert all(e["chain_ok"] for e in body["events"])
    for headers in (CLERK, GRID_WORKER_A, TAX):
        r = client.get(person_path(n, "/history"), headers=headers)
        assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN")


# ------------------------------------------------------------------ grids
def test_grid_worker_sees_the_gaps_of_their_grid_with_masked_ids(client, grids):
    r = client.get(f"/grids/{GRID_A}/gaps", params={"year": 2025, "as_of": "2025-03-01"}, headers=GRID_WORKER_A)
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["count"] == 1
    gap = body["gaps"][0]
    assert gap["reason"] == "ENROLLED_UNPAID" and gap["label"] == "已登记未缴费"
    assert gap["id_number"] == masked(grids["unpaid"]) and gap["name"] == "王芳"
    assert gap["outstanding_fen"] == 40000


def test_grid_worker_of_grid_a_is_refused_grid_b(client, grids):
    for path in (f"/grids/{GRID_B}/gaps", f"/grids/{GRID_B}/coverage"):
        r = client.get(path, params={"year": 2025}, headers=GRID_WORKER_A)
        assert r.status_code == 403
        assert r.json()["code"] == "SCOPE_FORBIDDEN"
        assert r.json()["message"].startswith(f"你没有网格 {GRID_B} 的权限")  # Chinese by default
        r = client.get(path, params={"year": 2025}, headers={**GRID_WORKER_A, "Accept-Language": "en"})
        assert r.json()["message"].startswith(f"no access to grid {GRID_B}") and "权限" not in r.json()["message"]
    r = client.get(f"/grids/{TOWNSHIP}/gaps", params={"year": 2025}, headers=GRID_WORKER_A)
    assert r.status_code == 403  # a grid does not give the whole township


def test_a_township_scope_covers_its_grids_and_the_township(client, grids):
    for code in (GRID_A, GRID_B):
        r = client.get(f"/grids/{code}/gaps", params={"year": 2025, "as_of": "2025-03-01"}, headers=TOWNSHIP_WORKER)
        assert r.status_code == 200 and r.json()["count"] == 1
    r = client.get(f"/grids/{TOWNSHIP}/gaps", params={"year": 2025, "as_of": "2025-03-01"}, headers=TOWNSHIP_WORKER)
    assert r.json()["count"] == 2


def test_clerks_and_auditors_read_grids_with_full_ids_other_regions_and_tax_refused(client, grids):
    params = {"year": 2025, "as_of": "2025-03-01"}
    for headers in (CLERK, AUDITOR):
        r = client.get(f"/grids/{GRID_A}/gaps", params=params, headers=headers)
        assert r.json()["gaps"][0]["id_number"] == grids["unpaid"]
    r = client.get(f"/grids/{GRID_A}/gaps", params=params, headers=CLERK_HANYIN)
    assert (r.status_code, r.json()["code"]) == (403, "SCOPE_FORBIDDEN")
    r = client.get(f"/grids/{GRID_A}/gaps", params=params, headers=TAX)
    assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN")
    assert client.get(f"/grids/{GRID_A}/gaps", params=params).status_code == 401


def test_gap_list_filters_by_reason(client, grids):
    params = {"year": 2025, "as_of": "2025-03-01"}
    r = client.get(f"/grids/{GRID_A}/gaps", params={**params, "reason": "LAPSED"}, headers=GRID_WORKER_A)
    assert r.status_code == 200 and r.json()["count"] == 0
    r = client.get(f"/grids/{GRID_A}/gaps", params={**params, "reason": "SLEEPING"}, headers=GRID_WORKER_A)
    assert (r.status_code, r.json()["code"]) == (422, "REASON_UNKNOWN")


def test_unknown_or_malformed_grid_bad_year_or_date(client, grids):
    unknown = "610902100099"
    r = client.get(f"/grids/{unknown}/gaps", params={"year": 2025}, headers=AUDITOR)
    assert (r.status_code, r.json()["code"]) == (404, "GRID_UNKNOWN")
    r = client.get("/grids/610902199/coverage", params={"year": 2025}, headers=AUDITOR)
    assert (r.status_code, r.json()["code"]) == (404, "TOWNSHIP_UNKNOWN")
    r = client.get("/grids/6109021000/gaps", headers=AUDITOR)
    assert (r.status_code, r.json()["code"]) == (422, "GRID_FORMAT")
    r = client.get(f"/grids/{GRID_A}/gaps", params={"year": 2031}, headers=GRID_WORKER_A)
    assert (r.status_code, r.json()["code"]) == (404, "POLICY_YEAR_UNKNOWN")
    r = client.get(f"/grids/{GRID_A}/coverage", params={"as_of": "01/03/2025"}, headers=GRID_WORKER_A)
    assert (r.status_code, r.json()["code"]) == (422, "DATE_INVALID")
    assert r.json()["message"].startswith("截至日期（as_of）")
    assert r.json()["details"]["errors"][0]["message_en"].startswith("as_of:")


def test_coverage_of_a_grid_and_a_township(client, grids):
    r = client.get(f"/grids/{GRID_A}/coverage", params={"year": 2025, "as_of": "2025-03-01"}, headers=GRID_WORKER_A)
    assert r.status_code == 200
    body = r.json()
    assert (body["residents"], body["covered"], body["coverage_bp"]) == (2, 1, 5000)
    assert body["gaps_by_reason"]["ENROLLED_UNPAID"] == 1
    r = client.get(f"/grids/{TOWNSHIP}/coverage", params={"year": 2025, "as_of": "2025-03-01"}, headers=CLERK)
    assert r.json()["residents"] == 3


def test_reads_follow_new_writes(client, grids):
    params = {"year": 2025, "as_of": "2025-03-01"}
    assert client.get(f"/grids/{GRID_A}/gaps", params=params, headers=GRID_WORKER_A).json()["count"] == 1
    pay(client, grids["unpaid"], "V32")
    assert client.get(f"/grids/{GRID_A}/gaps", params=params, headers=GRID_WORKER_A).json()["count"] == 0


# ------------------------------------------------------------------ arrears
def test_arrears_of_a_grid_for_its_grid_worker(client, grids):
    r = client.get("/arrears", params={"grid": GRID_A, "as_of": "2025-03-01"}, headers=GRID_WORKER_A)
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 1 and body["outstanding_fen"] == 40000
    assert body["arrears"][0]["id_number"] == masked(grids["unpaid"])
    r = client.get("/arrears", params={"grid": GRID_B, "as_of": "2025-03-01"}, headers=GRID_WORKER_A)
    assert (r.status_code, r.json()["code"]) == (403, "SCOPE_FORBIDDEN")
    r = client.get("/arrears", params={"region": "610902"}, headers=GRID_WORKER_A)
    assert (r.status_code, r.json()["code"]) == (403, "SCOPE_FORBIDDEN")


def test_arrears_of_a_region_for_its_clerks_and_auditors(client, grids):
    r = client.get("/arrears", params={"region": "610902", "as_of": "2025-03-01"}, headers=CLERK)
    assert r.status_code == 200 and r.json()["count"] == 2
    assert {a["id_number"] for a in r.json()["arrears"]} == {grids["unpaid"], grids["other"]}
    assert client.get("/arrears", params={"as_of": "2025-03-01"}, headers=CLERK).json()["count"] == 2
    r = client.get("/arrears", params={"region": "610902"}, headers=CLERK_HANYIN)
    assert (r.status_code, r.json()["code"]) == (403, "SCOPE_FORBIDDEN")
    assert client.get("/arrears", params={"as_of": "2025-03-01"}, headers=CLERK_HANYIN).json()["count"] == 0
    assert client.get("/arrears", params={"as_of": "2025-03-01"}, headers=AUDITOR).json()["count"] == 2
    r = client.get("/arrears", headers=TAX)
    assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN")
    r = client.get("/arrears", params={"region": "6109"}, headers=AUDITOR)
    assert (r.status_code, r.json()["code"]) == (422, "REGION_FORMAT")
    r = client.get("/arrears", params={"as_of": "2025-3-1"}, headers=AUDITOR)
    assert (r.status_code, r.json()["code"]) == (422, "DATE_INVALID")
