"""Hostile input against the field's parts (issue 21): a registry record with a bad phone or address, and a
report text trying to break out of the audit report's print CSS. Each attempt is tallied (tests/hostile.py)."""
from __future__ import annotations

import pytest

from entrypoints.audit.report import page_css
from ledger.domain.errors import DomainError
from tests.unit.http_support import number, system  # noqa: F401  (fixture)
from tests.unit.test_contact_fields import REGISTRY, residence


@pytest.mark.parametrize("contact,code", [({"phone": "call me"}, "PHONE_FORMAT"), ({"phone": "12"}, "PHONE_FORMAT"),
                                          ({"address": "x" * 201}, "ADDRESS_INVALID"),
                                          ({"address": "a\x00b"}, "ADDRESS_INVALID")])
def test_a_bad_phone_or_address_is_refused_with_a_chinese_message_and_nothing_written(system, contact, code, hostile):  # noqa: F811
    n = number(75)
    with pytest.raises(DomainError) as e:
        system.ledger.apply_residence(residence(n, **contact), provenance=REGISTRY)
    assert e.value.code == code and any("\u4e00" <= ch <= "\u9fff" for ch in e.value.message)
    try:
        written = system.ledger.find_person("RESIDENT_ID", n) is not None
    except DomainError as missing:
        written = missing.code != "PERSON_NOT_FOUND"
    assert not written
    hostile.attempt(f"residents feed: bad {next(iter(contact))}", status=None, crashed=False, written=written,
                    leaked=False)



def test_the_running_header_is_a_css_string_nothing_can_escape(hostile):
    css = page_css('报告 "</style><script>x()</script>', '第 {page} / {pages} 页 "</style>')
    assert "</style>" not in css and "<script" not in css
    assert '\\"' in css and '"第 " counter(page) " / " counter(pages) " 页' in css
    hostile.attempt("report header breaks out of the print CSS", status=None, crashed=False, written=False,
                    leaked=False)
