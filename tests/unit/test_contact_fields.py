"""Address and phone from the residents feed (issue 21): an optional part of the contract (Avro version 2,
old records still decode), kept on the person like the name (never in the views), encrypted at rest and on
ledger.events.v1, in full for the grid worker of the grid and the region's clerks, masked for auditors."""
from __future__ import annotations

import hashlib
import io
import json
from datetime import date

from fastavro import parse_schema, schemaless_writer

from entrypoints.wiring import bootstrap
from events import codec
from events.inbound import resident_record_from_avro, resident_record_to_avro
from events.ledger_events import decode_event, encode_event
from infra.settings import Settings
from ledger.domain.chain import canonical, event_digest
from ledger.domain.person import Person
from ledger.inbound_records import Provenance, ResidentRecord
from tests.unit.http_support import AUDITOR, CLERK, GRID_A, GRID_WORKER_A, TOWNSHIP_WORKER, client, number, system  # noqa: F401
from tests.unit.test_web_page import PERIOD, grids  # noqa: F401  (fixture)

REGISTRY = Provenance(source="kafka", topic="registry.residents.v1", partition=0, offset=7)
PHONE, ADDRESS = "138-0000-0001", "陕西省安康市汉滨区关庙镇关庙社区 3 组 12 号"


def residence(n: str, record_id: str = "HJ-1", **contact) -> ResidentRecord:
    return ResidentRecord(record_id=record_id, id_type="RESIDENT_ID", id_number=n, name="王芳", grid_code=GRID_A,
                          status="RESIDENT", effective_date=date(2024, 9, 1), **contact)


def test_the_feed_record_carries_them_and_an_old_record_still_decodes():
    registry = codec.default_registry()
    record = resident_record_to_avro(residence(number(71), address=ADDRESS, phone=PHONE))
    name, back = registry.decode(registry.encode("cn.medins.registry.v1.ResidentRecord", record))
    assert (back["address"], back["phone"]) == (ADDRESS, PHONE)
    # bytes written with version 1 (no address, no phone) read with None for both
    v1 = json.loads(open("schemas/archive/cn.medins.registry.v1.ResidentRecord.v1.avsc", encoding="utf-8").read())
    old = {k: v for k, v in record.items() if k not in ("address", "phone")}
    body = io.BytesIO()
    schemaless_writer(body, parse_schema(v1), old)
    data = b"\xc3\x01" + codec.schema_fingerprint(v1).to_bytes(8, "little") + body.getvalue()
    _, decoded = registry.decode(data)
    back = resident_record_from_avro(decoded)
    assert (back.address, back.phone, back.name) == (None, None, "王芳")


def test_the_person_keeps_them_the_published_event_masks_and_encrypts_them(system):  # noqa: F811
    ledger = system.ledger
    n = number(72)
    ledger.apply_residence(residence(n, address=ADDRESS, phone=PHONE), provenance=REGISTRY)
    person = ledger.find_person("RESIDENT_ID", n)
    assert (person.address, person.phone) == (ADDRESS, PHONE)
    # a later record without them keeps them; one with a new phone replaces only the phone
    ledger.apply_residence(residence(n, "HJ-2"), provenance=REGISTRY)
    ledger.apply_residence(residence(n, "HJ-3", phone="13911112222"), provenance=REGISTRY)
    person = ledger.find_person("RESIDENT_ID", n)
    assert (person.address, person.phone) == (ADDRESS, "13911112222")
    event = next(e for e in ledger.events.get(person.id) if type(e).__name__ == "ResidenceRecorded")
    data = encode_event(event, keys=system.keys)
    assert PHONE.encode() not in data and ADDRESS.encode() not in data
    published = decode_event(data)
    assert published["phone"] == "138****0001" and published["address"] == "陕西省安康市***"
    assert published["phone_enc"] and published["address_enc"]
    clear = decode_event(data, keys=system.keys)
    assert (clear["phone"], clear["address"]) == (PHONE, ADDRESS)


def test_an_event_without_them_digests_as_version_1_did(system):  # noqa: F811
    ledger = system.ledger
    n = number(73)
    ledger.apply_residence(residence(n), provenance=REGISTRY)
    person = ledger.find_person("RESIDENT_ID", n)
    event = next(e for e in ledger.events.get(person.id) if type(e).__name__ == "ResidenceRecorded")
    assert event.address is None and event.phone is None
    v1_fields = {k: v for k, v in vars(event).items() if k not in ("address", "phone", "originator_topic")}
    body = json.dumps({"type": type(event).__qualname__, "fields": canonical(v1_fields)}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    assert event_digest(event) == hashlib.sha256(body.encode()).hexdigest()
    # and a v1 stored state upcasts to None for both
    state = {"record_id": "x", "grid_code": None, "status": "RESIDENT"}
    Person.ResidenceRecorded.upcast_v1_v2(state)
    assert state["address"] is None and state["phone"] is None


def test_they_are_encrypted_at_rest(tmp_path):
    system = bootstrap(Settings(persistence="sqlite", sqlite_path=str(tmp_path / "ledger.sqlite"), id_key=b"c",
                                cipher_keys=("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",),
                                views_path=str(tmp_path / "v.sqlite"), recon_path=str(tmp_path / "r.sqlite"),
                                digests_path=str(tmp_path / "d.jsonl")))
    try:
        system.ledger.apply_residence(residence(number(74), address=ADDRESS, phone="13800000001"), provenance=REGISTRY)
        assert system.ledger.find_person("RESIDENT_ID", number(74)).phone == "13800000001"
    finally:
        system.close()
    raw = (tmp_path / "ledger.sqlite").read_bytes()
    assert b"13800000001" not in raw and ADDRESS.encode() not in raw


def test_the_grid_worker_and_the_regions_clerk_see_them_the_auditor_masked(client, system, grids):  # noqa: F811
    system.ledger.apply_residence(residence(grids["subsidised"], address=ADDRESS, phone=PHONE), provenance=REGISTRY)
    seen = {}
    for who, headers in (("grid", GRID_WORKER_A), ("township", TOWNSHIP_WORKER), ("clerk", CLERK),
                         ("auditor", AUDITOR)):
        rows = client.get(f"/grids/{GRID_A}/gaps", params=PERIOD, headers=headers).json()["gaps"]
        row = next(r for r in rows if r["reason"] == "SUBSIDISED_NOT_COVERED")
        sheet = client.get(f"/entitlements/{row['person_id']}", params={"year": 2025, "on": "2025-03-01"},
                           headers=headers).json()
        assert (sheet["phone"], sheet["address"], sheet["contact_masked"]) == \
            (row["phone"], row["address"], row["contact_masked"])
        seen[who] = (row["phone"], row["address"])
    assert seen["grid"] == seen["township"] == seen["clerk"] == (PHONE, ADDRESS)
    assert seen["auditor"] == ("138****0001", "陕西省安康市***")
    others = client.get(f"/grids/{GRID_A}/gaps", params=PERIOD, headers=GRID_WORKER_A).json()["gaps"]
    assert [r["phone"] for r in others if r["reason"] != "SUBSIDISED_NOT_COVERED"] == [None]


def test_the_person_sheet_links_the_phone_for_a_call(client):  # noqa: F811
    html = client.get("/web/").text
    assert 'id="person-contact"' in html and '"tel:" + digits' in html
