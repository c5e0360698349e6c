"""Hostile and clumsy reads of what the maker-checker page (/web/changes) shows: the change list it fetches
(GET /changes) with a status or region it may not ask for, from a role that may not read it, and the page
itself asked for with tokens in odd places. None answers 5xx, none leaks a full ID number or a name, and the
page never carries data."""
from __future__ import annotations

from tests.unit.http_support import (APPROVER, CLERK, CLERK_HANYIN, GRID_WORKER_A, HANYIN, TAX, auth,  # noqa: F401
                                     client, enroll, number, person_path, system)


def _merge(client) -> tuple[str, str]:
    a, b = number(51), number(52)
    enroll(client, a, name="赵小红")
    enroll(client, b, name="赵小红")
    r = client.post(person_path(a, "/merges"), json={"merged_id_number": b, "merge_kind": "DUPLICATE",
                                                      "reason": "重复登记"}, headers=auth("tok-clerk", "H-1"))
    assert r.status_code == 202, r.json()
    return a, b


def _leaks(text: str, a: str, b: str) -> bool:
    return a in text or b in text or "赵小红" in text


def test_the_change_list_outside_the_viewer_s_reach_says_no_and_leaks_nothing(client, hostile):
    a, b = _merge(client)
    for name, headers, query, expected in (
            ("list another county's changes by region", CLERK_HANYIN, "?region=610902", 403),
            ("list changes as a grid worker", GRID_WORKER_A, "", 403),
            ("list changes as the tax bureau", TAX, "", 403),
            ("list changes with a forged token", {"Authorization": "Bearer forged"}, "", 401),
            ("list changes with a status that does not exist", APPROVER, "?status=DELETED", 422),
            ("list changes with a region that is not a code", APPROVER, "?region=6109%27%20OR%201=1", 422)):
        r = client.get(f"/changes{query}", headers=headers)
        hostile.attempt(name, status=r.status_code, leaked=_leaks(r.text, a, b) or "H-1" in r.text)
        assert r.status_code == expected, (name, r.status_code, r.text)
    # a county's own approver reads the change, persons masked only
    r = client.get("/changes?status=ALL", headers=APPROVER)
    hostile.attempt("list changes in full as the county's approver", status=r.status_code, leaked=_leaks(r.text, a, b))
    assert [c["change_id"] for c in r.json()["changes"]] == ["H-1"]
    assert [p["name_masked"] for p in r.json()["changes"][0]["persons"]] == ["赵**", "赵**"]


def test_the_page_asked_for_with_a_token_in_its_address_carries_no_data(client, hostile):
    a, b = _merge(client)
    for path in ("/web/changes?token=tok-approver", "/web/changes?status=ALL&region=610902",
                 "/web/changes?token=%3Cscript%3Ealert(1)%3C%2Fscript%3E"):
        r = client.get(path)
        leaked = _leaks(r.text, a, b) or "H-1" in r.text or "tok-approver" in r.text or "alert(1)" in r.text
        hostile.attempt(f"GET {path}", status=r.status_code, leaked=leaked)
        assert r.status_code == 200 and "Content-Security-Policy" in r.headers
