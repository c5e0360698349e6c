"""The Avro contracts stay readable: old bytes, another implementation, schema evolution, conventions."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import avro.io
import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from events.codec import (
    ARCHIVE_DIR_NAME,
    HEADER_SIZE,
    DecodeError,
    SCHEMA_ROOT,
    SchemaRegistry,
    default_registry,
    to_jsonable,
)
from events.make_fixtures import FIXTURE_ROOT, SAMPLES, fixture_files

TEST_ARCHIVE = FIXTURE_ROOT / "archive"


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return default_registry()


@pytest.fixture(scope="module")
def registry_with_test_archive() -> SchemaRegistry:
    return SchemaRegistry.from_directory(SCHEMA_ROOT, extra_archives=[TEST_ARCHIVE])


def _apache_read(body: bytes, writer: dict, reader: dict | None = None):
    writer_schema = avro.schema.parse(json.dumps(writer))
    reader_schema = avro.schema.parse(json.dumps(reader)) if reader is not None else writer_schema
    return avro.io.DatumReader(writer_schema, reader_schema).read(avro.io.BinaryDecoder(io.BytesIO(body)))


# ------------------------------------------------------------- old bytes decode
def test_there_are_fixtures():
    assert len(fixture_files()) >= len(SAMPLES)


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_fixture_still_decodes_to_what_it_decoded_to_when_written(registry, path):
    name, record = registry.decode(path.read_bytes())
    assert name == path.stem
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    got = to_jsonable(record)
    for key, value in expected.items():
        assert got.get(key) == value, key
    # Fields added since the fixture was written must have come from their defaults.
    fields = {f["name"]: f for f in registry.current(name).schema["fields"]}
    for key in set(got) - set(expected):
        assert "default" in fields[key], f"{key} was added without a default"
        assert got[key] == fields[key]["default"], key


def test_every_current_schema_version_has_a_fixture(registry):
    covered = {int.from_bytes(p.read_bytes()[2:HEADER_SIZE], "little") for p in fixture_files()}
    missing = [n for n in registry.names() if registry.current(n).fingerprint not in covered]
    assert not missing, f"run `python -m events.make_fixtures` and check in the files for: {missing}"


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_apache_avro_reads_every_fixture_the_same(registry, path):
    """An independent implementation reads our bytes to the same values."""
    data = path.read_bytes()
    writer = registry.writer_of(data)
    ours = registry.decode(data)[1]
    theirs = _apache_read(data[HEADER_SIZE:], writer.schema, registry.current(writer.full_name).schema)
    assert to_jsonable(theirs) == to_jsonable(ours)


# --------------------------------------------------------------- schema evolution
def test_an_older_version_decodes_into_the_current_reader(registry_with_test_archive):
    old_registry = SchemaRegistry.from_directory(TEST_ARCHIVE)  # the old versions as if current
    for name, dropped in [
        ("cn.medins.ledger.v1.AccountDebited", {"relative_person_id": None, "relative_relationship": None}),
        ("cn.medins.registry.v1.ResidentRecord", {"extra": {}}),
    ]:
        old_sample = {k: v for k, v in SAMPLES[name].items() if k not in dropped}
        old_bytes = old_registry.encode(name, old_sample)
        assert old_bytes[2:HEADER_SIZE] != registry_with_test_archive.current(name).header[2:]
        decoded_name, record = registry_with_test_archive.decode(old_bytes)
        assert decoded_name == name
        as_if_new = registry_with_test_archive.encode(name, {**old_sample, **dropped})
        assert record == registry_with_test_archive.decode(as_if_new)[1]


def test_without_the_archived_version_old_bytes_are_an_unknown_schema(registry):
    old_registry = SchemaRegistry.from_directory(TEST_ARCHIVE)
    name = "cn.medins.registry.v1.ResidentRecord"
    old_bytes = old_registry.encode(name, {k: v for k, v in SAMPLES[name].items() if k != "extra"})
    with pytest.raises(DecodeError) as e:
        registry.decode(old_bytes)
    assert e.value.code == "AVRO_UNKNOWN_SCHEMA"


def _archived_files() -> list[Path]:
    return sorted((SCHEMA_ROOT / ARCHIVE_DIR_NAME).rglob("*.avsc")) + sorted(TEST_ARCHIVE.glob("*.avsc"))


@pytest.mark.parametrize("path", _archived_files(), ids=lambda p: p.name)
def test_every_archived_version_is_readable_by_the_current_schema(registry, path):
    """Apache Avro's own compatibility check: the current reader can read each old writer."""
    old = json.loads(path.read_text(encoding="utf-8"))
    match = re.fullmatch(r"(?P<name>[\w.]+)\.v(?P<n>\d+)\.avsc", path.name)
    assert match, f"archived file {path.name} must be named <FullName>.v<N>.avsc"
    full_name = f"{old['namespace']}.{old['name']}" if "namespace" in old else old["name"]
    assert match["name"] == full_name
    current = registry.current(full_name)
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(json.dumps(current.schema)), avro.schema.parse(json.dumps(old))
    )
    assert result.compatibility is SchemaCompatibilityType.compatible, result.messages


def test_the_compatibility_check_does_catch_a_field_added_without_default(registry):
    current = registry.current("cn.medins.ledger.v1.AccountCredited").schema
    broken = json.loads(json.dumps(current))
    broken["fields"].append({"name": "new_field", "type": "string", "doc": "no default"})
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(json.dumps(broken)), avro.schema.parse(json.dumps(current))
    )
    assert result.compatibility is SchemaCompatibilityType.incompatible


def test_an_older_reader_sees_a_new_enum_symbol_as_its_default(registry):
    """Why the inbound enums carry a default: a new symbol does not break old consumers."""
    name = "cn.medins.tax.v1.TaxPayment"
    newer = json.loads(json.dumps(registry.current(name).schema))
    levy = next(f for f in newer["fields"] if f["name"] == "levy_item")
    levy["type"]["symbols"].append("LONG_TERM_CARE")
    newer_registry = SchemaRegistry()
    newer_registry.add(newer)
    data = newer_registry.encode(name, dict(SAMPLES[name], levy_item="LONG_TERM_CARE"))
    mixed = SchemaRegistry.from_directory(SCHEMA_ROOT)
    mixed.add(newer, archived=True, source="newer producer")
    assert mixed.decode(data)[1]["levy_item"] == "UNKNOWN"
    # Apache avro for Python (1.12) ignores the reader's enum default and raises instead
    # (Java honours it); schemas/README.md tells consumers on it to update first.


# -------------------------------------------------------------------- conventions
def _all_schema_files() -> list[Path]:
    return sorted(p for p in SCHEMA_ROOT.rglob("*.avsc") if ARCHIVE_DIR_NAME not in p.relative_to(SCHEMA_ROOT).parts)


NAMESPACES = {"ledger": {"cn.medins.ledger.v1"}, "inbound": {"cn.medins.tax.v1", "cn.medins.registry.v1"}}


@pytest.mark.parametrize("path", _all_schema_files(), ids=lambda p: p.name)
def test_schema_files_follow_the_conventions(path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    area = path.relative_to(SCHEMA_ROOT).parts[0]
    assert schema["type"] == "record"
    assert schema["namespace"] in NAMESPACES[area]
    if area == "ledger":
        assert path.name == f"{schema['name']}.avsc"
    else:  # named for the topic the record travels on: tax.* or registry.*
        assert path.name.startswith(schema["namespace"].split(".")[2] + "."), path.name
        assert re.fullmatch(r"[a-z]+\.[a-z]+\.v\d+(\.[a-z]+)?\.avsc", path.name)
    assert schema.get("doc"), f"{path.name}: the record needs a doc"
    for field in schema["fields"]:
        where = f"{path.name}:{field['name']}"
        assert field.get("doc"), f"{where}: every field needs a doc"
        assert re.fullmatch(r"[a-z][a-z0-9_]*", field["name"]), where
        ftype = field["type"]
        if field["name"].endswith("_fen"):
            assert ftype in ("long", ["null", "long"]), f"{where}: money is a long number of fen"
        if isinstance(ftype, list):
            assert ftype[0] == "null" and len(ftype) == 2, f"{where}: optional fields are [null, T]"
            assert "default" in field and field["default"] is None, f"{where}: optional fields default to null"
        if isinstance(ftype, dict) and ftype.get("type") == "enum":
            assert ftype.get("default") in ftype["symbols"], f"{where}: an enum needs a default symbol"
            assert ftype.get("doc"), where
        for t in ftype if isinstance(ftype, list) else [ftype]:
            if isinstance(t, dict) and t.get("type") in ("int", "long"):
                assert t.get("logicalType") in ("date", "timestamp-micros"), where
            if field["name"].endswith(("_date", "_on", "_from", "_to")) or field["name"] in ("period_start", "period_end"):
                assert t == "null" or t == {"type": "int", "logicalType": "date"}, f"{where}: dates are int/date"
            if field["name"].endswith("_at"):
                assert t == {"type": "long", "logicalType": "timestamp-micros"}, f"{where}: instants are timestamp-micros"


def test_named_types_defined_in_several_files_are_identical():
    seen: dict[str, tuple[str, dict]] = {}

    def walk(node, path):
        if isinstance(node, dict):
            if node.get("type") in ("enum", "record", "fixed"):
                definition = {k: v for k, v in node.items() if k != "doc"}
                name = node["name"] if "." in node["name"] else f"{namespace}.{node['name']}"
                if name in seen and seen[name][1] != definition:
                    pytest.fail(f"{name} differs between {seen[name][0]} and {path.name}")
                seen.setdefault(name, (path.name, definition))
            for value in node.values():
                walk(value, path)
        elif isinstance(node, list):
            for value in node:
                walk(value, path)

    for path in _all_schema_files():
        schema = json.loads(path.read_text(encoding="utf-8"))
        namespace = schema["namespace"]
        for field in schema["fields"]:
            walk(field["type"], path)
    assert "cn.medins.tax.v1.LevyItem" in seen
