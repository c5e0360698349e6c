"""The fast chain digest is byte for byte the first one: stored hash chains verify unchanged.

``reference_*`` below is ledger/domain/chain.py as it was when the chains were first
written (canonical JSON of ``{"type", "fields"}`` through one recursive ``isinstance``
walk). The fast ``event_digest``, ``canonical``, ``canonical_json`` and ``content_digest``
must give exactly its output for thousands of real events of every person event type
(made by the real Ledger on the in-memory store, as they are stored and as they come
back from the store) and for the odd values a field or a raw input can hold.
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest

from tests.fee_events import record_late_fee_facts
from tests.merge_events import record_merge
from tests.legacy_events import record_legacy_transfers
from entrypoints.audit.digest import fast_event_digest
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain import chain
from ledger.domain.chain import GENESIS_HASH, canonical, canonical_json, content_digest, event_digest
from ledger.domain.feed_rejection import FeedRejection
from ledger.domain.identity import make_resident_id
from ledger.domain.person import Person
from ledger.inbound_records import Provenance, ResidentRecord, StatusRecord, TaxPaymentRecord
from ledger.domain.history import PERSON_EVENT_TYPES


# --------------------------------------------------------------------------- the reference (do not change)
def reference_canonical(value: Any) -> Any:
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): reference_canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [reference_canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(reference_canonical(v) for v in value)
    if isinstance(value, float):
        return f"float:{value!r}"
    raise TypeError(f"no canonical form for {type(value).__name__}")


def reference_canonical_json(value: Any) -> bytes:
    return json.dumps(reference_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def reference_event_digest(event: Any) -> str:
    # Fields added to a class later (ResidenceRecorded's address, phone) count only when given.
    added = getattr(type(event), "added_optional_fields", ())
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name != "originator_topic"
              and not (f.name in added and getattr(event, f.name) is None)}
    body = {"type": type(event).__qualname__, "fields": fields}
    return hashlib.sha256(reference_canonical_json(body)).hexdigest()


def reference_content_digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(reference_canonical_json(payload)).hexdigest()


# --------------------------------------------------------------------------- thousands of real events
REGIONS = ("610902", "610921", "610922", "610923", "610924", "610925", "610926", "610927", "610929", "610981")
NAMES = ("赵敏", "王芳", "李强", "阿卜杜拉·买买提", "Ōtsuka Ōe", "O'Brien \"Jr\"", "Zoë \\ Ångström", "𠮷田 😀",
         "Иван", "x" * 60)


def _events_of_one_person(ledger: Any, i: int) -> None:
    region = REGIONS[i % len(REGIONS)]
    name = NAMES[i % len(NAMES)]
    number = make_resident_id(region, date(1950, 1, 1) + timedelta(days=37 * i), i % 1000)
    api = Provenance(source="api", user=f"clerk{i:02d}", request_id=f"req-{i} \"{name}\" \\ \u2028 \x01")
    feed = Provenance(source="kafka", topic="tax.payments.v1", partition=i % 4, offset=i * 7, record_key=f"k{i}")
    year = 2024 + i % 2

    def pay(voucher: str, amount: int, when: datetime, **over: Any) -> None:
        fields = dict(voucher_no=voucher, tax_office="16109020000", id_type="RESIDENT_ID", id_number=number,
                      name=name, region_code=region, levy_item="RESIDENT", period_start=date(year, 1, 1),
                      period_end=date(year, 12, 31), amount_fen=amount, paid_at=when,
                      credited_on=when.date() + timedelta(days=1), channel=("BANK", "APP", "COUNTER")[i % 3])
        fields.update(over)
        ledger.record_tax_record(TaxPaymentRecord(**fields), provenance=feed)

    start = date(year - 1, 9, 1) + timedelta(days=i % 20)
    pid = ledger.enroll(id_type="RESIDENT_ID", id_number=number, name=name, scheme="RESIDENT", region_code=region,
                        grid_code=f"{region}1000{i % 100:02d}" if i % 5 else None, effective_date=start,
                        provenance=api).person_id
    ledger.assess_resident_year(pid, year, provenance=api, effective_date=start)
    paid = datetime(year - 1, 11, 1, 3, i % 60, i % 60, (i * 7919) % 1_000_000,
                    tzinfo=timezone(timedelta(hours=8)) if i % 2 else timezone.utc)
    pay(f"V1-{i}", 40000 + i, paid)
    pay(f"R1-{i}", 1000 + i, paid + timedelta(days=30), kind="REFUND", original_voucher_no=f"V1-{i}")
    pay(f"V2-{i}", 5000, paid + timedelta(days=31))
    pay(f"C2-{i}", 5000, paid + timedelta(days=32), kind="REVERSAL", original_voucher_no=f"V2-{i}")
    status = dict(id_type="RESIDENT_ID", id_number=number, name=name, category="MIN_LIVING",
                  valid_from=date(year, 1, 1), valid_to=date(year, 12, 31) if i % 3 else None,
                  department="汉滨区民政局", document_no=f"汉民发〔{year}〕{i}号", grant_id=f"G{i}")
    ledger.apply_status(StatusRecord(record_id=f"S1-{i}", granted=True, **status), provenance=feed)
    ledger.apply_status(StatusRecord(record_id=f"S2-{i}", granted=False, **{**status, "valid_from": date(year, 7, 1)}),
                        provenance=feed)
    ledger.credit_account(pid, amount_fen=300 + i, reason="CONTRIBUTION", reference=f"c{i} ✓",
                          effective_date=date(year, 1, 2), provenance=api)
    ledger.debit_account(pid, amount_fen=100, reason="FAMILY_MUTUAL_AID", reference=f"d{i}",
                         effective_date=date(year, 1, 3), provenance=api, relative_person_id=f"p{i}",
                         relative_relationship="CHILD")
    other = REGIONS[(i + 1) % len(REGIONS)]
    ledger.transfer_out(pid, transfer_id=f"X{i}", counterpart_region=other, effective_date=date(year, 2, 1),
                        provenance=api)
    ledger.cancel_transfer(pid, transfer_id=f"X{i}", reason=f"撤回 {i}", effective_date=date(year, 2, 3),
                           provenance=api, rejected=bool(i % 2))
    ledger.request_transfer(pid, transfer_id=f"T{i}", sending_region=region, receiving_region=other,
                            effective_date=date(year, 2, 20), provenance=api)
    ledger.transfer_out(pid, transfer_id=f"T{i}", counterpart_region=other, effective_date=date(year, 3, 1),
                        provenance=api)
    ledger.transfer_in(id_type="RESIDENT_ID", id_number=number, name=name, transfer_id=f"T{i}",
                       counterpart_region=region, scheme="RESIDENT", region_code=other,
                       account_balance_fen=200 + i if i % 2 else None, effective_date=date(year, 3, 9), provenance=api)
    record_legacy_transfers(ledger, pid, date(year, 4, 1), tag=str(i))
    record_late_fee_facts(ledger, pid, date(year, 4, 2), region=region, tag=str(i))
    ledger.apply_residence(ResidentRecord(record_id=f"H{i}", id_type="RESIDENT_ID", id_number=number, name=name,
                                          grid_code=None, status=("DECEASED", "MOVED_OUT")[i % 2],
                                          effective_date=date(year, 8, 1)), provenance=feed)


@pytest.fixture(scope="module")
def events() -> list[Any]:
    system = bootstrap(Settings(persistence="memory", id_key=b"chain-fast-tests"))
    try:
        ledger = system.ledger
        for i in range(200):
            _events_of_one_person(ledger, i)
        record_merge(ledger, 900)
        ledger.save(FeedRejection.reject(topic="tax.payments.v1", partition=0, offset=3, key=None, code="X",
                                         message="m ✓", raw=b"\x00\xff",
                                         received_at=datetime(2025, 1, 1, tzinfo=timezone.utc)))
        stored = ledger.recorder.select_notifications(start=1, limit=100_000)
        return [ledger.mapper.to_domain_event(n) for n in stored]  # every aggregate's events, back from the store
    finally:
        system.close()


def test_thousands_of_events_of_every_type_digest_as_the_reference(events):
    person_events = [e for e in events if isinstance(e, Person.Event)]
    assert len(person_events) > 2500
    assert {type(e).__name__ for e in person_events} == PERSON_EVENT_TYPES - {"Created"}  # (the library alias)
    assert len(events) > len(person_events)  # source records and the rejection too
    for event in events:
        expected = reference_event_digest(event)
        assert event_digest(event) == expected, (type(event).__qualname__, event)
        assert fast_event_digest(event) == expected, type(event).__qualname__


def test_the_stored_chains_verify_with_the_reference(events):
    heads: dict[UUID, str] = {}
    checked = 0
    for event in events:
        if not isinstance(event, Person.Event):
            continue
        assert event.prev_hash == heads.get(event.originator_id, GENESIS_HASH)
        heads[event.originator_id] = reference_event_digest(event)
        checked += 1
    assert checked > 2500


def test_events_in_any_order_of_persons(events):
    # (the fast digest keeps the last originator id's text: interleaved persons must not mix them up)
    person_events = [e for e in events if isinstance(e, Person.Event)][:600]
    for event in person_events[::-1] + person_events[::7] + person_events[1::2]:
        assert event_digest(event) == reference_event_digest(event)


# --------------------------------------------------------------------------- edge cases
class Colour(str, enum.Enum):
    RED = "RED"


class Level(enum.IntEnum):
    HIGH = 3


class Stamp(datetime):
    def isoformat(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        return "stamp:" + super().isoformat(*args, **kwargs)


class Text(str):
    pass


UTC8 = timezone(timedelta(hours=8))
ODD_VALUES: list[Any] = [
    None, "", "赵敏", "\"quoted\" \\ back\\slash", "\u2028\u2029\x00\x1f\x7f", "😀𠮷", Text("sub"),
    0, -1, 2**70, -(2**63), True, False, Level.HIGH, Colour.RED,
    date(2025, 1, 1), date(1, 1, 1), datetime(2025, 1, 1), datetime(2025, 1, 1, tzinfo=timezone.utc),
    datetime(2025, 1, 1, 23, 59, 59, 999999, tzinfo=UTC8), datetime(2025, 6, 30, 12, tzinfo=timezone(-timedelta(hours=3, minutes=30))),
    Stamp(2025, 1, 1, 8), UUID(int=0), uuid5(UUID(int=1), "x"), uuid4(),
    0.1, 1.0, -0.0, 1e300, float("inf"), float("-inf"), float("nan"), 3.0000000000000004,
    [], (), {}, set(), frozenset(),
    [1, "a", None, 2.5, date(2025, 1, 2)], (UUID(int=5), (1, (2, [3]))),
    {"b": 1, "a": {"d": [1, {"z": None, "y": 0.5}], "c": "赵"}},
    {1: "one", "1": "string one", 2: "two", None: "none", True: "true"},  # keys that collide as text
    {"1": "string first", 1: "int second"},
    {UUID(int=3): date(2025, 1, 1), date(2025, 1, 2): datetime(2025, 1, 2, tzinfo=timezone.utc)},
    {Colour.RED: 1, "Colour.RED": 2},
    {3, 1, 2}, frozenset({"b", "a"}), {date(2025, 1, 2), date(2025, 1, 1)},
    {"raw": {"amount": 400.0, "paid_at": "2025-01-01T00:00:00", "name": "王芳", "nested": [{"k": 1.5}]}},
]


@dataclasses.dataclass(frozen=True)
class OddEvent:
    """An event-like dataclass (``event_digest`` takes any dataclass): every field a different odd value."""

    originator_id: Any
    originator_version: Any
    timestamp: Any
    originator_topic: str
    value: Any
    other: Any = None


@pytest.mark.parametrize("value", ODD_VALUES, ids=lambda v: type(v).__name__)
def test_odd_values_digest_and_canonicalise_as_the_reference(value):
    assert canonical_json(value) == reference_canonical_json(value)
    assert json.dumps(canonical(value), ensure_ascii=False) == json.dumps(reference_canonical(value), ensure_ascii=False)
    assert content_digest({"v": value, "w": [value]}) == reference_content_digest({"v": value, "w": [value]})
    for originator_id in (uuid4(), "text-id", 7):
        event = OddEvent(originator_id, 1, datetime(2025, 1, 1, tzinfo=timezone.utc), "x:Y", value, [value, {"v": value}])
        assert event_digest(event) == reference_event_digest(event)
        assert fast_event_digest(event) == reference_event_digest(event)


def test_every_odd_value_in_one_event():
    for i, value in enumerate(ODD_VALUES):
        event = OddEvent(UUID(int=i % 3), i, ODD_VALUES[(i + 1) % len(ODD_VALUES)], "x:Y", value,
                         ODD_VALUES[(i * 7) % len(ODD_VALUES)])
        assert event_digest(event) == reference_event_digest(event)


def test_a_real_event_with_odd_values_in_its_fields(events):
    person_events = [e for e in events if isinstance(e, Person.Event)][:40]
    for n, event in enumerate(person_events):
        for value in ODD_VALUES:
            names = [f.name for f in dataclasses.fields(event) if f.name != "originator_topic"]
            changed = dict(event.__dict__)
            changed[names[n % len(names)]] = value
            odd = object.__new__(type(event))
            object.__setattr__(odd, "__dict__", changed)
            assert event_digest(odd) == reference_event_digest(odd), (names[n % len(names)], value)


def test_values_without_a_canonical_form_are_refused_alike():
    for value in (b"bytes", object(), complex(1, 2), timedelta(days=1), {"k": b"v"}, [1, bytearray(b"x")]):
        with pytest.raises(TypeError):
            reference_canonical_json(value)
        with pytest.raises(TypeError):
            canonical_json(value)
        with pytest.raises(TypeError):
            canonical(value)
        with pytest.raises(TypeError):
            event_digest(OddEvent(uuid4(), 1, None, "x:Y", value))


def test_the_digest_is_the_documented_json():
    event = OddEvent(UUID(int=1), 2, date(2025, 1, 1), "x:Y", {"b": "赵", "a": 1.5})
    text = ('{"fields":{"originator_id":"00000000-0000-0000-0000-000000000001","originator_version":2,'
            '"other":null,"timestamp":"2025-01-01","value":{"a":"float:1.5","b":"赵"}},'
            '"type":"OddEvent"}')
    assert event_digest(event) == hashlib.sha256(text.encode()).hexdigest()
    assert chain.event_type_name(event) == "OddEvent"
