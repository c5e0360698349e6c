"""Single-object encoding: fingerprints, the registry, and never trusting the bytes."""
from __future__ import annotations

import copy
import json
import random
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import avro.schema
import pytest
from fastavro.schema import fingerprint as fastavro_fingerprint

from events.codec import (
    HEADER_SIZE,
    MAGIC,
    MAX_MESSAGE_BYTES,
    DecodeError,
    EncodeError,
    SchemaError,
    SchemaRegistry,
    canonical_form,
    decode,
    default_registry,
    encode,
    fingerprint_hex,
    rabin_fingerprint,
)
from events.make_fixtures import SAMPLES
from ledger.domain.errors import DomainError

PAID = "cn.medins.ledger.v1.ContributionPaid"

# Apache Avro's cross-language vectors (share/test/data/schema-tests.txt), published
# as the fingerprint read as a signed 64-bit integer.
SPEC_VECTORS = [
    ('"null"', 7195948357588979594),
    ('"boolean"', -6970731678124411036),
    ('"int"', 8247732601305521295),
    ('"long"', -3434872931120570953),
    ('"string"', -8142146995180207161),
    ('{"name":"foo","type":"fixed","size":15}', 1756455273707447556),
    ('{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}', 7843277075252814651),
]


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return default_registry()


# ----------------------------------------------------------------- fingerprints
@pytest.mark.parametrize("canonical,expected", SPEC_VECTORS)
def test_rabin_fingerprint_matches_the_avro_spec_vectors(canonical, expected):
    assert _signed(rabin_fingerprint(canonical.encode())) == expected


def test_every_contract_fingerprint_matches_fastavro_and_apache_avro(registry):
    for entry in registry.entries():
        canonical = canonical_form(entry.schema)
        # fastavro gives the hex of the little-endian bytes, as single-object encoding puts them on the wire.
        assert fastavro_fingerprint(canonical, "CRC-64-AVRO") == fingerprint_hex(entry.fingerprint)
        assert entry.header == MAGIC + bytes.fromhex(fingerprint_hex(entry.fingerprint))
        # Apache avro (Python) keeps {"type": "int"} for a primitive with a logicalType in its
        # canonical form, against the spec; with logical types removed the forms must agree.
        apache = avro.schema.parse(json.dumps(_without_logical_types(entry.schema)))
        assert apache.canonical_form == canonical
        assert int.from_bytes(apache.fingerprint("CRC-64-AVRO"), "little") == entry.fingerprint


def _without_logical_types(schema):
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(v) for v in schema]
    return schema


def test_docs_and_defaults_do_not_change_the_fingerprint(registry):
    entry = registry.current(PAID)
    edited = copy.deepcopy(entry.schema)
    edited["doc"] = "another doc"
    edited["fields"][0]["doc"] = "another field doc"
    assert SchemaRegistry().add(edited, source="edited").fingerprint == entry.fingerprint


# ------------------------------------------------------------------ round trip
def test_every_sample_round_trips(registry):
    for name in registry.names():
        data = registry.encode(name, SAMPLES[name])
        assert data[:2] == MAGIC
        assert data[2:HEADER_SIZE] == registry.current(name).fingerprint.to_bytes(8, "little")
        decoded_name, record = registry.decode(data)
        assert decoded_name == name
        assert set(record) == {f["name"] for f in registry.current(name).schema["fields"]}


def test_module_level_encode_and_decode_use_the_default_registry():
    name, record = decode(encode(PAID, SAMPLES[PAID]))
    assert name == PAID
    assert record["amount_fen"] == 25000
    assert record["event_id"] == SAMPLES[PAID]["event_id"]


def test_an_instant_in_any_time_zone_comes_back_as_the_same_instant_in_utc(registry):
    beijing = timezone(timedelta(hours=8))
    sample = dict(SAMPLES[PAID], paid_at=datetime(2025, 1, 1, 0, 30, 0, 1, tzinfo=beijing))
    _, record = registry.decode(registry.encode(PAID, sample))
    assert record["paid_at"] == sample["paid_at"]
    assert record["paid_at"].utcoffset() == timedelta(0)
    assert record["paid_at"].isoformat() == "2024-12-31T16:30:00.000001+00:00"


def test_uuid_fields_take_text_too(registry):
    event_id = uuid4()
    _, record = registry.decode(registry.encode(PAID, dict(SAMPLES[PAID], event_id=str(event_id))))
    assert record["event_id"] == event_id


# ------------------------------------------------------------------- encoding
@pytest.mark.parametrize(
    "change,field",
    [
        ({"paid_at": datetime(2025, 1, 1, 8, 0)}, "paid_at"),  # naive: which zone?
        ({"period_start": datetime(2025, 1, 1, tzinfo=timezone.utc)}, "period_start"),
        ({"period_start": "2025-01-01"}, "period_start"),
        ({"amount_fen": 250.0}, "amount_fen"),
        ({"amount_fen": True}, "amount_fen"),
        ({"amount_fen": 2**63}, "amount_fen"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"credited_on": "tomorrow"}, "credited_on"),
        ({"provenance": {"source": 1}}, "provenance"),
        ({"surprise": "x"}, "surprise"),
    ],
)
def test_encode_refuses_a_record_that_does_not_fit(registry, change, field):
    with pytest.raises(EncodeError) as e:
        registry.encode(PAID, dict(SAMPLES[PAID], **change))
    assert e.value.code == "AVRO_RECORD_INVALID"
    assert field in e.value.message


def test_encode_refuses_a_missing_required_field_but_fills_defaults(registry):
    sample = dict(SAMPLES[PAID])
    del sample["voucher_no"]
    with pytest.raises(EncodeError, match="voucher_no"):
        registry.encode(PAID, sample)
    sample = dict(SAMPLES[PAID])
    del sample["credited_on"]  # optional: default null
    assert registry.decode(registry.encode(PAID, sample))[1]["credited_on"] is None


def test_encode_refuses_an_enum_symbol_not_in_the_schema(registry):
    with pytest.raises(EncodeError, match="levy_item"):
        registry.encode("cn.medins.tax.v1.TaxPayment", dict(SAMPLES["cn.medins.tax.v1.TaxPayment"], levy_item="OTHER"))


def test_encode_refuses_an_unknown_schema(registry):
    with pytest.raises(EncodeError) as e:
        registry.encode("cn.medins.ledger.v1.NoSuchEvent", {})
    assert e.value.code == "AVRO_UNKNOWN_SCHEMA"


# -------------------------------------------------------------------- decoding
def _code(registry, data, reader=None) -> str:
    with pytest.raises(DecodeError) as e:
        registry.decode(data, reader)
    assert isinstance(e.value, DomainError)
    return e.value.code


def test_wrong_magic_is_bad_magic(registry):
    good = registry.encode(PAID, SAMPLES[PAID])
    assert _code(registry, b"") == "AVRO_BAD_MAGIC"
    assert _code(registry, b"{\"voucher_no\": 1}") == "AVRO_BAD_MAGIC"
    assert _code(registry, b"\xc3\x02" + good[2:]) == "AVRO_BAD_MAGIC"
    assert _code(registry, b"Obj\x01" + good) == "AVRO_BAD_MAGIC"  # an Avro container file is not single-object
    assert _code(registry, "c301") == "AVRO_BAD_MAGIC"  # not bytes at all


def test_unknown_fingerprint_is_unknown_schema(registry):
    good = registry.encode(PAID, SAMPLES[PAID])
    data = MAGIC + (registry.current(PAID).fingerprint ^ 1).to_bytes(8, "little") + good[HEADER_SIZE:]
    assert _code(registry, data) == "AVRO_UNKNOWN_SCHEMA"
    # The big-endian fingerprint (a common producer mistake) is not found either.
    data = MAGIC + registry.current(PAID).fingerprint.to_bytes(8, "big") + good[HEADER_SIZE:]
    assert _code(registry, data) == "AVRO_UNKNOWN_SCHEMA"


def test_truncated_header_or_body_is_body_invalid(registry):
    good = registry.encode(PAID, SAMPLES[PAID])
    for cut in range(2, len(good)):
        assert _code(registry, good[:cut]) == "AVRO_BODY_INVALID", cut


def test_bytes_left_over_are_body_invalid(registry):
    good = registry.encode(PAID, SAMPLES[PAID])
    assert _code(registry, good + b"\x00") == "AVRO_BODY_INVALID"


def test_a_message_above_the_size_limit_is_refused_unread(registry):
    header = registry.current(PAID).header
    assert _code(registry, header + bytes(MAX_MESSAGE_BYTES)) == "AVRO_TOO_LARGE"


def test_a_huge_or_negative_length_in_the_body_does_not_allocate_or_hang(registry):
    header = registry.current(PAID).header
    event_id = b"\x48" + str(uuid4()).encode()
    huge = b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f"  # zig-zag varint of a length near 2**62
    assert _code(registry, header + event_id + huge) == "AVRO_BODY_INVALID"
    assert _code(registry, header + b"\x01" + b"x" * 100) == "AVRO_BODY_INVALID"  # length -1


def test_garbage_after_a_valid_header_never_escapes_as_another_error(registry):
    rng = random.Random(20240601)
    names = registry.names()
    for i in range(1500):
        header = registry.current(names[i % len(names)]).header
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
        try:
            registry.decode(header + body)
        except DecodeError as e:
            # AVRO_MALFORMED: the garbage holds a varint longer than its type allows (refused, not wrapped)
            assert e.code in {"AVRO_BODY_INVALID", "AVRO_MALFORMED"}, e.code


def test_flipped_bytes_in_real_records_never_escape_as_another_error(registry):
    rng = random.Random(7)
    for name in registry.names():
        good = bytearray(registry.encode(name, SAMPLES[name]))
        for _ in range(80):
            bad = bytearray(good)
            for _ in range(rng.randrange(1, 4)):
                bad[rng.randrange(HEADER_SIZE, len(bad))] = rng.randrange(256)
            try:
                registry.decode(bytes(bad))
            except DecodeError as e:
                assert e.code in {"AVRO_BODY_INVALID", "AVRO_MALFORMED"}, e.code


def test_a_reader_of_another_record_is_a_mismatch(registry):
    data = registry.encode(PAID, SAMPLES[PAID])
    assert _code(registry, data, reader="cn.medins.tax.v1.TaxPayment") == "AVRO_SCHEMA_MISMATCH"
    assert _code(registry, data, reader="cn.medins.tax.v1.NoSuchThing") == "AVRO_UNKNOWN_SCHEMA"
    assert registry.decode(data, reader=PAID)[0] == PAID


def test_writer_of_routes_a_message_without_decoding_it(registry):
    data = registry.encode(PAID, SAMPLES[PAID])
    assert registry.writer_of(data).full_name == PAID


# -------------------------------------------------------------------- registry
def test_two_current_schemas_of_one_record_are_refused(registry):
    fresh = SchemaRegistry()
    fresh.add(registry.current(PAID).schema, source="a.avsc")
    changed = copy.deepcopy(registry.current(PAID).schema)
    changed["fields"].append({"name": "extra", "type": ["null", "string"], "default": None, "doc": "x"})
    with pytest.raises(SchemaError) as e:
        fresh.add(changed, source="b.avsc")
    assert e.value.code == "AVRO_SCHEMA_INVALID"
    assert "archive" in e.value.message


def test_a_broken_schema_file_is_a_schema_error(tmp_path):
    (tmp_path / "Broken.avsc").write_text('{"type": "record", "name": "Broken", "fields": [{"name": "x"}]}')
    with pytest.raises(SchemaError):
        SchemaRegistry.from_directory(tmp_path)
    (tmp_path / "Broken.avsc").write_text("{not json")
    with pytest.raises(SchemaError):
        SchemaRegistry.from_directory(tmp_path)


def test_the_registry_knows_every_contract(registry):
    names = set(registry.names())
    assert {n for n in names if n.startswith("cn.medins.ledger.v1.")}
    assert {
        "cn.medins.tax.v1.TaxPayment",
        "cn.medins.tax.v1.TaxStatementHeader",
        "cn.medins.tax.v1.TaxStatementLine",
        "cn.medins.registry.v1.SubsidyStatus",
        "cn.medins.registry.v1.ResidentRecord",
    } <= names
    for entry in registry.entries():
        assert 0 <= entry.fingerprint < 1 << 64


# ------------------------------------------------- the compiled quick check
_ODD_VALUES = [
    None, True, False, 0, -1, 2**31, 2**63, 1.5, float("nan"), "", "x", "RESIDENT", str(uuid4()), uuid4(),
    datetime(2025, 1, 1), datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 1).date(),
    {}, {"a": "b"}, {"a": 1}, {1: "b"}, [], ["x"], (), b"x", bytearray(b"x"),
]


def _check_passes(registry, name, record) -> bool:
    from events.codec import _check

    entry = registry.current(name)
    try:
        _check(entry.parsed, record, entry.parsed["__named_schemas"], name)
    except EncodeError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_quick_check_accepts_only_what_the_full_check_accepts(registry, name):
    from events.codec import _compile_accepts

    entry = registry.current(name)
    accepts = _compile_accepts(entry.parsed, entry.parsed["__named_schemas"])
    sample = SAMPLES[name]
    assert _check_passes(registry, name, sample)
    records = [dict(sample, surprise="x"), {k: v for k, v in sample.items() if k != next(iter(sample))}]
    for field in sample:
        records += [dict(sample, **{field: odd}) for odd in _ODD_VALUES]
        records.append({k: v for k, v in sample.items() if k != field})
    for record in records:
        if accepts(record):
            assert _check_passes(registry, name, record), (field, record)
