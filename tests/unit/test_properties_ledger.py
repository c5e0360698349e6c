"""Property-based tests (hypothesis) of the ledger's domain invariants.

Each example drives the real :class:`ledger.application.Ledger` on the in-memory store
with a generated sequence of commands -- payments of random positive amounts for random
coverage years, refunds of random parts of earlier vouchers, reversals (exact and
wrong), resends (identical and conflicting), subsidised-status grants and revocations,
assessments -- and checks, after every command and at the end:

(a) per person, paid minus refunded (a model kept by the test) equals the net of the
    payment events in the store and equals ``paid_fen_for`` summed over the periods;
(b) nobody is covered (``ledger.domain.coverage.covered_on``) on a day of a resident
    coverage year unless the net paid by that day plus the subsidy reaches the
    individual share of that year;
(c) waiting periods are never negative (``rules.waiting_period`` over generated
    inputs, and in every entitlement row);
(d) replaying a person's events from the store into a fresh aggregate gives exactly
    ``get_person``; a command refused with a DomainError writes no person event (the
    only write a refusal may make is the source-record index keeping a conflicting
    resend for reconciliation: ``SourceRecord.ConflictObserved``).

Deterministic: ``derandomize=True`` and no example database.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.errors import DomainError
from ledger.domain.identity import make_resident_id
from ledger.domain.person import Person
from ledger.domain.source_record import SourceRecord
from ledger.policy import PolicyBook, rules
from ledger.inbound_records import Provenance, StatusRecord, TaxPaymentRecord
from projections.entitlement import EntitlementProjection
from ledger.domain.coverage import covered_on
from projections.in_memory import rebuild

HANBIN = "610902"
GRID = "610902100001"
TAX_OFFICE = "16109020000"
API = Provenance(source="api", user="prop", request_id="prop-1")
FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=1)
CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
YEARS = (2025, 2026)
FIRST_DAY, LAST_DAY = date(2024, 9, 1), date(2026, 12, 31)

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.cache
def policies() -> PolicyBook:
    return PolicyBook.load()


def number(seq: int) -> str:
    return make_resident_id(HANBIN, date(1980, 5, 17), seq)


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 30, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- commands
days = st.integers(0, (LAST_DAY - FIRST_DAY).days).map(lambda n: FIRST_DAY + timedelta(days=n))
persons = st.integers(0, 2)
# Amounts around the individual share (40000 fen) are the interesting ones.
amounts = st.one_of(st.sampled_from([40000, 25000, 15000, 1]), st.integers(1, 90000))
fractions = st.fractions(min_value=0, max_value=1.5)


@st.composite
def commands(draw: Any) -> list[tuple]:
    out = []
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["pay", "pay", "pay", "refund", "refund", "reverse", "resend", "grant",
                                     "revoke", "assess", "enroll"]))
        p = draw(persons)
        if kind == "pay":
            out.append(("pay", p, draw(st.sampled_from(YEARS)), draw(amounts), draw(days)))
        elif kind == "refund":
            out.append(("refund", p, draw(st.integers(0, 20)), draw(fractions), draw(days)))
        elif kind == "reverse":
            out.append(("reverse", p, draw(st.integers(0, 20)), draw(st.booleans()), draw(days)))
        elif kind == "resend":
            out.append(("resend", p, draw(st.integers(0, 20)), draw(st.booleans()), None))
        elif kind == "grant":
            out.append(("grant", p, draw(st.sampled_from(["EXTREME_POVERTY", "MIN_LIVING", "ORPHAN"])),
                        draw(days), draw(st.one_of(st.none(), days))))
        elif kind == "revoke":
            out.append(("revoke", p, draw(st.integers(0, 5)), draw(days), None))
        elif kind == "assess":
            out.append(("assess", p, draw(st.sampled_from(YEARS)), None, None))
        else:
            out.append(("enroll", p, draw(days), None, None))
    return out


@dataclass
class Model:
    """What the test expects, from the commands the ledger accepted."""

    vouchers: dict[str, dict[str, Any]] = field(default_factory=dict)  # voucher -> {person, amount, refunded, reversed}
    records: list[TaxPaymentRecord] = field(default_factory=list)  # every tax record sent (for resends)
    grants: list[StatusRecord] = field(default_factory=list)
    seq: int = 0

    def net(self, person: int) -> int:
        return sum(v["amount"] - v["refunded"] for v in self.vouchers.values()
                   if v["person"] == person and not v["reversed"])

    def voucher(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq:05d}"


def tax_record(person: int, voucher: str, amount: int, day: date, year: int, **over: Any) -> TaxPaymentRecord:
    fields: dict[str, Any] = dict(
        voucher_no=voucher, tax_office=TAX_OFFICE, id_type="RESIDENT_ID", id_number=number(person + 1), name="王芳",
        region_code=HANBIN, levy_item="RESIDENT", period_start=date(year, 1, 1), period_end=date(year, 12, 31),
        amount_fen=amount, paid_at=at(day), credited_on=day, channel="APP",
    )
    fields.update(over)
    return TaxPaymentRecord(**fields)


def pick(items: list, index: int) -> Any:
    return items[index % len(items)] if items else None


def run_command(ledger: Any, model: Model, command: tuple) -> tuple[Any, dict | None]:
    """Run one command; returns (callable, model update to apply when it is applied)."""
    kind, p, a, b, c = command
    if kind == "pay":
        record = tax_record(p, model.voucher("V"), b, c, a)
        return (lambda: ledger.record_tax_record(record, provenance=FEED)), {
            "record": record, "new": {"person": p, "amount": b, "refunded": 0, "reversed": False}}
    if kind in ("refund", "reverse"):
        originals = [v for v in model.vouchers if model.vouchers[v]["person"] == p] or list(model.vouchers)
        original = pick(originals, a) or "NO-SUCH-VOUCHER"
        state = model.vouchers.get(original, {"amount": 1, "refunded": 0})
        remaining = state["amount"] - state["refunded"]
        if kind == "refund":
            amount = max(1, int(remaining * b))
            prefix, kind_code = "R", "REFUND"
        else:
            amount = remaining if b else remaining + 1
            prefix, kind_code = "C", "REVERSAL"
        record = tax_record(p, model.voucher(prefix), amount, c, 2025, kind=kind_code, original_voucher_no=original,
                            reason="prop")
        return (lambda: ledger.record_tax_record(record, provenance=FEED)), {
            "record": record, kind: (original, amount)}
    if kind == "resend":
        earlier = pick(model.records, a)
        if earlier is None:
            return (lambda: None), None
        record = earlier if b else replace(earlier, amount_fen=earlier.amount_fen + 1)  # False: conflicting content
        return (lambda: ledger.record_tax_record(record, provenance=FEED)), {"record": record, "resend": True}
    if kind == "grant":
        valid_to = c if c is None or c >= b else None
        record = StatusRecord(record_id=model.voucher("MZ"), id_type="RESIDENT_ID", id_number=number(p + 1),
                              name="王芳", category=a, granted=True, valid_from=b, valid_to=valid_to,
                              department="汉滨区民政局", document_no=f"DOC-{model.seq}")
        return (lambda: ledger.apply_status(record, provenance=FEED)), {"grant": record}
    if kind == "revoke":
        grants = [g for g in model.grants if g.id_number == number(p + 1)] or model.grants
        grant = pick(grants, a)
        document = grant.document_no if grant else "NO-SUCH-GRANT"
        record = StatusRecord(record_id=model.voucher("MZR"), id_type="RESIDENT_ID", id_number=number(p + 1),
                              name="王芳", category=grant.category if grant else "MIN_LIVING", granted=False,
                              valid_from=b, valid_to=None, department="汉滨区民政局", document_no=f"REV-{model.seq}",
                              grant_id=document)
        return (lambda: ledger.apply_status(record, provenance=FEED)), None
    if kind == "assess":
        return (lambda: ledger.assess_resident_year(ledger.person_id("RESIDENT_ID", number(p + 1)), a,
                                                     provenance=API, effective_date=date(2024, 9, 1))), None
    return (lambda: ledger.enroll(id_type="RESIDENT_ID", id_number=number(p + 1), name="王芳", scheme="RESIDENT",
                                  region_code=HANBIN, grid_code=GRID, effective_date=a, provenance=API)), None


def log_events(ledger: Any, start: int = 1) -> list:
    events = []
    while True:
        batch = ledger.recorder.select_notifications(start, 500)
        if not batch:
            return events
        events += [ledger.mapper.to_domain_event(n) for n in batch]
        start = batch[-1].id + 1


def apply_to_model(model: Model, update: dict | None) -> None:
    if not update:
        return
    if "record" in update and "resend" not in update:
        model.records.append(update["record"])
    if "new" in update:
        model.vouchers[update["record"].voucher_no] = update["new"]
    if "refund" in update:
        original, amount = update["refund"]
        model.vouchers[original]["refunded"] += amount
    if "reverse" in update:
        model.vouchers[update["reverse"][0]]["reversed"] = True
    if "grant" in update:
        model.grants.append(update["grant"])


def net_from_events(events: list) -> int:
    net = 0
    for e in events:
        if isinstance(e, Person.ContributionPaid):
            net += e.amount_fen
        elif isinstance(e, (Person.ContributionRefunded, Person.ContributionReversed)):
            net -= e.amount_fen
    return net


def run(ledger: Any, cmds: list[tuple]) -> Model:
    model = Model()
    for command in cmds:
        call, update = run_command(ledger, model, command)
        before = ledger.recorder.max_notification_id() or 0
        try:
            outcome = call()
        except DomainError as e:
            assert CODE.match(e.code), e.code
            after = ledger.recorder.max_notification_id() or 0
            written = log_events(ledger, before + 1) if after > before else []
            # (d) a refusal writes no person event; a conflicting resend is kept in the index only.
            assert all(isinstance(w, SourceRecord.ConflictObserved) for w in written), (e.code, written)
            if written:
                assert e.code in ("VOUCHER_CONFLICT", "RECORD_CONFLICT"), e.code
            event(f"refused {e.code}")
            continue
        if outcome is not None and outcome.applied:
            event(f"applied {command[0]}")
            apply_to_model(model, update)
        elif outcome is not None and update and "resend" not in update:
            # Not applied: only an identical resend may be a no-op, never a fresh voucher.
            assert "new" not in update, outcome.message
    return model


# --------------------------------------------------------------------------- (a) and (d)
@PROPERTY_SETTINGS
@given(cmds=commands())
def test_money_balances_and_replay_equals_live_state(cmds: list[tuple]) -> None:
    system = bootstrap(Settings(persistence="memory", id_key=b"prop"), policies=policies())
    ledger = system.ledger
    try:
        model = run(ledger, cmds)
        for p in range(3):
            pid = ledger.person_id("RESIDENT_ID", number(p + 1))
            events = list(ledger.events.get(pid))
            if not events:
                assert model.net(p) == 0
                continue
            person = ledger.get_person(pid)
            periods = {k for pay in person.payments.values() for k in pay.periods}
            # (a) paid - refunded == net of the recorded events == paid_fen_for summed
            assert net_from_events(events) == model.net(p)
            assert sum(person.paid_fen_for(k) for k in periods) == model.net(p)
            for pay in person.payments.values():
                assert 0 <= pay.refunded_fen <= pay.amount_fen
            # (d) replay == live state
            replayed = None
            for e in events:
                replayed = e.mutate(replayed)
            assert vars(replayed) == vars(person)
    finally:
        system.close()


# --------------------------------------------------------------------------- (b) and (c) on the rows
def net_paid_by(events: list, year: int, day: date) -> int:
    """Net fen paid for ``year`` by the end of ``day`` (refunds from their date; a reversal removes its payment)."""
    paid: dict[str, dict[str, Any]] = {}
    reversed_keys = set()
    for e in events:
        if isinstance(e, Person.ContributionPaid) and e.period_start.year == year:
            paid[f"{e.tax_office}|{e.voucher_no}"] = {"on": e.effective_date, "amount": e.amount_fen, "refunds": []}
        elif isinstance(e, Person.ContributionRefunded):
            key = f"{e.original_tax_office}|{e.original_voucher_no}"
            if key in paid:
                paid[key]["refunds"].append((e.effective_date, e.amount_fen))
        elif isinstance(e, Person.ContributionReversed):
            reversed_keys.add(f"{e.original_tax_office}|{e.original_voucher_no}")
    net = 0
    for key, p in paid.items():
        if key in reversed_keys or p["on"] > day:
            continue
        net += p["amount"] - sum(amount for on, amount in p["refunds"] if on <= day)
    return net


@PROPERTY_SETTINGS
@given(cmds=commands())
def test_nobody_is_covered_without_funding_and_waiting_is_never_negative(cmds: list[tuple]) -> None:
    system = bootstrap(Settings(persistence="memory", id_key=b"prop"), policies=policies())
    ledger = system.ledger
    try:
        run(ledger, cmds)
        view = rebuild(log_events(ledger), [EntitlementProjection(ledger.policies)])["entitlement"]
        covered_days = 0
        for p in range(3):
            pid = ledger.person_id("RESIDENT_ID", number(p + 1))
            events = list(ledger.events.get(pid))
            row = view.get(str(pid))
            for year, y in (row["years"] if row else {}).items():
                # (c) no negative waiting anywhere in the row
                for key in ("waiting_months", "gap_years", "back_paid_years"):
                    assert y[key] is None or y[key] >= 0, (key, y[key])
                for entry in y["funding"]:
                    if entry["waiting"] is not None:
                        assert entry["waiting"]["months"] >= 0
                        assert entry["waiting"]["coverage_start"] >= entry["waiting"]["paid_on"] or \
                            entry["waiting"]["exemption"] == "NEWBORN"
                for first, last in y["coverage_periods"]:
                    assert first.year == last.year == year and first <= last
            # (b) covered on D => net paid by D + subsidy >= the year's individual share
            for year in YEARS:
                share = ledger.policies.get(HANBIN, year).resident.individual_share_fen
                y = row["years"].get(year) if row else None
                subsidy = y["subsidy_fen"] if y else 0
                day = date(year, 1, 1)
                while day.year == year:
                    decision = covered_on(view, pid, day)
                    if decision.covered:
                        covered_days += 1
                        assert decision.scheme == "RESIDENT"
                        assert net_paid_by(events, year, day) + subsidy >= share, (day, decision.reason)
                    day += timedelta(days=3)
        event("some days covered" if covered_days else "no day covered")
    finally:
        system.close()


# --------------------------------------------------------------------------- (c) the rule itself
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    year=st.sampled_from([2024, 2025, 2026]),
    region=st.sampled_from(["610902", "610921", "610981"]),
    paid_on=st.dates(date(2023, 6, 1), date(2027, 3, 1)),
    first_time=st.booleans(),
    gap_years=st.integers(-2, 12),
    back_paid_years=st.integers(-2, 12),
    exemption=st.one_of(st.none(), st.sampled_from(["NEWBORN", "SUBSIDISED", "VETERAN", "SCHEME_SWITCH", "bogus",
                                                    " subsidised "])),
    covered_last_year=st.booleans(),
    born_on=st.one_of(st.none(), st.dates(date(2023, 1, 1), date(2027, 1, 1))),
    switch_gap_months=st.one_of(st.none(), st.integers(-3, 24)),
)
def test_waiting_period_is_never_negative(year, region, paid_on, first_time, gap_years, back_paid_years, exemption,
                                         covered_last_year, born_on, switch_gap_months) -> None:
    table = policies().get(region, year)
    try:
        decision = rules.waiting_period(
            table, paid_on=paid_on, first_time=first_time, gap_years=gap_years, back_paid_years=back_paid_years,
            exemption=exemption, covered_last_year=covered_last_year, born_on=born_on,
            switch_gap_months=switch_gap_months,
        )
    except DomainError as e:
        assert CODE.match(e.code), e.code
        assert e.code in ("WAITING_INPUT_INVALID", "WAITING_EXEMPTION_UNKNOWN"), e.code
        return
    assert decision.months >= 0
    assert decision.coverage_start >= date(year, 1, 1)
    if decision.exemption != "NEWBORN":
        assert decision.coverage_start >= paid_on
    waiting = table.resident.waiting
    if waiting.enabled and decision.exemption is None:
        assert decision.months <= waiting.fixed_months + max(0, gap_years) * waiting.per_gap_year_months \
            or decision.months == waiting.repaired_min_months
