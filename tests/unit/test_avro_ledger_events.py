"""Person events as Avro records: every event has a schema that matches it, and events built
by the real aggregate survive encoding, fastavro and Apache avro alike."""
from __future__ import annotations

import dataclasses
from base64 import b64encode
import io
import json
import typing
from datetime import date, datetime, timezone
from uuid import UUID, uuid4

import avro.io
import fastavro
import avro.schema
import pytest

from events.codec import HEADER_SIZE, default_registry, to_jsonable
from events.ledger_events import (
    ENCRYPTED_FIELDS,
    ENVELOPE_FIELDS,
    NAMESPACE,
    RENAMED_FIELDS,
    UNPUBLISHED_FIELDS,
    decode_event,
    encode_event,
    event_schema_name,
    event_to_record,
    person_event_classes,
    record_to_envelope,
)
from events.make_fixtures import SAMPLES
from events.pii import CipherKeyError, KeyRing, decrypt_field, new_key
from ledger.application import Ledger
from ledger.domain.errors import DomainError
from ledger.domain.person import Person
from ledger.domain.vocabulary import (
    AccountEntryReason,
    EnrollmentChannel,
    EnrollmentEndReason,
    ResidenceStatus,
    Scheme,
    SubsidyCategory,
)
from ledger.policy.book import default_policy_book

DATE = {"type": "int", "logicalType": "date"}
INSTANT = {"type": "long", "logicalType": "timestamp-micros"}
UUID_TYPE = {"type": "string", "logicalType": "uuid"}


def _avro_type(annotation) -> object:
    """The Avro type a Python annotation must have in the contract."""
    args = typing.get_args(annotation)
    if type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return ["null", _avro_type(inner)]
    if typing.get_origin(annotation) is dict:
        return {"type": "map", "values": "string"}
    return {str: "string", int: "long", bool: "boolean", date: DATE, datetime: INSTANT, UUID: UUID_TYPE}[annotation]


# ------------------------------------------------------------ schemas match events
def test_every_person_event_class_is_published():
    nested = {
        name
        for name, cls in vars(Person).items()
        if isinstance(cls, type) and issubclass(cls, Person.Event) and cls is not Person.Event
    }
    assert set(person_event_classes()) == nested - {"Created"}
    assert len(person_event_classes()) == 22  # 18 + LateFeePaid, LateFeeWaived, PersonMerged, PersonMergedInto (#22)


def test_the_library_generated_created_event_carries_nothing_of_its_own():
    """If Person.Created ever gets fields or behaviour, it needs a schema like the others."""
    own = {f.name for f in dataclasses.fields(Person.Created)} - {f.name for f in dataclasses.fields(Person.Event)}
    assert own <= UNPUBLISHED_FIELDS
    assert "apply" not in vars(Person.Created)


@pytest.mark.parametrize("name", sorted(person_event_classes()))
def test_schema_fields_match_the_event_dataclass_exactly(name):
    cls = person_event_classes()[name]
    schema = default_registry().current(f"{NAMESPACE}.{name}").schema
    fields = {f["name"]: f for f in schema["fields"]}
    assert [f["name"] for f in schema["fields"]][: len(ENVELOPE_FIELDS)] == list(ENVELOPE_FIELDS)
    hints = typing.get_type_hints(cls)
    expected = {}
    for field in dataclasses.fields(cls):
        if field.name in UNPUBLISHED_FIELDS:
            continue
        annotation = {"originator_id": UUID, "originator_version": int, "timestamp": datetime}.get(
            field.name, hints[field.name]
        )
        expected[RENAMED_FIELDS.get(field.name, field.name)] = _avro_type(annotation)
    for _field, encrypted, _mask in ENCRYPTED_FIELDS.get(name, ()):
        expected[encrypted] = ["null", "bytes"]  # published only: the personal field, encrypted
    assert set(fields) == set(expected), (
        f"{name}: fields only in the event: {sorted(set(expected) - set(fields))}; "
        f"only in the schema: {sorted(set(fields) - set(expected))}"
    )
    for field_name, avro_type in expected.items():
        assert fields[field_name]["type"] == avro_type, f"{name}.{field_name}"
        if isinstance(avro_type, list):
            assert fields[field_name].get("default", "absent") is None, f"{name}.{field_name}"


def test_event_schema_name_accepts_class_instance_and_names():
    full = "cn.medins.ledger.v1.ContributionPaid"
    assert event_schema_name(Person.ContributionPaid) == full
    assert event_schema_name("ContributionPaid") == full
    assert event_schema_name("Person.ContributionPaid") == full
    assert event_schema_name(full) == full
    for wrong in ("Created", "Person.Created", Person.Created, "NoSuchEvent", "cn.medins.tax.v1.ContributionPaid", int):
        with pytest.raises(DomainError) as e:
            event_schema_name(wrong)
        assert e.value.code == "EVENT_TYPE_UNKNOWN"


# -------------------------------------------------------- events from the aggregate
def _person() -> Person:
    """A person with one of each event pending, from the aggregate's own commands and the shipped policy tables."""
    prov = {"source": "test", "user": "clerk-1"}
    policies = default_policy_book()
    person = Person.register(
        person_id=uuid4(), id_type="RESIDENT_ID", id_number="11010519491231002X", name="张三",
        birth_date=date(1949, 12, 31), sex="F", household_grid=None, effective_date=date(2024, 9, 1),
        provenance=prov,
    )
    person.enroll(
        scheme=Scheme.RESIDENT, region_code="610902", grid_code="610902100201", flexible=False, employer_id=None,
        channel=EnrollmentChannel.COUNTER, effective_date=date(2024, 9, 1), provenance=prov, policies=policies,
    )
    person.grant_subsidy(
        grant_id="MZ-1", category=SubsidyCategory.MIN_LIVING, valid_from=date(2024, 1, 1), valid_to=None,
        department="汉滨区民政局", document_no="汉民发〔2024〕1号", effective_date=date(2024, 1, 1), provenance=prov,
    )
    person.assess_resident_year(table=policies.get("610902", 2025), effective_date=date(2024, 9, 2), provenance=prov)
    paid_at = datetime(2024, 11, 3, 10, 15, 30, 123456, tzinfo=timezone.utc)
    for voucher in ("V1", "V2"):
        person.record_payment(
            voucher_no=voucher, tax_office="16109020000", levy_item=Scheme.RESIDENT, region_code="610902",
            amount_fen=25000, period_start=date(2025, 1, 1), period_end=date(2025, 12, 31), paid_at=paid_at,
            credited_on=date(2024, 11, 5) if voucher == "V1" else None, channel="APP", provenance=prov,
            policies=policies,
        )
    person.refund_payment(
        refund_voucher_no="R1", tax_office="16109020000", original_voucher_no="V1", original_tax_office=None,
        amount_fen=5000, refunded_at=paid_at, reason="资助到账", provenance=prov,
    )
    person.reverse_payment(
        reversal_voucher_no="X2", tax_office="16109020000", original_voucher_no="V2", original_tax_office=None,
        amount_fen=25000, reversed_at=paid_at, reason="重复缴费", provenance=prov,
    )
    person.revoke_subsidy(
        grant_id="MZ-1", revoked_from=date(2025, 7, 1), department="汉滨区民政局", document_no="汉民发〔2025〕7号",
        effective_date=date(2025, 7, 1), provenance=prov,
    )
    person.transfer_in(
        transfer_id="T-IN", counterpart_region="330502", account_balance_fen=10000, contribution_months=12,
        effective_date=date(2025, 1, 10), provenance=prov, policies=policies,
    )
    # The unmatched transfer events of before issue 18: no command writes them now, stored ones still replay.
    person.trigger_event(
        Person.TransferredIn, transfer_id="T-LEGACY-IN", counterpart_region="330502", account_balance_fen=500,
        contribution_months=1, effective_date=date(2025, 1, 11), provenance=prov,
    )
    person.credit_account(
        amount_fen=2000, reason=AccountEntryReason.CONTRIBUTION, reference="V1", effective_date=date(2025, 2, 1),
        provenance=prov,
    )
    person.debit_account(
        amount_fen=3000, reason=AccountEntryReason.FAMILY_MUTUAL_AID, reference="JS-1",
        effective_date=date(2025, 3, 1), provenance=prov, relative_person_id=str(uuid4()),
        relative_relationship="配偶",
    )
    person.transfer_out(transfer_id="T-X", counterpart_region="610921", effective_date=date(2025, 6, 1), provenance=prov)
    person.cancel_transfer(transfer_id="T-X", reason="申请人撤回", effective_date=date(2025, 6, 2), provenance=prov)
    person.request_transfer(transfer_id="T-OUT", sending_region="610902", receiving_region="610921",
                            effective_date=date(2025, 6, 20), provenance=prov, policies=policies)
    person.transfer_out(transfer_id="T-OUT", counterpart_region="610921", effective_date=date(2025, 6, 30), provenance=prov)
    person.transfer_in(
        transfer_id="T-OUT", counterpart_region="610902", region_code="610921", effective_date=date(2025, 7, 1),
        provenance=prov, policies=policies,
        enroll={"scheme": Scheme.RESIDENT, "grid_code": None, "flexible": False, "employer_id": None},
    )

    # A second scheme in the same region (flagged a duplicate): another region is ENROLLED_ELSEWHERE now.
    person.enroll(
        scheme=Scheme.EMPLOYEE, region_code="610921", grid_code=None, flexible=True, employer_id=None,
        channel=EnrollmentChannel.COUNTER, effective_date=date(2025, 7, 2), provenance=prov, policies=policies,
    )
    person.trigger_event(
        Person.TransferredOut, transfer_id="T-LEGACY-OUT", enrollment_id=person.enrollments[-1].enrollment_id,
        counterpart_region="330502", account_balance_fen=0, contribution_months=0, effective_date=date(2025, 7, 3),
        provenance=prov,
    )
    # Late-fee facts (滞纳金缴纳/减免), shape only: their commands need an employer month (test_fee_facts.py).
    person.trigger_event(
        Person.LateFeePaid, voucher_no="LF-1", tax_office="16109020000", region_code="610921", period="2026-01",
        amount_fen=3750, paid_at=datetime(2026, 3, 20, 2, tzinfo=timezone.utc), channel="BANK",
        content_digest="ab" * 32, effective_date=date(2026, 3, 20), provenance=prov,
    )
    person.trigger_event(
        Person.LateFeeWaived, waiver_id="W-1", region_code="610921", period="2026-02", reason="不可抗力",
        approver="li.approver", content_digest="cd" * 32, effective_date=date(2026, 3, 21), provenance=prov,
    )
    person.end_enrollment(
        enrollment_id=None, reason=EnrollmentEndReason.MOVED_OUT, effective_date=date(2026, 8, 1), provenance=prov
    )
    # A merge (参保人合并), shape only: the kept side here (the merged-away side takes no event after its own).
    person.absorb(change_id="C-1", merged_person_id="0b7e3a1c-6a55-5c2e-8f0d-4c2a9e71b3d5", merge_kind="DUPLICATE",
                  reason="重复登记", proposed_by="wang", approved_by="li", effective_date=date(2026, 8, 2),
                  provenance=prov)
    person.record_residence(
        record_id="HJ-1", grid_code="610902100201", status=ResidenceStatus.MOVED_OUT, effective_date=date(2025, 8, 1),
        provenance=prov,
    )
    # ... and later this record merged into another person's: the last event it takes.
    person.merge_into(change_id="C-2", survivor_person_id="1c8f3a1c-6a55-5c2e-8f0d-4c2a9e71b3d6", merge_kind="ID_CORRECTION",
                      reason="证件号码录错", proposed_by="wang", approved_by="li", effective_date=date(2026, 8, 3),
                      provenance=prov)
    return person


@pytest.fixture(scope="module")
def history() -> list:
    return _person().collect_events()


def test_the_history_has_every_event_type(history):
    assert {type(e).__name__ for e in history} == set(person_event_classes())


KEYS = KeyRing.from_texts(new_key())


def test_every_event_round_trips_through_avro(history):
    for event in history:
        data = encode_event(event, keys=KEYS)
        envelope = decode_event(data, keys=KEYS)
        assert envelope["event_type"] == type(event).__name__
        assert envelope["event_id"] == str(event.event_id)
        assert envelope["person_id"] == str(event.originator_id)
        assert envelope["version"] == event.originator_version
        assert envelope["recorded_at"] == event.timestamp
        assert envelope["recorded_at"].tzinfo is not None and envelope["recorded_at"].utcoffset().total_seconds() == 0
        assert envelope["effective_date"] == event.effective_date
        assert envelope["provenance"] == event.provenance
        assert envelope["prev_hash"] == event.prev_hash
        for field in dataclasses.fields(event):
            if field.name in RENAMED_FIELDS or field.name in UNPUBLISHED_FIELDS or field.name in ENVELOPE_FIELDS:
                continue
            assert envelope[field.name] == getattr(event, field.name), f"{type(event).__name__}.{field.name}"


def test_apache_avro_decodes_every_event_to_the_same_values(history):
    registry = default_registry()
    parsed: dict[str, avro.schema.Schema] = {}
    for event in history:
        name, record = event_to_record(event)
        data = registry.encode(name, record)
        if name not in parsed:
            parsed[name] = avro.schema.parse(json.dumps(registry.current(name).schema))
        theirs = avro.io.DatumReader(parsed[name]).read(avro.io.BinaryDecoder(io.BytesIO(data[HEADER_SIZE:])))
        assert to_jsonable(theirs) == to_jsonable(record), name


def test_events_read_back_from_the_event_store_encode_the_same():
    """The publisher encodes events as the store's mapper rebuilds them, not fresh ones."""
    app = Ledger({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policies=default_policy_book(), id_key=b"test-key")
    person = _person()
    events = person.collect_events()
    app.events.put(events)
    stored = list(app.events.get(person.id))
    assert [type(e) for e in stored] == [type(e) for e in events]
    assert [decode_event(encode_event(e, keys=KEYS), keys=KEYS) for e in stored] == [
        decode_event(encode_event(e, keys=KEYS), keys=KEYS) for e in events]


def test_personal_fields_are_published_encrypted_and_masked(history):
    """No clear ID number or name in the bytes; masked values for old readers; the key gives them back."""
    registered = [e for e in history if isinstance(e, Person.Registered)]
    assert registered
    for event in registered:
        data = encode_event(event, keys=KEYS)
        assert event.id_number.encode() not in data and event.name.encode() not in data
        envelope = decode_event(data)  # a reader without the key
        assert envelope["id_number"] == event.id_number[:4] + "*" * 10 + event.id_number[-4:]
        assert envelope["name"] == event.name[0] + "*" * (len(event.name) - 1)
        assert decrypt_field(envelope["id_number_enc"], KEYS) == event.id_number
        assert decrypt_field(envelope["name_enc"], KEYS) == event.name
        with pytest.raises(CipherKeyError):
            decode_event(data, keys=KeyRing.from_texts(new_key()))  # another deployment's key
        rotated = KeyRing.from_texts(new_key(), [b64encode(KEYS.current).decode()])
        assert decode_event(data, keys=rotated)["id_number"] == event.id_number  # an old key still reads


def test_a_version_1_registered_record_still_reads_in_clear():
    """Bytes written before encryption (Registered v1, clear fields, no *_enc) decode as they were."""
    registry = default_registry()
    v1 = next(v for v in registry.versions(f"{NAMESPACE}.Registered") if v.archived)
    sample = SAMPLES[f"{NAMESPACE}.Registered"]
    out = io.BytesIO()
    out.write(v1.header)
    fastavro.schemaless_writer(out, v1.parsed, sample)
    envelope = decode_event(out.getvalue(), keys=KEYS)
    assert envelope["id_number"] == sample["id_number"] and envelope["name"] == sample["name"]


def test_record_to_envelope_gives_plain_python_values(history):
    event = next(e for e in history if isinstance(e, Person.ContributionPaid))
    name, record = default_registry().decode(encode_event(event))
    envelope = record_to_envelope(name, record)
    assert isinstance(envelope["event_id"], str) and isinstance(envelope["person_id"], str)
    assert isinstance(envelope["paid_at"], datetime) and envelope["paid_at"].utcoffset().total_seconds() == 0
    assert isinstance(envelope["period_start"], date)
    assert record_to_envelope("ContributionPaid", record) == envelope


def test_decode_event_refuses_a_record_of_another_contract():
    data = default_registry().encode("cn.medins.tax.v1.TaxPayment", SAMPLES["cn.medins.tax.v1.TaxPayment"])
    with pytest.raises(DomainError) as e:
        decode_event(data)
    assert e.value.code == "EVENT_TYPE_UNKNOWN"
