"""Daily digests of the event store (每日摘要): tamper evidence kept outside the database.

Each person's events are hash-chained (:mod:`ledger.domain.chain`), but a chain only
proves that its events still fit together: whoever can rewrite rows can rewrite a
whole chain, or cut its tail. So once a day the ledger *seals* what it recorded: a
digest over every event of the day, chained to the previous day's digest, stored in
the database **and** published to Kafka topic ``ledger.audit.digests.v1`` (one
partition, kept forever). ``ledger verify --digests`` recomputes every sealed day
from the stored rows and compares it with the published copies: a changed, deleted,
inserted or moved row changes its day's digest.

Digest format (``medins-ledger.audit-digest/1``)
------------------------------------------------

A *segment* is a run of consecutive notification ids (the event store's total
order). Normally there is one segment per day: it starts right after the previous
segment and ends before the first event recorded on a later day (recording instant,
``timestamp``, taken as a business date in China Standard Time). Sealing a day
before it is over (``--through`` today) seals the day so far; the next run continues
with a second segment of the same day (``seq`` tells them apart).

For each event of the segment, in notification order, one line (UTF-8)::

    <notification id>|<originator id>|<version>|<event digest>\n

where the event digest is :func:`ledger.domain.chain.event_digest` (SHA-256 over the
canonical JSON of the event's type and fields, the same digest that the next event
of the person carries as ``prev_hash``). The segment digest is::

    digest = SHA-256( prev_digest (64 hex characters) || "\n" || line || line || ... )

with ``prev_digest`` the previous segment's digest, and 64 zeros for the first
segment. Every aggregate's events are included (persons, the source-record index,
feed rejections). The published record is JSON (UTF-8), key ``<day>#<seq>``::

    {"format": "medins-ledger.audit-digest/1", "seq": 3, "day": "2025-03-01",
     "first_notification_id": 101, "last_notification_id": 250, "event_count": 150,
     "prev_digest": "<64 hex>", "digest": "<64 hex>", "algorithm": "sha256",
     "computed_at": "2025-03-02T00:05:00+00:00", "store": "PostgreSQL schema ..., table ledger_events"}

The segment covers the notification ids ``first_notification_id ..
last_notification_id`` (both inclusive); ids with no row (a rolled-back transaction
leaves a hole) are simply absent, ``event_count`` says how many rows there were.

Without Kafka (the embedded default) the published copy is a JSON-lines file,
``var/audit-digests.jsonl`` (``LEDGER_DIGESTS_PATH``), one record per line as above.

Stored copies: table ``audit_digests`` (one row per segment, with the published
JSON) and ``audit_chain_heads`` (per aggregate: the version and event digest of its
last sealed event, the *anchor* that lets :func:`entrypoints.audit.verify.verify_person`
notice a changed or removed last event, which no successor's ``prev_hash`` covers).
On PostgreSQL they live in the event store's schema; on SQLite in its file; with the
in-memory store, on the application object.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

from ledger.domain.chain import GENESIS_HASH, event_digest, plain
from ledger.domain.errors import DomainError
from ledger.domain.person import business_date

from entrypoints.audit.stored_rows import Row, event_rows
import time
from psycopg.rows import tuple_row
from psycopg.sql import Identifier, SQL

DIGEST_TOPIC = "ledger.audit.digests.v1"
FORMAT = "medins-ledger.audit-digest/1"


# --------------------------------------------------------------------------- event digest, fast
_FIELDS: dict[type, tuple[str, ...]] = {}
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.name != "originator_topic")
    return names


def fast_event_digest(event: Any) -> str:
    """Exactly :func:`ledger.domain.chain.event_digest`, about twice as fast.

    The reference walks every value through one recursive function and sorts each
    dict twice; here the event's fields (cached per class) are converted inline and
    ``json`` sorts the keys once. tests/unit/test_audit_digest.py checks both give the
    same digest for every event type.
    """
    global _last_id
    cls = type(event)
    values = event.__dict__
    fields: dict[str, Any] = {}
    added = getattr(cls, "added_optional_fields", ())
    for name in _field_names(cls):
        v = values[name] if name in values else getattr(event, name)
        if v is None and added and name in added:
            continue  # an optional field added to the class later counts only when given (chain.event_fields)
        kind = type(v)
        if kind is str or kind is int or kind is bool or v is None:
            fields[name] = v
        elif kind is datetime or kind is date:
            fields[name] = v.isoformat()
        elif kind is UUID:
            if name == "originator_id":
                last = _last_id  # one aggregate's rows come together: convert its id once (read once: thread-safe)
                if last[0] != v:
                    last = _last_id = (v, str(v))
                fields[name] = last[1]
            else:
                fields[name] = str(v)
        else:
            fields[name] = plain(v)
    return hashlib.sha256(_dumps({"type": cls.__qualname__, "fields": fields}).encode()).hexdigest()


_last_id: tuple[Any, str] = (None, "")


def decode_row(mapper: Any, row: Row, digest: bool = True) -> tuple[Any | None, str | None, str | None]:
    """(event, digest, error) of a stored row; a row that does not decode or digest gives the error text.

    ``digest=False`` skips the digest (when nothing would be compared with it) but
    still checks that the decoded event has every field of its class.
    """
    try:
        # A Row has the four attributes the mapper reads (a StoredEvent's), so it is given as it is:
        # building a frozen StoredEvent per row costs a tenth of the decoding.
        event = mapper.to_domain_event(row)
    except Exception as exc:  # a tampered row: the mapper's or transcoder's error, whatever it is
        return None, None, f"{type(exc).__name__}: {exc}"
    try:
        if digest:
            # chain.event_digest now writes canonical JSON directly and beats fast_event_digest.
            return event, event_digest(event), None
        missing = [name for name in _field_names(type(event)) if name not in event.__dict__]
        if missing:
            raise AttributeError(f"{type(event).__name__!r} object has no attribute {missing[0]!r}")
        return event, None, None
    except Exception as exc:  # decoded, but a field is missing or of an impossible type
        return event, None, f"{type(exc).__name__}: {exc}"


def leaf_line(notification_id: int, originator_id: Any, version: int, digest: str) -> bytes:
    return f"{notification_id}|{originator_id}|{version}|{digest}\n".encode()


def unreadable_digest(row: Row) -> str:
    """What stands for an undecodable row's digest in a recomputed segment (it cannot match a sealed one)."""
    return "unreadable:" + hashlib.sha256(row.state).hexdigest()


# --------------------------------------------------------------------------- segments
@dataclass
class Segment:
    """One sealed run of events (normally a whole day)."""

    seq: int
    day: date
    first_notification_id: int
    last_notification_id: int
    event_count: int
    prev_digest: str
    digest: str
    computed_at: datetime
    store: str = ""
    published_at: datetime | None = None

    def record(self) -> dict[str, Any]:
        """The published JSON object (see the module docstring)."""
        return {
            "format": FORMAT,
            "seq": self.seq,
            "day": self.day.isoformat(),
            "first_notification_id": self.first_notification_id,
            "last_notification_id": self.last_notification_id,
            "event_count": self.event_count,
            "prev_digest": self.prev_digest,
            "digest": self.digest,
            "algorithm": "sha256",
            "computed_at": self.computed_at.isoformat(),
            "store": self.store,
        }

    def key(self) -> bytes:
        return f"{self.day.isoformat()}#{self.seq}".encode()

    def value(self) -> bytes:
        return json.dumps(self.record(), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Segment:
        if record.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} record: format {record.get('format')!r}")
        return cls(
            seq=int(record["seq"]), day=date.fromisoformat(record["day"]),
            first_notification_id=int(record["first_notification_id"]),
            last_notification_id=int(record["last_notification_id"]), event_count=int(record["event_count"]),
            prev_digest=str(record["prev_digest"]), digest=str(record["digest"]),
            computed_at=datetime.fromisoformat(record["computed_at"]), store=str(record.get("store", "")),
        )


@dataclass
class Head:
    """An aggregate's last sealed event: the anchor of its chain."""

    originator_id: UUID
    version: int
    digest: str
    notification_id: int
    seq: int


class _Accumulator:
    """Builds one segment's digest from its lines."""

    def __init__(self, prev_digest: str) -> None:
        self.hash = hashlib.sha256(prev_digest.encode() + b"\n")
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None

    def add(self, row: Row, digest: str) -> None:
        self.hash.update(leaf_line(row.notification_id, row.originator_id, row.originator_version, digest))  # type: ignore[arg-type]
        self.count += 1
        self.first = row.notification_id if self.first is None else self.first
        self.last = row.notification_id

    def hexdigest(self) -> str:
        return self.hash.hexdigest()


# --------------------------------------------------------------------------- where digests are stored
class DigestStore:
    """The database copy of the segments and the chain heads."""

    def segments(self) -> list[Segment]:
        raise NotImplementedError

    def add(self, segments: Sequence[Segment], heads: Sequence[Head]) -> None:
        """Store new segments and move the heads they seal, in one transaction."""
        raise NotImplementedError

    def mark_published(self, seqs: Sequence[int], at: datetime) -> None:
        raise NotImplementedError

    def heads(self) -> dict[UUID, Head]:
        raise NotImplementedError

    def head(self, originator_id: UUID) -> Head | None:
        return self.heads().get(originator_id)


class MemoryDigestStore(DigestStore):
    def __init__(self) -> None:
        self._segments: dict[int, Segment] = {}
        self._heads: dict[UUID, Head] = {}
        self._lock = threading.Lock()

    def segments(self) -> list[Segment]:
        with self._lock:
            return [dataclasses.replace(s) for _, s in sorted(self._segments.items())]

    def add(self, segments: Sequence[Segment], heads: Sequence[Head]) -> None:
        with self._lock:
            for s in segments:
                if s.seq in self._segments:
                    raise DomainError("DIGEST_SEQ_TAKEN", f"digest segment {s.seq} is already stored")
            for s in segments:
                self._segments[s.seq] = dataclasses.replace(s)
            for h in heads:
                self._heads[h.originator_id] = h

    def mark_published(self, seqs: Sequence[int], at: datetime) -> None:
        with self._lock:
            for seq in seqs:
                self._segments[seq].published_at = at

    def heads(self) -> dict[UUID, Head]:
        with self._lock:
            return dict(self._heads)


_SEGMENT_COLUMNS = ("seq, day, first_notification_id, last_notification_id, event_count, prev_digest, digest, "
                    "computed_at, store, published_at")


def _segment_from_row(r: Sequence[Any]) -> Segment:
    def instant(v: Any) -> datetime | None:
        if v is None or isinstance(v, datetime):
            return v
        return datetime.fromisoformat(v)

    day = r[1] if isinstance(r[1], date) else date.fromisoformat(r[1])
    return Segment(int(r[0]), day, int(r[2]), int(r[3]), int(r[4]), r[5], r[6], instant(r[7]),  # type: ignore[arg-type]
                   r[8] or "", instant(r[9]))


class PostgresDigestStore(DigestStore):
    """Tables ``audit_digests`` and ``audit_chain_heads`` in the event store's schema."""

    def __init__(self, app: Any) -> None:
        self.datastore = app.recorder.datastore
        schema = Identifier(self.datastore.schema)
        self.SQL = SQL
        self.digests = SQL("{}.{}").format(schema, Identifier("audit_digests"))
        self.heads_table = SQL("{}.{}").format(schema, Identifier("audit_chain_heads"))
        self._created = False

    def _create(self) -> None:
        if self._created:
            return
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(self.SQL(
                "CREATE TABLE IF NOT EXISTS {} (seq bigint PRIMARY KEY, day date NOT NULL, "
                "first_notification_id bigint NOT NULL, last_notification_id bigint NOT NULL, "
                "event_count bigint NOT NULL, prev_digest text NOT NULL, digest text NOT NULL, "
                "computed_at timestamptz NOT NULL, store text, published_at timestamptz, record text NOT NULL)"
            ).format(self.digests))
            cur.execute(self.SQL(
                "CREATE TABLE IF NOT EXISTS {} (originator_id uuid PRIMARY KEY, version bigint NOT NULL, "
                "digest text NOT NULL, notification_id bigint NOT NULL, seq bigint NOT NULL)"
            ).format(self.heads_table))
        self._created = True

    def segments(self) -> list[Segment]:
        self._create()
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(self.SQL(f"SELECT {_SEGMENT_COLUMNS} FROM {{}} ORDER BY seq").format(self.digests))
            rows = cur.fetchall()
            conn.rollback()
        return [_segment_from_row(r) for r in rows]

    def add(self, segments: Sequence[Segment], heads: Sequence[Head]) -> None:
        self._create()
        with self.datastore.transaction(commit=True) as cur:
            cur.executemany(self.SQL(
                f"INSERT INTO {{}} ({_SEGMENT_COLUMNS}, record) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            ).format(self.digests), [
                (s.seq, s.day, s.first_notification_id, s.last_notification_id, s.event_count, s.prev_digest,
                 s.digest, s.computed_at, s.store, s.published_at, s.value().decode()) for s in segments])
            cur.executemany(self.SQL(
                "INSERT INTO {} (originator_id, version, digest, notification_id, seq) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (originator_id) DO UPDATE SET version = EXCLUDED.version, digest = EXCLUDED.digest, "
                "notification_id = EXCLUDED.notification_id, seq = EXCLUDED.seq"
            ).format(self.heads_table), [(h.originator_id, h.version, h.digest, h.notification_id, h.seq)
                                         for h in heads])

    def mark_published(self, seqs: Sequence[int], at: datetime) -> None:
        self._create()
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(self.SQL("UPDATE {} SET published_at = %s WHERE seq = ANY(%s)").format(self.digests),
                        (at, list(seqs)))

    def heads(self) -> dict[UUID, Head]:
        self._create()
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(self.SQL("SELECT originator_id, version, digest, notification_id, seq FROM {}").format(
                self.heads_table))
            rows = cur.fetchall()
            conn.rollback()
        return {r[0]: Head(r[0], int(r[1]), r[2], int(r[3]), int(r[4])) for r in rows}

    def head(self, originator_id: UUID) -> Head | None:
        self._create()
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(self.SQL("SELECT originator_id, version, digest, notification_id, seq FROM {} "
                                 "WHERE originator_id = %s").format(self.heads_table), (originator_id,))
            r = cur.fetchone()
            conn.rollback()
        return None if r is None else Head(r[0], int(r[1]), r[2], int(r[3]), int(r[4]))


class SQLiteDigestStore(DigestStore):
    """The same two tables in the SQLite event store's file."""

    def __init__(self, app: Any) -> None:
        self.datastore = app.recorder.datastore
        self._created = False

    def _create(self) -> None:
        if self._created:
            return
        with self.datastore.transaction(commit=True) as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS audit_digests (seq INTEGER PRIMARY KEY, day TEXT NOT NULL, "
                        "first_notification_id INTEGER NOT NULL, last_notification_id INTEGER NOT NULL, "
                        "event_count INTEGER NOT NULL, prev_digest TEXT NOT NULL, digest TEXT NOT NULL, "
                        "computed_at TEXT NOT NULL, store TEXT, published_at TEXT, record TEXT NOT NULL)")
            cur.execute("CREATE TABLE IF NOT EXISTS audit_chain_heads (originator_id TEXT PRIMARY KEY, "
                        "version INTEGER NOT NULL, digest TEXT NOT NULL, notification_id INTEGER NOT NULL, "
                        "seq INTEGER NOT NULL)")
        self._created = True

    def segments(self) -> list[Segment]:
        self._create()
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(f"SELECT {_SEGMENT_COLUMNS} FROM audit_digests ORDER BY seq")
            return [_segment_from_row(tuple(r)) for r in cur.fetchall()]

    def add(self, segments: Sequence[Segment], heads: Sequence[Head]) -> None:
        self._create()
        with self.datastore.transaction(commit=True) as cur:
            for s in segments:
                cur.execute(f"INSERT INTO audit_digests ({_SEGMENT_COLUMNS}, record) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            (s.seq, s.day.isoformat(), s.first_notification_id, s.last_notification_id,
                             s.event_count, s.prev_digest, s.digest, s.computed_at.isoformat(), s.store,
                             s.published_at.isoformat() if s.published_at else None, s.value().decode()))
            for h in heads:
                cur.execute("INSERT OR REPLACE INTO audit_chain_heads VALUES (?,?,?,?,?)",
                            (str(h.originator_id), h.version, h.digest, h.notification_id, h.seq))

    def mark_published(self, seqs: Sequence[int], at: datetime) -> None:
        self._create()
        with self.datastore.transaction(commit=True) as cur:
            for seq in seqs:
                cur.execute("UPDATE audit_digests SET published_at = ? WHERE seq = ?", (at.isoformat(), seq))

    def heads(self) -> dict[UUID, Head]:
        self._create()
        with self.datastore.transaction(commit=False) as cur:
            cur.execute("SELECT originator_id, version, digest, notification_id, seq FROM audit_chain_heads")
            rows = cur.fetchall()
        return {UUID(r[0]): Head(UUID(r[0]), int(r[1]), r[2], int(r[3]), int(r[4])) for r in rows}


def digest_store(app: Any) -> DigestStore:
    """The digest store beside this application's event store (one per application)."""
    store = app.__dict__.get("_audit_digest_store")
    if store is None:
        module = type(app.recorder).__module__
        if module.startswith(("eventsourcing.postgres", "infra.event_store.recorders")):  # (the binary recorder: PostgreSQL)
            store = PostgresDigestStore(app)
        elif module.startswith("eventsourcing.sqlite"):
            store = SQLiteDigestStore(app)
        else:
            store = MemoryDigestStore()
        app.__dict__["_audit_digest_store"] = store
    return store


# --------------------------------------------------------------------------- where digests are published
class DigestChannel:
    """The copy outside the database: a topic holding every segment record."""

    topic: str

    def publish(self, segments: Sequence[Segment]) -> None:
        raise NotImplementedError

    def published(self) -> list[dict[str, Any]]:
        """Every record on the topic, in order, as JSON objects (undecodable ones as ``{"error": ...}``)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def _parse(value: bytes | None, where: str) -> dict[str, Any]:
    try:
        record = json.loads(value or b"")
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        return record
    except ValueError as exc:
        return {"error": f"record {where} is not a digest record: {exc}"}


class InProcessDigestChannel(DigestChannel):
    """The embedded transport's topic (no Kafka)."""

    def __init__(self, broker: Any, topic: str) -> None:
        self.broker = broker
        self.topic = topic

    def publish(self, segments: Sequence[Segment]) -> None:
        for s in segments:
            self.broker.produce(self.topic, key=s.key(), value=s.value(), partition=0)

    def published(self) -> list[dict[str, Any]]:
        return [_parse(m.value, f"{m.partition}@{m.offset}") for m in self.broker.topic(self.topic).messages()]


class KafkaDigestChannel(DigestChannel):
    """Topic ``ledger.audit.digests.v1`` on Kafka: an idempotent producer; reads take the whole topic."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._sink: Any = None

    def publish(self, segments: Sequence[Segment]) -> None:
        from consumers.kafka_io import KafkaSink, make_producer

        if self._sink is None:
            self._sink = KafkaSink(make_producer(self.bootstrap_servers))
        for s in segments:
            self._sink.send(self.topic, key=s.key(), value=s.value())
        self._sink.flush()  # returns only when the broker acknowledged every record

    def published(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False,
                                 client_id="medins-ledger-audit")
        try:
            deadline = time.monotonic() + timeout
            partitions = consumer.partitions_for_topic(self.topic)
            while not partitions:
                if time.monotonic() > deadline:
                    raise DomainError("DIGEST_TOPIC_MISSING", f"Kafka topic {self.topic} does not exist")
                time.sleep(0.2)
                partitions = consumer.partitions_for_topic(self.topic)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            out: list[tuple[int, int, dict[str, Any]]] = []
            while any(consumer.position(tp) < end[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise DomainError("DIGEST_TOPIC_TIMEOUT", f"could not read {self.topic} within {timeout:.0f} s")
                for records in consumer.poll(timeout_ms=500).values():
                    for r in records:
                        out.append((r.partition, r.offset, _parse(r.value, f"{r.partition}@{r.offset}")))
            return [record for _, _, record in sorted(out, key=lambda x: (x[0], x[1]))]
        finally:
            consumer.close()

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None


class FileDigestChannel(DigestChannel):
    """The embedded default's copy outside the database: one JSON record per line in a file.

    Without Kafka there is no topic that outlives the process; the file (by default
    ``var/audit-digests.jsonl`` beside the SQLite store, ``LEDGER_DIGESTS_PATH`` to
    move it) holds exactly what would have been published, in order. Keep a copy of
    it somewhere the database's administrators cannot write.
    """

    def __init__(self, path: str | Path, topic: str) -> None:
        self.path = Path(path)
        self.topic = f"{topic} (file {self.path})"

    def publish(self, segments: Sequence[Segment]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as out:
            for s in segments:
                out.write(s.value() + b"\n")
            out.flush()
            os.fsync(out.fileno())

    def published(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().splitlines()
        return [_parse(line, f"line {n}") for n, line in enumerate(lines, 1) if line.strip()]


def digest_channel(system: Any) -> DigestChannel:
    """Where the system publishes its digests: Kafka topic ``ledger.audit.digests.v1`` when Kafka is configured;
    otherwise a JSON-lines file for a SQLite store, or the in-process transport for the in-memory store."""
    topic = system.topic(DIGEST_TOPIC)
    servers = system.settings.kafka_bootstrap_servers
    if servers:
        channel: DigestChannel = KafkaDigestChannel(servers, topic)
        system.closers.append(channel.close)
        return channel
    if system.settings.persistence == "memory":
        return InProcessDigestChannel(system.inprocess_broker(), topic)
    return FileDigestChannel(system.settings.digests_file(), topic)


# --------------------------------------------------------------------------- sealing
@dataclass
class SealResult:
    segments: list[Segment] = field(default_factory=list)
    published: list[int] = field(default_factory=list)
    events: int = 0
    upto: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"segments": [s.record() for s in self.segments], "published_seqs": self.published,
                "events_sealed": self.events, "position": self.upto}


def _segments_from(rows: Iterable[Row], mapper: Any, *, last: Segment | None, through: date, store: str,
                   heads: dict[UUID, Head]) -> Iterator[Segment]:
    """New segments over ``rows`` (notification order), stopping before the first event recorded after ``through``."""
    seq = (last.seq if last else 0) + 1
    prev = last.digest if last else GENESIS_HASH
    start = (last.last_notification_id if last else 0) + 1
    acc: _Accumulator | None = None
    day: date | None = None
    now = datetime.now(timezone.utc)
    for row in rows:
        event, digest, error = decode_row(mapper, row)
        if error is not None:
            raise DomainError(
                "SEAL_UNREADABLE_EVENT",
                f"event {row.originator_id} version {row.originator_version} (notification {row.notification_id}) "
                f"cannot be read ({error}); the ledger is not sealed over a damaged row: run ledger verify",
            )
        recorded = business_date(event.timestamp)
        if recorded > through:
            break
        if acc is not None and recorded > day:  # type: ignore[operator]
            segment = Segment(seq, day, start, acc.last, acc.count, prev, acc.hexdigest(), now, store)  # type: ignore[arg-type]
            yield segment
            seq, prev, start = seq + 1, segment.digest, acc.last + 1  # type: ignore[operator]
            acc = None
        if acc is None:
            acc, day = _Accumulator(prev), recorded
        acc.add(row, digest)  # type: ignore[arg-type]
        heads[row.originator_id] = Head(row.originator_id, row.originator_version, digest, row.notification_id, seq)  # type: ignore[arg-type]
    if acc is not None:
        yield Segment(seq, day, start, acc.last, acc.count, prev, acc.hexdigest(), now, store)  # type: ignore[arg-type]


def seal(app: Any, channel: DigestChannel | None, *, through: date | None = None) -> SealResult:
    """Seal the days not sealed yet, up to and including ``through`` (default: yesterday, China Standard Time).

    Stores the new segments and chain heads in one transaction, then publishes every
    stored segment not yet published (also those a failed earlier run left behind)
    and marks them published. Returns what was done.
    """
    store = digest_store(app)
    rows = event_rows(app)
    if through is None:
        through = date.fromordinal(business_date(datetime.now(timezone.utc)).toordinal() - 1)
    existing = store.segments()
    last = existing[-1] if existing else None
    upto = rows.max_notification_id()
    heads: dict[UUID, Head] = {}
    after = last.last_notification_id if last else 0
    new = list(_segments_from(rows.by_notification(after=after, upto=upto), app.mapper, last=last, through=through,
                              store=rows.description, heads=heads))
    if new:  # (every head was taken from a row of one of the new segments)
        store.add(new, list(heads.values()))
    result = SealResult(segments=new, events=sum(s.event_count for s in new), upto=upto)
    pending = [s for s in store.segments() if s.published_at is None]
    if channel is not None and pending:
        channel.publish(pending)
        now = datetime.now(timezone.utc)
        store.mark_published([s.seq for s in pending], now)
        result.published = [s.seq for s in pending]
    return result
