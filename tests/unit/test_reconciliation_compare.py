"""The comparison on hand-made data: every discrepancy class, and totals that tie out to the fen."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from reconciliation.compare import Context, Listing, Totals, reconcile, yuan
from reconciliation.model import DiscrepancyClass as C
from reconciliation.model import Scope, discrepancy_id
from tests.unit.test_reconciliation_support import DAY, HANBIN, HANYIN, OFFICE, header, line, row, voucher

SCOPE = Scope(DAY, OFFICE, HANBIN)


def classes(result):
    return sorted((d.klass.value, d.voucher_no, d.occurrence) for d in result.discrepancies)


def only(result, klass):
    found = [d for d in result.discrepancies if d.klass == klass]
    assert len(found) == 1, found
    return found[0]


def test_a_statement_that_matches_the_ledger_has_no_discrepancies():
    lines = [line(1, 1), line(2, 2, amount=18000, kind="REFUND", original=voucher(9))]
    rows = [row(1), row(2, amount=18000, kind="REFUND", original=voucher(9))]
    result = reconcile(header(count=2, total=22000), lines, rows)
    assert result.discrepancies == []
    assert result.totals.ok and result.header_total_ok
    assert result.totals.statement == {"RESIDENT": Totals(2, 22000)}


def test_missing_in_ledger():
    result = reconcile(header(count=2, total=80000), [line(1, 1), line(2, 2)], [row(1)])
    d = only(result, C.MISSING_IN_LEDGER)
    assert (d.voucher_no, d.line_no, d.delta_count, d.delta_fen) == (voucher(2), 2, 1, 40000)
    assert d.ledger_fen is None and d.statement_fen == 40000


def test_missing_in_statement():
    result = reconcile(header(count=1, total=40000), [line(1, 1)], [row(1), row(3, amount=25000)])
    d = only(result, C.MISSING_IN_STATEMENT)
    assert (d.voucher_no, d.line_no, d.delta_count, d.delta_fen) == (voucher(3), None, -1, -25000)
    assert d.details["ledger"]["event_id"] == "event-3"


def test_amount_mismatch_counts_the_difference_only():
    result = reconcile(header(count=1, total=40000), [line(1, 4)], [row(4, amount=35000)])
    d = only(result, C.AMOUNT_MISMATCH)
    assert (d.delta_count, d.delta_fen, d.statement_fen, d.ledger_fen) == (0, 5000, 40000, 35000)
    assert d.details["differs"] == ["amount_fen"]


def test_a_payment_the_ledger_has_as_a_refund_is_an_amount_mismatch_of_twice_the_amount():
    result = reconcile(header(count=1, total=10000), [line(1, 4, amount=10000)],
                       [row(4, amount=10000, kind="REFUND", original=voucher(1))])
    d = only(result, C.AMOUNT_MISMATCH)
    assert d.delta_fen == 20000 and d.details["differs"] == ["amount_fen,kind"]


def test_duplicate_voucher_on_the_statement():
    lines = [line(1, 5), line(2, 5), line(3, 5, amount=100)]
    result = reconcile(header(count=3, total=80100), lines, [row(5)])
    dups = [d for d in result.discrepancies if d.klass == C.DUPLICATE_VOUCHER]
    assert [(d.line_no, d.occurrence, d.delta_count, d.delta_fen) for d in dups] == [(2, 2, 1, 40000), (3, 3, 1, 100)]
    assert len(result.discrepancies) == 2  # the first line matches the ledger
    assert result.totals.ok


def test_duplicate_voucher_already_on_the_statement_of_the_scope_where_the_ledger_has_it():
    yesterday = Scope(DAY - timedelta(days=1), OFFICE, HANBIN)
    elsewhere = row(6, day=yesterday.business_date)
    context = Context(elsewhere={elsewhere.key: elsewhere}, listed={elsewhere.key: Listing("DZ-0", yesterday, 17)})
    result = reconcile(header(count=1, total=40000), [line(1, 6)], [], context)
    d = only(result, C.DUPLICATE_VOUCHER)
    assert (d.occurrence, d.delta_count, d.delta_fen) == (1, 1, 40000)
    assert "DZ-0" in d.details["note"]


def test_person_mismatch():
    result = reconcile(header(count=1, total=40000), [line(1, 7, seq=70)], [row(7, seq=7)])
    d = only(result, C.PERSON_OR_REGION_MISMATCH)
    assert (d.delta_count, d.delta_fen) == (0, 0)
    assert d.details["differs"] == ["person"]
    assert d.details["statement"]["masked_id"].endswith(line(1, 7, seq=70).masked_id[-4:])


def test_region_mismatch_when_the_ledger_has_the_voucher_in_another_county():
    other = row(8, region=HANYIN)
    result = reconcile(header(count=1, total=40000), [line(1, 8)], [other], Context(elsewhere={other.key: other}))
    d = only(result, C.PERSON_OR_REGION_MISMATCH)
    assert (d.delta_count, d.delta_fen, d.ledger_fen) == (1, 40000, None)
    assert d.details["ledger_elsewhere"]["region_code"] == HANYIN


def test_the_other_side_of_a_region_mismatch_is_reported_in_the_ledger_rows_county():
    listed = Listing("DZ-HB", SCOPE, 1)
    result = reconcile(header("DZ-HY", count=0, total=0, region=HANYIN), [], [row(8, region=HANYIN)],
                       Context(listed={(OFFICE, voucher(8)): listed}))
    d = only(result, C.PERSON_OR_REGION_MISMATCH)
    assert (d.delta_count, d.delta_fen) == (-1, -40000)


def test_refund_without_original():
    lines = [line(1, 9, kind="REFUND", amount=10000, original=voucher(99)),
             line(2, 10, kind="REVERSAL", amount=10000, original=None)]
    result = reconcile(header(count=2, total=-20000), lines, [])
    found = [(d.klass, d.voucher_no, d.delta_fen) for d in result.discrepancies]
    assert found == [(C.REFUND_WITHOUT_ORIGINAL, voucher(9), -10000), (C.REFUND_WITHOUT_ORIGINAL, voucher(10), -10000)]
    assert result.totals.ok


def test_a_refund_whose_original_is_known_is_just_missing_in_the_ledger():
    lines = [line(1, 12, kind="REFUND", amount=10000, original=voucher(1))]
    result = reconcile(header(count=1, total=-10000), lines, [], Context(originals={(OFFICE, voucher(1))}))
    assert only(result, C.MISSING_IN_LEDGER).delta_fen == -10000


def test_business_date_mismatch_on_both_days():
    yesterday = DAY - timedelta(days=1)
    other = row(10, day=yesterday, paid=line(1, 10).paid_at - timedelta(days=1))
    today = reconcile(header(count=1, total=40000), [line(1, 10)], [], Context(elsewhere={other.key: other}))
    assert only(today, C.BUSINESS_DATE_MISMATCH).delta_fen == 40000
    there = reconcile(header("DZ-0", count=0, total=0, day=yesterday), [], [other],
                      Context(listed={other.key: Listing("DZ-1", SCOPE, 1)}))
    assert only(there, C.BUSINESS_DATE_MISMATCH).delta_fen == -40000


def test_detail_mismatch_moves_money_between_levy_items():
    result = reconcile(header(count=1, total=40000), [line(1, 11, levy="EMPLOYEE")], [row(11, levy="RESIDENT")])
    d = only(result, C.DETAIL_MISMATCH)
    assert (d.delta_count, d.delta_fen) == (0, 0)
    assert d.by_scheme == {"EMPLOYEE": (1, 40000), "RESIDENT": (-1, -40000)}
    assert result.totals.ok
    assert result.totals.difference("EMPLOYEE") == Totals(1, 40000)


def test_another_coverage_year_is_a_detail_mismatch():
    result = reconcile(header(count=1, total=40000), [line(1, 11, period=(date(2026, 1, 1), date(2026, 12, 31)))],
                       [row(11)])
    assert only(result, C.DETAIL_MISMATCH).details["differs"] == ["period"]


# --------------------------------------------------------------------------- one of each, and the totals
def everything():
    """One statement with matching lines and one discrepancy of each class (the same shape as the e2e test)."""
    yesterday = DAY - timedelta(days=1)
    lines = [
        line(1, 1), line(2, 2, amount=25000),                         # match
        line(3, 3),                                                   # missing in ledger
        line(4, 4, amount=40000),                                     # amount mismatch (ledger 35000)
        line(5, 5), line(6, 5),                                       # duplicate voucher
        line(7, 7, seq=70),                                           # person mismatch
        line(8, 8),                                                   # match
        line(9, 9, kind="REFUND", amount=10000, original=voucher(99)),  # refund without original
        line(10, 10),                                                 # the ledger has it yesterday
        line(11, 11, levy="EMPLOYEE"),                                # levy item differs
    ]
    rows = [row(1), row(2, amount=25000), row(4, amount=35000), row(5), row(7), row(8), row(11),
            row(20, amount=12345)]                                    # missing in statement
    elsewhere = [row(10, day=yesterday, paid=line(1, 10).paid_at - timedelta(days=1))]
    context = Context(elsewhere={r.key: r for r in elsewhere})
    return lines, rows, context


def test_every_class_once_and_the_totals_tie_out_to_the_fen():
    lines, rows, context = everything()
    total = sum(x.signed_fen for x in lines)
    result = reconcile(header(count=len(lines), total=total), lines, rows, context)
    assert sorted(d.klass.value for d in result.discrepancies) == sorted(c.value for c in C)
    t = result.totals
    assert t.ok
    # statement - ledger = sum of the explained differences, written out
    statement, ledger = sum(v.fen for v in t.statement.values()), sum(v.fen for v in t.ledger.values())
    assert statement == 9 * 40000 + 25000 - 10000 == total == 375000
    assert ledger == 40000 + 25000 + 35000 + 40000 + 40000 + 40000 + 40000 + 12345 == 272345
    assert statement - ledger == sum(d.delta_fen for d in result.discrepancies) == 102655
    assert {k: v.fen for k, v in t.by_class.items()} == {
        "MISSING_IN_LEDGER": 40000, "MISSING_IN_STATEMENT": -12345, "AMOUNT_MISMATCH": 5000,
        "DUPLICATE_VOUCHER": 40000, "PERSON_OR_REGION_MISMATCH": 0, "REFUND_WITHOUT_ORIGINAL": -10000,
        "BUSINESS_DATE_MISMATCH": 40000, "DETAIL_MISMATCH": 0}
    assert t.difference() == Totals(len(lines) - len(rows), 102655) == t.explained_total()
    for scheme in ("RESIDENT", "EMPLOYEE"):
        assert t.difference(scheme) == t.explained_total(scheme)
    text = "\n".join(t.arithmetic())
    assert "TOTAL     statement 3,750.00 (11) - ledger 2,723.45 (8) = 1,026.55 (+3)" in text
    assert "DOES NOT" not in text


def test_ids_are_deterministic_and_belong_to_the_scope_not_the_statement():
    lines, rows, context = everything()
    a = reconcile(header(count=len(lines), total=0), lines, rows, context)
    b = reconcile(header(count=len(lines), total=0), list(reversed(lines)), list(reversed(rows)), context)
    assert [(d.id, d.values()) for d in a.discrepancies] == [(d.id, d.values()) for d in b.discrepancies]
    d = a.discrepancies[0]
    assert d.id == discrepancy_id(SCOPE, d.klass.value, OFFICE, d.voucher_no, d.occurrence)


def test_a_header_total_that_is_not_the_sum_of_its_lines_is_flagged():
    result = reconcile(header(count=1, total=40001), [line(1, 1)], [row(1)])
    assert not result.header_total_ok and result.totals.ok


@pytest.mark.parametrize("fen,text", [(0, "0.00"), (5, "0.05"), (-12345, "-123.45"), (123456789, "1,234,567.89")])
def test_yuan_is_exact(fen, text):
    assert yuan(fen) == text
