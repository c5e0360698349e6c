"""Avro single-object encoding (Avro 单对象编码) of the ledger's Kafka contracts.

Every record the ledger publishes or takes in travels as::

    C3 01 | 8-byte CRC-64-AVRO fingerprint (little-endian) | Avro binary body

The fingerprint is the Rabin CRC-64 of the writer schema's Parsing Canonical Form,
so a reader finds the exact schema the bytes were written with, without a schema
registry server. A reader also accepts the fingerprint Apache Avro for Python gives
the same schema (its canonical form keeps ``{"type":"int"}`` for a logical type; see
``schemas/README.md``). :class:`SchemaRegistry` holds the ``.avsc`` files under
``schemas/``: the current version of every record (the reader schema) and the
older versions kept in ``schemas/archive/`` (writer schemas only), so bytes written
years ago still decode, upgraded to the current shape by Avro schema resolution.

Decoding never trusts its input: a wrong magic, an unknown fingerprint, a truncated
or garbled body each raise :class:`DecodeError` (a :class:`DomainError` with a
stable code) so a consumer can dead-letter the record and carry on.

    AVRO_BAD_MAGIC       not single-object encoded (or not bytes at all)
    AVRO_UNKNOWN_SCHEMA  fingerprint (or reader name) not in the registry
    AVRO_BODY_INVALID    header cut short, body truncated, garbled or with bytes left over
    AVRO_MALFORMED       a varint longer than its type allows (long > 10 bytes or beyond 64 bits,
                         int > 5 bytes or beyond 32 bits): refused, never wrapped
    AVRO_TOO_LARGE       message above the size limit
    AVRO_SCHEMA_MISMATCH writer and requested reader schema cannot be resolved
    AVRO_RECORD_INVALID  (encoding) the record does not fit its schema
    AVRO_SCHEMA_INVALID  (loading) a schema file is broken or contradicts another
"""
from __future__ import annotations

import io
import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from ledger.domain.errors import DomainError

#: Where the contract files live: ``schemas/ledger``, ``schemas/inbound``, ``schemas/archive``.
SCHEMA_ROOT = Path(__file__).resolve().parent.parent / "schemas"
#: Directory name whose files are older versions: writer schemas only.
ARCHIVE_DIR_NAME = "archive"

MAGIC = b"\xc3\x01"
HEADER_SIZE = len(MAGIC) + 8
#: Kafka's default ``max.message.bytes``; no contract record comes near it, so
#: anything larger is garbage and is refused before any parsing.
MAX_MESSAGE_BYTES = 1_048_588

def rabin_fingerprint(data: bytes) -> int:
    """CRC-64-AVRO (Rabin) fingerprint of ``data`` as an unsigned 64-bit int (Avro spec).

    fastavro computes it (``fastavro.schema.fingerprint``, the same bytes as the table this
    module used to carry); its hex is of the little-endian bytes, as on the wire.
    """
    return int.from_bytes(bytes.fromhex(fastavro_fingerprint(data.decode("utf-8"), "CRC-64-AVRO")), "little")


def canonical_form(schema: Mapping[str, Any] | str) -> str:
    """Parsing Canonical Form of a schema (Avro spec): what the fingerprint is taken over.

    It drops docs, defaults, aliases and logical types, so a change of those alone
    keeps the fingerprint (and such a change needs no archived copy).
    """
    return to_parsing_canonical_form(_parse(schema))


def schema_fingerprint(schema: Mapping[str, Any] | str) -> int:
    return rabin_fingerprint(canonical_form(schema).encode("utf-8"))


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def apache_python_canonical_form(schema: Mapping[str, Any] | str) -> str:
    """The canonical form Apache Avro for Python (1.12) computes, which its fingerprint is taken over.

    It differs from the spec's in one place: a primitive with a logical type stays an
    object, ``{"type":"int"}`` instead of ``"int"`` (the spec's [PRIMITIVES] rule turns
    it into the bare name; Java and fastavro follow the spec). Everything else is the
    spec's form: full names, only name/type/fields/symbols/items/values/size, in that
    order, a named type written out once and then referred to by its full name.
    """
    if isinstance(schema, str):
        schema = json.loads(schema)
    return _apache_pcf(schema, "", set())


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _full_name(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _apache_pcf(schema: Any, namespace: str, seen: set[str]) -> str:
    if isinstance(schema, str):
        return _json(schema if schema in _PRIMITIVES else _full_name(schema, namespace))
    if isinstance(schema, list):
        return "[" + ",".join(_apache_pcf(branch, namespace, seen) for branch in schema) + "]"
    kind = schema["type"]
    if not isinstance(kind, str):
        return _apache_pcf(kind, namespace, seen)
    if kind in _PRIMITIVES:
        return _json({"type": kind}) if "logicalType" in schema else _json(kind)
    if kind == "array":
        return '{"type":"array","items":' + _apache_pcf(schema["items"], namespace, seen) + "}"
    if kind == "map":
        return '{"type":"map","values":' + _apache_pcf(schema["values"], namespace, seen) + "}"
    full = _full_name(schema["name"], schema.get("namespace", namespace))
    if full in seen:
        return _json(full)
    seen.add(full)
    inner = full.rpartition(".")[0]
    parts = [f'"name":{_json(full)}', f'"type":{_json(kind)}']
    if kind in ("record", "error"):
        fields = ",".join(f'{{"name":{_json(f["name"])},"type":{_apache_pcf(f["type"], inner, seen)}}}'
                          for f in schema["fields"])
        parts.append(f'"fields":[{fields}]')
    elif kind == "enum":
        parts.append(f'"symbols":{_json(list(schema["symbols"]))}')
    elif kind == "fixed":
        parts.append(f'"size":{int(schema["size"])}')
    return "{" + ",".join(parts) + "}"


def fingerprint_hex(fingerprint: int) -> str:
    """The fingerprint as the 16 hex digits of its little-endian bytes (as on the wire)."""
    return fingerprint.to_bytes(8, "little").hex()


# ----------------------------------------------------------------------- errors
class AvroError(DomainError):
    """An Avro contract problem; the code says which."""


class DecodeError(AvroError):
    """Bytes that cannot be read as a contract record: dead-letter them with the code."""


class EncodeError(AvroError):
    """A record that does not fit its schema: a producer bug, nothing was written."""

    http_status = 500


class SchemaError(AvroError):
    """A schema file is broken or contradicts another one: a deployment bug."""

    http_status = 500


# --------------------------------------------------------------------- registry
@dataclass(frozen=True)
class SchemaEntry:
    """One version of one record schema."""

    full_name: str
    fingerprint: int
    schema: dict[str, Any]  # the .avsc as written, with docs
    parsed: dict[str, Any]  # fastavro's parsed form
    source: str  # file it came from
    archived: bool
    #: The fingerprint Apache Avro for Python gives the same schema (see
    #: :func:`apache_python_canonical_form`); equal to ``fingerprint`` without logical types.
    apache_python_fingerprint: int = 0

    @property
    def header(self) -> bytes:
        return MAGIC + self.fingerprint.to_bytes(8, "little")


class SchemaRegistry:
    """The contract schemas, by fingerprint (writers) and by full name (current readers)."""

    def __init__(self) -> None:
        self._by_fingerprint: dict[int, SchemaEntry] = {}
        #: Apache Avro for Python's fingerprints of the same schemas, where they differ (accepted on read).
        self._aliases: dict[int, SchemaEntry] = {}
        self._current: dict[str, SchemaEntry] = {}
        #: Per fingerprint, the compiled quick acceptance of a record (see :func:`_compile_accepts`).
        self._accepts: dict[int, Callable[[Any], bool]] = {}
        #: Per fingerprint, the varint strictness check of a body (see :class:`_Strictness`).
        self._strict: dict[int, _Strictness] = {}

    # -- loading
    @classmethod
    def from_directory(
        cls, root: Path | str = SCHEMA_ROOT, *, extra_archives: Iterable[Path | str] = ()
    ) -> SchemaRegistry:
        """Load every ``*.avsc`` under ``root``; files under an ``archive/`` directory are old versions.

        ``extra_archives`` adds further old-version files or directories (tests use it).
        """
        registry = cls()
        root = Path(root)
        files = [(ARCHIVE_DIR_NAME in p.relative_to(root).parts, p) for p in root.rglob("*.avsc")]
        # Current versions first, so an archived copy with the same fingerprint
        # (a doc-only change) never shadows the current file.
        for archived, path in sorted(files):
            registry.load_file(path, archived=archived)
        for extra in extra_archives:
            extra = Path(extra)
            for path in sorted(extra.rglob("*.avsc")) if extra.is_dir() else [extra]:
                registry.load_file(path, archived=True)
        return registry

    def load_file(self, path: Path | str, *, archived: bool) -> SchemaEntry:
        path = Path(path)
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise SchemaError("AVRO_SCHEMA_INVALID", f"cannot read schema file {path}: {e}", source=str(path)) from None
        return self.add(schema, archived=archived, source=str(path))

    def add(self, schema: Mapping[str, Any], *, archived: bool = False, source: str = "<memory>") -> SchemaEntry:
        """Register one schema version; a current one becomes the reader for its full name."""
        if not isinstance(schema, Mapping) or schema.get("type") != "record":
            raise SchemaError("AVRO_SCHEMA_INVALID", f"{source}: a contract schema must be one Avro record", source=source)
        try:
            parsed = _parse(schema)
            canonical = to_parsing_canonical_form(parsed)
        except Exception as e:  # fastavro raises several unrelated types here
            raise SchemaError("AVRO_SCHEMA_INVALID", f"{source}: {e}", source=source) from None
        entry = SchemaEntry(
            full_name=parsed["name"],
            fingerprint=rabin_fingerprint(canonical.encode("utf-8")),
            schema=dict(schema),
            parsed=parsed,
            source=source,
            archived=archived,
            apache_python_fingerprint=rabin_fingerprint(apache_python_canonical_form(schema).encode("utf-8")),
        )
        if not archived:
            other = self._current.get(entry.full_name)
            if other is not None:
                raise SchemaError(
                    "AVRO_SCHEMA_INVALID",
                    f"{entry.full_name} has two current schemas ({other.source} and {source}); "
                    f"move the older one to schemas/{ARCHIVE_DIR_NAME}/",
                    full_name=entry.full_name,
                )
            self._current[entry.full_name] = entry
        known = self._by_fingerprint.get(entry.fingerprint)
        if known is None:
            self._by_fingerprint[entry.fingerprint] = entry
        elif known.full_name != entry.full_name:  # would need a 64-bit collision
            raise SchemaError("AVRO_SCHEMA_INVALID", f"{source} and {known.source} share a fingerprint")
        alias = entry.apache_python_fingerprint
        if alias != entry.fingerprint:
            other = self._by_fingerprint.get(alias) or self._aliases.get(alias)
            if other is not None and other.full_name != entry.full_name:
                raise SchemaError("AVRO_SCHEMA_INVALID", f"{source} and {other.source} share a fingerprint")
            self._aliases.setdefault(alias, self._by_fingerprint[entry.fingerprint])
        return entry

    # -- lookups
    def names(self) -> list[str]:
        """Full names of every record with a current schema."""
        return sorted(self._current)

    def entries(self) -> list[SchemaEntry]:
        """Every registered version (one per fingerprint)."""
        return sorted(self._by_fingerprint.values(), key=lambda e: (e.full_name, e.archived, e.source))

    def versions(self, full_name: str) -> list[SchemaEntry]:
        """Every known version of a record: the archived ones, then the current one."""
        return sorted(
            (e for e in self._by_fingerprint.values() if e.full_name == full_name),
            key=lambda e: (not e.archived, e.source),
        )

    def current(self, full_name: str) -> SchemaEntry:
        entry = self._current.get(full_name)
        if entry is None:
            raise DecodeError(
                "AVRO_UNKNOWN_SCHEMA", f"no current schema named {full_name!r} in schemas/", full_name=full_name
            )
        return entry

    def writer(self, fingerprint: int) -> SchemaEntry:
        """The schema a message was written with: by the spec's fingerprint (ours, Java's, fastavro's)
        or by the one Apache Avro for Python computes for the same schema."""
        entry = self._by_fingerprint.get(fingerprint) or self._aliases.get(fingerprint)
        if entry is None:
            raise DecodeError(
                "AVRO_UNKNOWN_SCHEMA",
                f"the record was written with a schema this ledger does not know (fingerprint "
                f"{fingerprint_hex(fingerprint)}); deploy the producer's schema to schemas/ first",
                fingerprint=fingerprint_hex(fingerprint),
            )
        return entry

    def writer_of(self, data: bytes) -> SchemaEntry:
        """The writer schema named by a message's header (to route it before decoding)."""
        return self.writer(_read_header(data))

    # -- encoding
    def encode(self, full_name: str, record: Mapping[str, Any]) -> bytes:
        """Single-object encode ``record`` with the current schema of ``full_name``."""
        entry = self._current.get(full_name)
        if entry is None:
            raise EncodeError("AVRO_UNKNOWN_SCHEMA", f"no current schema named {full_name!r} to encode with")
        accepts = self._accepts.get(entry.fingerprint)
        if accepts is None:
            accepts = self._accepts[entry.fingerprint] = _compile_accepts(entry.parsed, entry.parsed["__named_schemas"])
        if not accepts(record):
            # Whatever the quick check does not vouch for gets the full check (and its error message).
            _check(entry.parsed, record, entry.parsed["__named_schemas"], full_name)
        out = io.BytesIO()
        out.write(entry.header)
        try:
            schemaless_writer(out, entry.parsed, record)
        except Exception as e:  # _check should have caught it; keep the contract anyway
            raise EncodeError("AVRO_RECORD_INVALID", f"{full_name}: {e}") from None
        return out.getvalue()

    # -- decoding
    def check_varints(self, writer: SchemaEntry, data: bytes) -> None:
        """Refuse a body with an over-long varint (AVRO_MALFORMED) before fastavro wraps it.

        :meth:`decode` runs it; a caller that reads with fastavro itself (a fast path) must too.
        """
        strict = self._strict.get(writer.fingerprint)
        if strict is None:
            strict = self._strict[writer.fingerprint] = _Strictness.of(writer.parsed)
        buf = bytes(data)
        if buf[HEADER_SIZE:].isascii() or (strict.long_runs_only and _LONG_RUN.search(buf, HEADER_SIZE) is None):
            return
        try:
            strict.walk(buf, HEADER_SIZE)
        except _Malformed as e:
            raise DecodeError(
                "AVRO_MALFORMED",
                f"{writer.full_name} 记录第 {e.position} 字节处的变长整数超出其声明的 Avro 类型，已拒收（不截断取值），"
                f"请发送方检查编码器 (the body holds a {e.problem} at byte {e.position}: a value outside its "
                f"declared Avro type, refused rather than wrapped)",
                writer=writer.full_name,
                position=e.position,
            ) from None
        except (IndexError, RecursionError):
            pass  # truncated or garbled: fastavro reports it as AVRO_BODY_INVALID

    # -- decoding
    def decode(self, data: bytes, reader: str | None = None) -> tuple[str, dict[str, Any]]:
        """Decode single-object bytes into ``(full name, record)`` in the current reader schema.

        ``reader`` names the record type the caller expects; default: the current
        version of the writer's own record. Old versions are upgraded by Avro schema
        resolution (fields added since get their defaults).
        """
        writer = self.writer(_read_header(data))
        if reader is None:
            # A record with no current schema left is still readable in its own shape.
            target = self._current.get(writer.full_name, writer)
        else:
            target = self.current(reader)
        # fastavro (>= 1.7) raises EOFError itself when a length in the body asks for more bytes
        # than are left (or a negative number), and its reader never seeks: a plain BytesIO, read
        # at C speed, is as strict as the bounded reader this was (~5 µs less per payment read).
        self.check_varints(writer, data)
        body = io.BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(
                body, writer.parsed, None if target.fingerprint == writer.fingerprint else target.parsed
            )
        except SchemaResolutionError as e:
            raise DecodeError(
                "AVRO_SCHEMA_MISMATCH",
                f"a {writer.full_name} record cannot be read as {target.full_name}: {e}",
                writer=writer.full_name,
                reader=target.full_name,
            ) from None
        except Exception as e:  # anything a garbled body makes fastavro raise
            raise DecodeError(
                "AVRO_BODY_INVALID",
                f"the {writer.full_name} body is truncated or garbled ({type(e).__name__}: {e})",
                writer=writer.full_name,
            ) from None
        remaining = len(data) - body.tell()
        if remaining:
            raise DecodeError(
                "AVRO_BODY_INVALID",
                f"{remaining} bytes left over after the {writer.full_name} record",
                writer=writer.full_name,
            )
        return target.full_name, record


def _parse(schema: Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(schema, str):
        schema = json.loads(schema)
    # A fresh name table per schema: each file stands alone, so two files may
    # define the same enum (e.g. LevyItem) without clashing.
    return parse_schema(dict(schema), named_schemas={})


def _read_header(data: Any) -> int:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("AVRO_BAD_MAGIC", f"expected bytes, got {type(data).__name__}")
    if len(data) > MAX_MESSAGE_BYTES:
        raise DecodeError("AVRO_TOO_LARGE", f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    if bytes(data[:2]) != MAGIC:
        raise DecodeError(
            "AVRO_BAD_MAGIC",
            f"message starts with {bytes(data[:2]).hex() or 'nothing'}, not c301: it is not Avro single-object encoded",
        )
    if len(data) < HEADER_SIZE:
        raise DecodeError("AVRO_BODY_INVALID", f"message of {len(data)} bytes ends inside the 10-byte header")
    return int.from_bytes(bytes(data[2:HEADER_SIZE]), "little")


# ------------------------------------------------------- varint strictness
# fastavro reads a varint of any length and keeps only its low 64 bits: an 11-byte
# varint for 10^30 decodes as 5076944290155633856 and one for 2^63 as 0, silently.
# A long is at most 10 bytes (the 10th may only carry bit 63), an int (and an enum
# index) at most 5 (the 5th only bits 28..31). Checking every record byte by byte in
# Python for every record would cost more than needed, so a quick look at the raw bytes
# decides "maybe": an over-long long needs a run of 9 bytes with the high bit set, an
# over-long int a run of 4, and a body of ASCII bytes only holds neither. Such runs also
# occur inside text (a Chinese character is three such bytes), so "maybe" only sends the
# body to the schema walk below, which visits each value in order (skipping over
# strings) and decides exactly (about 2 µs for a tax payment, a tenth of its decode).

_LONG_RUN = re.compile(rb"[\x80-\xff]{9}")


class _Malformed(Exception):
    """Raised by the walk: an over-long or out-of-range varint at ``position``."""

    def __init__(self, position: int, problem: str) -> None:
        super().__init__(problem)
        self.position = position
        self.problem = problem


def _varint_end(buf: bytes, pos: int, max_bytes: int, last_max: int, what: str) -> int:
    """The position after the varint at ``pos``; _Malformed if longer than ``max_bytes``
    or if its last allowed byte carries bits beyond the type's width (> ``last_max``)."""
    last = pos + max_bytes - 1
    p = pos
    while True:
        b = buf[p]  # an IndexError (truncated) is fastavro's to report
        if b < 0x80:
            if p == last and b > last_max:
                raise _Malformed(pos, f"{what} varint carries bits beyond {'64' if max_bytes == 10 else '32'}")
            return p + 1
        if p == last:
            raise _Malformed(pos, f"{what} varint longer than {max_bytes} bytes")
        p += 1


def _long_value(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    end = _varint_end(buf, pos, 10, 0x01, what)
    n = 0
    for i in range(end - 1, pos - 1, -1):
        n = (n << 7) | (buf[i] & 0x7F)
    return (n >> 1) ^ -(n & 1), end


def _compile_walk(schema: Any, named: Mapping[str, Any]) -> Callable[[bytes, int], int]:
    """A function (buffer, position) -> position after one value of ``schema``; raises _Malformed."""
    if isinstance(schema, str) and schema in named:
        compiled: list[Callable[[bytes, int], int]] = []

        def named_type(buf: bytes, pos: int) -> int:
            if not compiled:
                compiled.append(_compile_walk(named[schema], named))
            return compiled[0](buf, pos)

        return named_type
    if isinstance(schema, list):
        branches = [_compile_walk(branch, named) for branch in schema]

        def union(buf: bytes, pos: int) -> int:
            index, pos = _long_value(buf, pos, "union index")
            if not 0 <= index < len(branches):
                raise _Malformed(pos, f"union index {index} out of range")
            return branches[index](buf, pos)

        return union
    kind = schema if isinstance(schema, str) else schema["type"]
    if kind == "null":
        return lambda buf, pos: pos
    if kind == "boolean":
        return lambda buf, pos: pos + 1
    if kind in ("int", "enum"):
        return lambda buf, pos: pos + 1 if buf[pos] < 0x80 else _varint_end(buf, pos, 5, 0x0F, kind)
    if kind == "long":
        return lambda buf, pos: pos + 1 if buf[pos] < 0x80 else _varint_end(buf, pos, 10, 0x01, kind)
    if kind == "float":
        return lambda buf, pos: pos + 4
    if kind == "double":
        return lambda buf, pos: pos + 8
    if kind == "fixed":
        size = schema["size"]
        return lambda buf, pos: pos + size
    if kind in ("string", "bytes"):
        def text(buf: bytes, pos: int) -> int:
            b = buf[pos]
            if b < 0x80:
                return pos + 1 + (b >> 1)  # a negative length is fastavro's to refuse
            length, pos = _long_value(buf, pos, f"{kind} length")
            return pos + max(length, 0)

        return text
    if kind in ("array", "map"):
        item = _compile_walk(schema["items"] if kind == "array" else schema["values"], named)
        key = _compile_walk("string", named)

        def blocks(buf: bytes, pos: int) -> int:
            while True:
                count, pos = _long_value(buf, pos, f"{kind} block count")
                if count == 0:
                    return pos
                if count < 0:
                    count = -count
                    _size, pos = _long_value(buf, pos, f"{kind} block size")
                for _ in range(count):
                    if kind == "map":
                        pos = key(buf, pos)
                    pos = item(buf, pos)

        return blocks
    if kind == "record":
        return _compile_record_walk(schema, named)
    raise SchemaError("AVRO_SCHEMA_INVALID", f"unsupported schema type {kind!r}")


def _compile_record_walk(schema: Mapping[str, Any], named: Mapping[str, Any]) -> Callable[[bytes, int], int]:
    """A record's walk as one generated function: its int, long and string fields inline.

    Called for every suspicious message, so it is written out field by field (one byte
    test for the common one-byte varint or short string, no call per field): about a
    third of the cost of a closure per field.
    """
    lines = ["def walk(buf, pos):"]
    env: dict[str, Any] = {"_varint_end": _varint_end, "_long_value": _long_value}

    def inline(ftype: Any, pad: str) -> list[str] | None:
        kind = ftype if isinstance(ftype, str) and ftype not in named else (
            ftype.get("type") if isinstance(ftype, dict) else None)
        if kind in ("int", "long", "enum"):
            limit, last = (10, "0x01") if kind == "long" else (5, "0x0F")
            return [f"{pad}if buf[pos] < 0x80: pos += 1",
                    f"{pad}else: pos = _varint_end(buf, pos, {limit}, {last}, {kind!r})"]
        if kind in ("string", "bytes"):
            return [f"{pad}b = buf[pos]",
                    f"{pad}if b < 0x80: pos += 1 + (b >> 1)",
                    f"{pad}else:",
                    f"{pad}    n, pos = _long_value(buf, pos, '{kind} length')",
                    f"{pad}    pos += max(n, 0)"]
        if kind == "null":
            return [f"{pad}pass"]
        return None

    for i, field in enumerate(schema["fields"]):
        ftype = field["type"]
        env[f"f{i}"] = _compile_walk(ftype, named)
        body = inline(ftype, "    ")
        if body is None and isinstance(ftype, list) and len(ftype) == 2 and ftype[0] == "null":
            # The optional value ["null", T]: index 0 (byte 00) or 1 (byte 02), anything else the full walk.
            second = inline(ftype[1], "        ")
            if second is not None:
                body = ["    b = buf[pos]",
                        "    if b == 0: pos += 1",
                        "    elif b == 2:",
                        "        pos += 1", *second,
                        f"    else: pos = f{i}(buf, pos)"]
        lines += body if body is not None else [f"    pos = f{i}(buf, pos)"]
    lines.append("    return pos")
    exec(compile("\n".join(lines), f"<walk {schema.get('name', 'record')}>", "exec"), env)  # noqa: S102
    return env["walk"]


def _has_int(schema: Any, named: Mapping[str, Any], seen: set[str] | None = None) -> bool:
    """Does the schema hold any int-encoded value (int, a date, an enum index)?"""
    seen = set() if seen is None else seen
    if isinstance(schema, str):
        if schema in named:
            if schema in seen:
                return False
            seen.add(schema)
            return _has_int(named[schema], named, seen)
        return schema == "int"
    if isinstance(schema, list):
        return any(_has_int(branch, named, seen) for branch in schema)
    kind = schema["type"]
    if kind in ("int", "enum"):
        return True
    if kind == "record":
        return any(_has_int(f["type"], named, seen) for f in schema["fields"])
    if kind == "array":
        return _has_int(schema["items"], named, seen)
    if kind == "map":
        return _has_int(schema["values"], named, seen)
    return kind == "int"


@dataclass(frozen=True)
class _Strictness:
    """Per writer schema: which quick "maybe" applies, and the exact walk."""

    #: No int in the schema: only a run of 9 high-bit bytes can hide an over-long varint.
    #: With an int a run of 4 can, and any two Chinese characters make one, so for those
    #: schemas the quick test is only "any byte with the high bit set at all" (``isascii``,
    #: C speed): a regex for runs of 4 would cost more than it saves.
    long_runs_only: bool
    walk: Callable[[bytes, int], int]

    @classmethod
    def of(cls, parsed: dict[str, Any]) -> _Strictness:
        named = parsed["__named_schemas"]
        return cls(not _has_int(parsed, named), _compile_walk(parsed, named))


# ----------------------------------------------------------- record checking
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def _invalid(path: str, message: str) -> EncodeError:
    return EncodeError("AVRO_RECORD_INVALID", f"{path}: {message}", field=path)


def _check(schema: Any, value: Any, named: Mapping[str, Any], path: str) -> None:
    """Check a Python value against a parsed schema, strictly.

    fastavro's own validation lets through what would silently corrupt a contract
    (a naive datetime taken as UTC, a datetime written as a date, a non-UUID string
    in a uuid field, an unknown field dropped), so encoding checks first.
    """
    if isinstance(schema, str):
        schema = named.get(schema, schema)
    if isinstance(schema, list):
        # The null branch fits exactly None and no other branch fits None: decide the optional
        # fields (most of them) without raising and catching an error per field.
        if value is None:
            if "null" in schema:
                return
        else:
            for branch in schema:
                if branch == "null":
                    continue
                try:
                    _check(branch, value, named, path)
                    return
                except EncodeError:
                    pass
        errors = []  # no branch fits: say why for each, in the schema's order
        for branch in schema:
            try:
                _check(branch, value, named, path)
                return
            except EncodeError as e:
                errors.append(e.message)
        raise _invalid(path, f"{value!r} fits none of the union's branches ({'; '.join(errors)})")
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = None if isinstance(schema, str) else schema.get("logicalType")
    if kind == "null":
        if value is not None:
            raise _invalid(path, f"expected null, got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise _invalid(path, f"expected true/false, got {value!r}")
    elif kind in ("int", "long"):
        if logical == "date":
            if isinstance(value, datetime) or not isinstance(value, date):
                raise _invalid(path, f"expected a calendar date, got {value!r}")
        elif logical in ("timestamp-micros", "timestamp-millis"):
            if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
                raise _invalid(path, f"expected a date and time with a time zone, got {value!r}")
        else:
            lo, hi = _INT32 if kind == "int" else _INT64
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise _invalid(path, f"expected a whole number ({kind}), got {value!r}")
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _invalid(path, f"expected a number, got {value!r}")
    elif kind == "string":
        if logical == "uuid":
            if isinstance(value, UUID):
                return
            try:
                if not isinstance(value, str) or str(UUID(value)) != value.lower():
                    raise ValueError
            except ValueError:
                raise _invalid(path, f"expected a UUID, got {value!r}") from None
        elif not isinstance(value, str):
            raise _invalid(path, f"expected text, got {value!r}")
    elif kind == "bytes":
        if not isinstance(value, (bytes, bytearray)):
            raise _invalid(path, f"expected bytes, got {type(value).__name__}")
    elif kind == "fixed":
        if not isinstance(value, (bytes, bytearray)) or len(value) != schema["size"]:
            raise _invalid(path, f"expected {schema['size']} bytes")
    elif kind == "enum":
        if not isinstance(value, str) or value not in schema["symbols"]:
            raise _invalid(path, f"{value!r} is not one of {', '.join(schema['symbols'])}")
    elif kind == "array":
        if not isinstance(value, (list, tuple)):
            raise _invalid(path, f"expected a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            _check(schema["items"], item, named, f"{path}[{i}]")
    elif kind == "map":
        if not isinstance(value, Mapping):
            raise _invalid(path, f"expected a mapping, got {type(value).__name__}")
        for key, item in value.items():
            if not isinstance(key, str):
                raise _invalid(path, f"map keys must be text, got {key!r}")
            _check(schema["values"], item, named, f"{path}[{key!r}]")
    elif kind == "record":
        if not isinstance(value, Mapping):
            raise _invalid(path, f"expected a record (mapping), got {type(value).__name__}")
        names = {f["name"] for f in schema["fields"]}
        unknown = sorted(set(value) - names)
        if unknown:
            raise _invalid(path, f"fields not in the schema: {', '.join(map(str, unknown))}")
        for field in schema["fields"]:
            if field["name"] in value:
                _check(field["type"], value[field["name"]], named, f"{path}.{field['name']}")
            elif "default" not in field:
                raise _invalid(f"{path}.{field['name']}", "required field is missing")
    else:  # pragma: no cover - the contract schemas use none of the others
        raise _invalid(path, f"unsupported schema type {kind!r}")


def _compile_accepts(schema: Any, named: Mapping[str, Any]) -> Callable[[Any], bool]:
    """A predicate, built once per schema, that is True only for values :func:`_check` accepts.

    :func:`_check` walks the schema for every record (~12 µs for a ledger event, most of
    the publisher's Avro encode). The predicate decides the common case with exact type
    tests on a tree of closures; it may say False for a value the full check would accept
    (a ``str`` subclass, a UUID given as text, a ``Mapping`` that is not a ``dict``,
    floats, a ``bytearray``, fixed): the caller then runs :func:`_check`, so what is accepted and every
    error message stay :func:`_check`'s. It must never say True where :func:`_check` raises.
    """
    if isinstance(schema, str):
        resolved = named.get(schema, schema)
        if resolved is not schema:
            # A named type (record, enum, fixed) defined elsewhere in the schema: compiled on first use.
            compiled: list[Callable[[Any], bool]] = []

            def named_type(value: Any) -> bool:
                if not compiled:
                    compiled.append(_compile_accepts(resolved, named))
                return compiled[0](value)

            return named_type
        schema = resolved
    if isinstance(schema, list):
        branches = tuple(_compile_accepts(branch, named) for branch in schema)
        if len(branches) == 2 and schema[0] == "null":
            other = branches[1]
            return lambda value: value is None or other(value)
        return lambda value: any(branch(value) for branch in branches)
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = None if isinstance(schema, str) else schema.get("logicalType")
    if kind == "null":
        return lambda value: value is None
    if kind == "boolean":
        return lambda value: value is True or value is False
    if kind in ("int", "long"):
        if logical == "date":
            return lambda value: type(value) is date
        if logical in ("timestamp-micros", "timestamp-millis"):
            return lambda value: (type(value) is datetime and value.tzinfo is not None
                                  and value.utcoffset() is not None)
        lo, hi = _INT32 if kind == "int" else _INT64
        return lambda value: type(value) is int and lo <= value <= hi
    if kind == "string":
        if logical == "uuid":
            return lambda value: type(value) is UUID
        return lambda value: type(value) is str
    if kind == "bytes" and logical is None:  # (a decimal and bytearray values: the full check)
        return lambda value: type(value) is bytes
    if kind == "enum":
        symbols = frozenset(schema["symbols"])
        return lambda value: type(value) is str and value in symbols
    if kind == "array":
        item = _compile_accepts(schema["items"], named)
        return lambda value: (type(value) is list or type(value) is tuple) and all(item(v) for v in value)
    if kind == "map":
        values = _compile_accepts(schema["values"], named)
        return lambda value: type(value) is dict and all(type(k) is str and values(v) for k, v in value.items())
    if kind == "record":
        names = frozenset(f["name"] for f in schema["fields"])
        fields = tuple((f["name"], _compile_accepts(f["type"], named), "default" in f) for f in schema["fields"])

        def record(value: Any) -> bool:
            if type(value) is not dict or not names.issuperset(value):
                return False
            for name, accepts, has_default in fields:
                if name in value:
                    if not accepts(value[name]):
                        return False
                elif not has_default:
                    return False
            return True

        return record
    return lambda value: False  # floats, bytes, fixed: always the full check


# ----------------------------------------------------------------- JSON view
def to_jsonable(value: Any) -> Any:
    """A decoded record as plain JSON types (ISO dates and instants, UUIDs as text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value


# --------------------------------------------------------- default registry
_default: SchemaRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> SchemaRegistry:
    """The registry of ``schemas/``, loaded on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = SchemaRegistry.from_directory(SCHEMA_ROOT)
    return _default


def encode(full_name: str, record: Mapping[str, Any]) -> bytes:
    """Encode with the default registry (see :meth:`SchemaRegistry.encode`)."""
    return default_registry().encode(full_name, record)


def decode(data: bytes, reader: str | None = None) -> tuple[str, dict[str, Any]]:
    """Decode with the default registry (see :meth:`SchemaRegistry.decode`)."""
    return default_registry().decode(data, reader)


__all__ = [
    "AvroError",
    "DecodeError",
    "EncodeError",
    "HEADER_SIZE",
    "MAGIC",
    "SCHEMA_ROOT",
    "SchemaEntry",
    "SchemaError",
    "SchemaRegistry",
    "apache_python_canonical_form",
    "canonical_form",
    "decode",
    "default_registry",
    "encode",
    "fingerprint_hex",
    "rabin_fingerprint",
    "schema_fingerprint",
    "to_jsonable",
]
