"""The generator's daily tax statements (对账单): deterministic, consistent headers, the injected discrepancies known.

The whole loop (statements onto tax.statements.v1, reconciled against the ledger, found
= expected) runs in the demo's ``reconciliation`` check; here the statements themselves
and, on a small county, the reconciliation driven embedded.
"""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from events.codec import decode, encode
from events.inbound import TAX_STATEMENT_HEADER, TAX_STATEMENT_LINE
from entrypoints.simulation import generate_county
from entrypoints.simulation.statements import FROM_REFUSED, INJECTED, build_statements


@pytest.fixture(scope="module")
def county():
    return generate_county(11, 400)


def _fingerprint(c):
    return [(s.header_avro(), [x.as_avro() for x in s.lines]) for s in c.statements]


def test_statements_are_deterministic_by_seed(county):
    again = generate_county(11, 400)
    assert _fingerprint(again) == _fingerprint(county)
    assert again.truth.expected_discrepancies == county.truth.expected_discrepancies
    assert again.statement_injections == county.statement_injections
    other = generate_county(12, 400)
    assert _fingerprint(other) != _fingerprint(county)


def test_line_counts_and_totals_match_the_headers(county):
    assert county.statements
    ids = [s.statement_id for s in county.statements]
    assert len(ids) == len(set(ids))
    for s in county.statements:
        assert s.line_count == len(s.lines) >= 1
        assert s.total_amount_fen == sum(x.signed_fen for x in s.lines)
        assert [x.line_no for x in s.lines] == list(range(1, s.line_count + 1))
        for x in s.lines:
            assert x.statement_id == s.statement_id
            assert (x.paid_at + timedelta(hours=8)).date() == s.business_date  # the Beijing payment date


def test_statements_encode_with_the_contract(county):
    s = county.statements[0]
    name, header = decode(encode(TAX_STATEMENT_HEADER, s.header_avro()))
    assert name == TAX_STATEMENT_HEADER and header["line_count"] == s.line_count
    name, line = decode(encode(TAX_STATEMENT_LINE, s.lines[0].as_avro()))
    assert name == TAX_STATEMENT_LINE and line["voucher_no"] == s.lines[0].voucher_no


def test_the_statements_list_what_was_collected_once(county):
    """Every voucher the ledger takes or that was collected anyway, once; resends and conflict rows not again."""
    listed = Counter((s.tax_office, x.voucher_no) for s in county.statements for x in s.lines)
    taxes = [a for a in county.actions if a.kind == "tax"]
    dropped = {(i.tax_office, i.voucher_no) for i in county.statement_injections if i.klass == "MISSING_IN_STATEMENT"}
    doubled = {(i.tax_office, i.voucher_no) for i in county.statement_injections if i.klass == "DUPLICATE_VOUCHER"}
    collected = {tuple(a.key.split("|")) for a in taxes
                 if a.expected_error is None or FROM_REFUSED[a.expected_error] is not None}
    assert set(listed) == collected - dropped
    assert {k for k, n in listed.items() if n > 1} == doubled
    # a payment refused for its mistyped check digit is listed under the valid number
    bad = [a.record for a in taxes if a.expected_error == "ID_CHECKSUM"]
    assert bad
    numbers = {(s.tax_office, x.voucher_no): x.id_number for s in county.statements for x in s.lines}
    for r in bad:
        assert numbers[(r.tax_office, r.voucher_no)][:17] == r.id_number[:17] != ""
        assert numbers[(r.tax_office, r.voucher_no)] != r.id_number


def test_the_injected_discrepancies_are_the_ones_recorded(county):
    injected = Counter(i.klass for i in county.statement_injections)
    assert injected == Counter(INJECTED)
    errors = Counter(e.code for e in county.truth.expected_errors if e.kind == "tax")
    natural = Counter()
    for code, klass in FROM_REFUSED.items():
        if klass is not None:
            natural[klass] += errors.get(code, 0)
    assert county.truth.expected_discrepancies == dict(sorted((injected + natural).items()))
    # each change is on its own statement, and visible there
    by_id = {s.statement_id: s for s in county.statements}
    assert len({i.statement_id for i in county.statement_injections}) == len(county.statement_injections)
    for i in county.statement_injections:
        vouchers = [x.voucher_no for x in by_id[i.statement_id].lines]
        assert vouchers.count(i.voucher_no) == {"MISSING_IN_STATEMENT": 0, "DUPLICATE_VOUCHER": 2}.get(i.klass, 1)


def test_build_statements_is_a_pure_function_of_the_timeline(county):
    statements, injected, expected = build_statements(county.actions, county.seed)
    assert [s.header_avro() for s in statements] == [s.header_avro() for s in county.statements]
    assert injected == county.statement_injections and expected == county.truth.expected_discrepancies


def test_reconciling_the_statements_finds_exactly_the_expected_discrepancies():
    """A small county replayed on an in-memory ledger, its statements reconciled embedded."""
    from entrypoints.wiring import bootstrap
    from infra.settings import Settings
    from reconciliation.intake import decode_value
    from reconciliation.service import Received
    from reconciliation.factory import ledger_side_runner, reconciler

    c = generate_county(5, 150)
    system = bootstrap(Settings(persistence="memory", id_key=b"statement-tests"))
    try:
        c.apply_to(system.ledger)
        recon = reconciler(system)
        ledger_side_runner(system, recon).run_once()
        items, offset = [], 0
        today = c.as_of
        for s in c.statements:
            values = [encode(TAX_STATEMENT_HEADER, s.header_avro())]
            values += [encode(TAX_STATEMENT_LINE, x.as_avro()) for x in s.lines]
            for v in values:
                items.append(Received(decode_value(v, b"statement-tests", today), f"tax.statements.v1/0/{offset}", v))
                offset += 1
        recon.ingest(items)
        recon.reconcile_pending()
        found = Counter(str(r.klass) for r in recon.store.find_discrepancies())
        assert dict(sorted(found.items())) == c.truth.expected_discrepancies
        assert recon.store.errors() == []
        done = recon.store.statements([s.statement_id for s in c.statements])
        assert {s["state"] for s in done.values()} == {"RECONCILED"} and len(done) == len(c.statements)
        assert all(s["result"]["tie_out"]["ok"] for s in done.values())
    finally:
        system.close()
