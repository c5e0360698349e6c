"""The feed consumers on the real Kafka broker and PostgreSQL: exactly once, rejections kept, crash-safe.

Every test gets topics of its own (under the module's ``topic_prefix``) and a consumer
name of its own; the module shares one PostgreSQL schema.
"""
from __future__ import annotations

import threading
import time
import uuid
from datetime import date, datetime, timezone

import psycopg
import pytest
from eventsourcing.persistence import OperationalError
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from psycopg import sql

from consumers.dead_letters import open_sealed
from consumers.feed_consumer import dead_letter_key, position_name
from events.codec import encode
from events.inbound import TAX_PAYMENT, tax_record_to_avro
from infra.topics import declared_partitions
from entrypoints.wiring import bootstrap, feed_consumer
from infra.settings import Settings, postgres_from_env
from ledger.domain.feed_rejection import FeedRejection
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import TaxPaymentRecord

pytestmark = pytest.mark.integration

KEY = b"kafka-consumer-test-key"
TAX = "tax.payments.v1"


# ------------------------------------------------------------------ helpers
def resident_id(seq: int, year: int = 1985) -> str:
    return make_resident_id("610902", date(year, 6, 1), seq)


def bad_checksum(number: str) -> str:
    return number[:-1] + ("0" if number[-1] != "0" else "1")


def payment_bytes(number: str, voucher: str, *, region: str = "610902") -> bytes:
    return encode(TAX_PAYMENT, tax_record_to_avro(TaxPaymentRecord(
        voucher_no=voucher, tax_office="16109020000", id_type="RESIDENT_ID", id_number=number, name="张伟",
        region_code=region, levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        amount_fen=40000, paid_at=datetime(2024, 10, 8, 1, 30, tzinfo=timezone.utc),
    )))


def settings(pg_env, kafka_bootstrap, prefix, schema: str | None = None) -> Settings:
    postgres = postgres_from_env(pg_env)
    if schema:
        postgres["POSTGRES_SCHEMA"] = schema
    return Settings(persistence="postgres", postgres=postgres, kafka_bootstrap_servers=kafka_bootstrap,
                    id_key=KEY, topic_prefix=prefix)


@pytest.fixture()
def system(pg_env, kafka_bootstrap, prefix):
    s = bootstrap(settings(pg_env, kafka_bootstrap, prefix))
    yield s
    s.close()


@pytest.fixture()
def producer(kafka_bootstrap):
    p = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    yield p
    p.close()


def produce(producer, topic: str, items: list[tuple[bytes, bytes, int | None]]) -> None:
    for key, value, partition in items:
        producer.send(topic, key=key, value=value, partition=partition)
    producer.flush()


def group() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def consume_until(runners, done, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the consumers did not get through the records in time"
        for runner in runners:
            runner.run_once(timeout=0.2)


def positions(system, consumer: str, topic: str, partitions: int) -> list[int | None]:
    return [system.ledger.position(position_name(consumer, topic, p)) for p in range(partitions)]


def read_topic(kafka_bootstrap: str, topic: str, expect: int, timeout: float = 20.0) -> list:
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=1000)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(records)
    finally:
        consumer.close()
    return out


def ledger_state(ledger, topic: str) -> dict:
    """Everything the feed ``topic`` changed, without ids and instants that differ between runs."""
    rows = {}
    for n in ledger.recorder.select_notifications(start=None, limit=100_000):
        event = ledger.mapper.to_domain_event(n)
        kind = type(event).__qualname__
        if kind == "FeedRejection.Rejected" and event.topic == topic:
            rows.setdefault("rejections", []).append((event.partition, event.offset, event.code))
        elif kind.startswith("Person") and event.provenance.get("topic") == topic:
            rows.setdefault(str(event.originator_id), []).append((event.originator_version, type(event).__name__))
    return {k: sorted(v) for k, v in rows.items()}


# ------------------------------------------------------------------ tests
def test_payments_land_once_and_bad_records_are_kept_dead_lettered_and_passed(
        system, producer, prefix, kafka_bootstrap, pg_conn):
    topic = prefix + TAX
    good1, good2 = resident_id(1), resident_id(3)
    produce(producer, topic, [
        (b"V1", payment_bytes(good1, "V1"), 0),
        (b"V1", payment_bytes(good1, "V1"), 0),  # the same payment again
        (b"junk", b"\x00not avro", 0),
        (b"B1", payment_bytes(bad_checksum(resident_id(5)), "B1"), 0),
        (b"B2", payment_bytes(resident_id(7), "B2", region="999999"), 0),
        (b"V2", payment_bytes(good2, "V2"), 0),
        (b"V3", payment_bytes(resident_id(9), "V3"), 1),
    ])
    name = group()
    runner = feed_consumer(system, "tax", group=name, max_records=500)
    consume_until([runner], lambda: positions(system, name, topic, 3)[:2] == [5, 0])

    ledger = system.ledger
    person = ledger.find_person("RESIDENT_ID", good1)
    assert [type(e).__name__ for e in ledger.events.get(person.id)] == ["Registered", "Enrolled", "ContributionPaid"]
    assert [p.voucher_no for p in ledger.find_person("RESIDENT_ID", good2).payments.values()] == ["V2"]
    codes = {o: ledger.repository.get(FeedRejection.id_for(topic, 0, o)).code for o in (2, 3, 4)}
    assert codes == {2: "AVRO_BAD_MAGIC", 3: "ID_CHECKSUM", 4: "REGION_UNKNOWN"}

    # The positions are rows of the ledger's own tracking table, written with the events.
    rows = dict(pg_conn.execute(
        "SELECT application_name, notification_id FROM ledger_tracking WHERE application_name LIKE %s",
        (f"{name}:%",)).fetchall())
    assert rows[position_name(name, topic, 0)] == 5 and rows[position_name(name, topic, 1)] == 0

    dlq = read_topic(kafka_bootstrap, topic + ".dlq", expect=3)
    assert [r.key for r in dlq] == [dead_letter_key(topic, 0, o) for o in (2, 3, 4)]
    headers = dict(dlq[0].headers)
    assert headers["error.code"] == b"AVRO_BAD_MAGIC" and headers["source.offset"] == b"2"
    assert headers["source.topic"] == topic.encode() and headers["source.partition"] == b"0"
    assert dlq[0].value != b"\x00not avro" and open_sealed(dlq[0].value, dlq[0].headers, system.keys) == b"\x00not avro"


def test_a_resubmitted_dead_letter_goes_back_on_its_topic_and_is_taken_again(
        system, producer, prefix, kafka_bootstrap):
    """The very same bytes, acknowledged by the broker before the note is saved; the consumer takes the copy
    like any record (here the cause, an unknown region, remains: refused again at the copy's position; a
    fixed cause applying is tests/unit/test_dead_letters.py)."""
    from consumers.dead_letters import dead_letters, resubmit

    topic = prefix + TAX
    number = resident_id(11)
    produce(producer, topic, [(b"P11", payment_bytes(number, "V11", region="999999"), 0)])
    name = group()
    runner = feed_consumer(system, "tax", group=name)
    consume_until([runner], lambda: positions(system, name, topic, 3)[0] == 0)
    (letter,) = [d for d in dead_letters(system.ledger) if d.topic == topic]
    assert letter.code == "REGION_UNKNOWN" and letter.offset == 0

    sent = resubmit(system.ledger, system.record_sink(), [letter], user="clerk01", reason="region table added")
    assert [s.id for s in sent] == [letter.id]
    copies = read_topic(kafka_bootstrap, topic, expect=2)
    assert [(c.partition, c.offset) for c in copies] == [(0, 0), (0, 1)] and copies[1].value == copies[0].value
    assert dict(copies[1].headers)["resubmitted-from"] == f"{topic}:0:0".encode()
    consume_until([runner], lambda: positions(system, name, topic, 3)[0] == 1)
    again = {d.offset: d for d in dead_letters(system.ledger, resubmitted=None) if d.topic == topic}
    assert again[0].resubmissions[0]["user"] == "clerk01" and again[1].code == "REGION_UNKNOWN"


def test_an_integrators_csv_fed_with_the_command_reaches_the_ledger(
        system, prefix, kafka_bootstrap, tmp_path, monkeypatch, capsys):
    """``ledger feed tax FILE``: good rows on the topic as Avro, a bad row reported by line; the consumer applies them."""
    from entrypoints.cli import main

    good1, good2 = resident_id(21), resident_id(23)
    header = "voucher_no,tax_office,id_type,id_number,name,region_code,levy_item,period_start,period_end,amount_fen,paid_at,kind"
    rows = [f"F{n},16109020000,RESIDENT_ID,{number},张伟,610902,RESIDENT,2025-01-01,2025-12-31,{amount},2024-10-08T09:30:00,PAYMENT"
            for n, number, amount in ((1, good1, "40000"), (2, good2, "40000"), (3, good1, "400.5"))]
    path = tmp_path / "payments.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8-sig")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("LEDGER_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("LEDGER_PERSISTENCE", "memory")  # the command only produces
    assert main(["feed", "tax", str(path)]) == 1  # one bad row
    out = capsys.readouterr().out
    assert "第       4 行  AMOUNT_NOT_INTEGER_FEN" in out and f"已发送 2 行到 {prefix}{TAX}" in out

    topic = prefix + TAX
    name = group()
    runner = feed_consumer(system, "tax", group=name)
    consume_until([runner], lambda: _paid(system, good1) and _paid(system, good2))
    assert [p.voucher_no for p in system.ledger.find_person("RESIDENT_ID", good1).payments.values()] == ["F1"]
    assert len(read_topic(kafka_bootstrap, topic, expect=2)) == 2


def _paid(system, number: str) -> bool:
    from ledger.domain.errors import DomainError

    try:
        return bool(system.ledger.find_person("RESIDENT_ID", number).payments)
    except DomainError:  # not registered yet
        return False


def test_status_shows_each_partitions_stored_position_and_what_is_left(system, producer, prefix, kafka_bootstrap):
    """``ledger status``: the position the consumer stored with its effects against the broker's end offsets."""
    from entrypoints.status import kafka_ends, pipeline_status

    topic = prefix + TAX
    produce(producer, topic, [(b"S1", payment_bytes(resident_id(31), "S1"), 0), (b"junk", b"\x00x", 0)])
    runner = feed_consumer(system, "tax")  # the default group, as `ledger consume tax` runs it
    consume_until([runner], lambda: positions(system, "ledger-tax-payments", topic, 3)[0] == 1)
    runner.close()
    produce(producer, topic, [(b"S2", payment_bytes(resident_id(33), "S2"), 0),
                              (b"S3", payment_bytes(resident_id(35), "S3"), 2)])
    ends, close = kafka_ends(kafka_bootstrap)
    try:
        rows = {r.partition: r for r in pipeline_status(system, ends) if r.part == "consumer" and r.source == topic}
    finally:
        close()
    assert (rows[0].position, rows[0].end, rows[0].lag, rows[0].dead_letters) == (1, 2, 1, 1)
    assert (rows[1].position, rows[1].lag) == (None, 0) and (rows[2].position, rows[2].lag) == (None, 1)


def test_a_crash_between_the_database_commit_and_the_kafka_commit_changes_nothing(
        system, producer, prefix, kafka_bootstrap):
    topic = prefix + TAX
    produce(producer, topic, [(f"C{i}".encode(), payment_bytes(resident_id(11 + 2 * i), f"C{i}"), i % 3)
                              for i in range(9)] + [(b"bad", b"garbage", 0)])
    name = group()
    first = feed_consumer(system, "tax", group=name)
    first.source.commit = lambda offsets: None  # the process dies before any Kafka commit
    consume_until([first], lambda: positions(system, name, topic, 3) == [3, 2, 2])
    state = ledger_state(system.ledger, topic)
    first.source.consumer.close(autocommit=False)
    probe = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=name)
    try:
        assert probe.committed(TopicPartition(topic, 0)) is None
    finally:
        probe.close()

    restarted = feed_consumer(system, "tax", group=name)  # resumes from the ledger's positions
    for _ in range(5):
        restarted.run_once(timeout=0.5)
    assert ledger_state(system.ledger, topic) == state
    assert len(read_topic(kafka_bootstrap, topic + ".dlq", expect=2, timeout=3)) == 1


def test_a_crash_before_the_database_commit_is_redone(system, producer, prefix, monkeypatch):
    topic = prefix + TAX
    numbers = [resident_id(41 + 2 * i) for i in range(4)]
    produce(producer, topic, [(f"R{i}".encode(), payment_bytes(n, f"R{i}"), 0) for i, n in enumerate(numbers)])
    name = group()
    first = feed_consumer(system, "tax", group=name)
    real = system.ledger.begin_tax_records  # (record_tax_records goes through it)

    def dies(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(system.ledger, "begin_tax_records", dies)
    deadline = time.monotonic() + 30
    with pytest.raises(Exception):
        while time.monotonic() < deadline:
            first.run_once(timeout=0.5)
    assert positions(system, name, topic, 1) == [None]
    first.source.consumer.close(autocommit=False)

    monkeypatch.setattr(system.ledger, "begin_tax_records", real)
    restarted = feed_consumer(system, "tax", group=name)
    consume_until([restarted], lambda: positions(system, name, topic, 1) == [3])
    for i, number in enumerate(numbers):
        assert [p.voucher_no for p in system.ledger.find_person("RESIDENT_ID", number).payments.values()] == [f"R{i}"]


def test_two_instances_in_one_group_reach_the_same_state_as_one(pg_env, kafka_bootstrap, prefix, producer, services):
    topic = prefix + TAX
    records = []
    for i in range(45):
        number = resident_id(101 + 2 * (i % 30), 1990)  # 30 persons, some pay twice
        records.append((f"T{i}".encode(), payment_bytes(number, f"T{i}"), None))
    records += [(b"x1", b"\xc3\x01\x00\x00", None), (b"x2", payment_bytes(resident_id(99), "T99", region="123456"), None)]

    # Two instances (two ledgers, as two processes would have) in one group.
    name = group()
    pair = [bootstrap(settings(pg_env, kafka_bootstrap, prefix)) for _ in range(2)]
    runners = [feed_consumer(s, "tax", group=name, max_records=7) for s in pair]
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop(runner):
        try:
            while not stop.is_set():
                runner.run_once(timeout=0.2)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=loop, args=(r,), daemon=True) for r in runners]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while not (runners[0].assignment and runners[1].assignment
                   and len(runners[0].assignment | runners[1].assignment) == declared_partitions(TAX)):
            assert time.monotonic() < deadline, "the group did not split the partitions"
            time.sleep(0.1)
        produce(producer, topic, records)
        probe = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
        parts = declared_partitions(TAX)
        ends = probe.end_offsets([TopicPartition(topic, p) for p in range(parts)])
        probe.close()
        expected = [ends[TopicPartition(topic, p)] - 1 if ends[TopicPartition(topic, p)] else None
                    for p in range(parts)]
        deadline = time.monotonic() + 30
        while positions(pair[0], name, topic, parts) != expected:
            assert not errors, errors
            assert time.monotonic() < deadline, "the pair did not finish"
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert not errors, errors
    assert runners[0].assignment.isdisjoint(runners[1].assignment)
    together = ledger_state(pair[0].ledger, topic)

    # One instance, from the same records, into a fresh schema.
    schema = f"{pg_env['POSTGRES_SCHEMA']}_one"
    kwargs = dict(host=services["POSTGRES_HOST"], port=int(services["POSTGRES_PORT"]),
                  dbname=services["POSTGRES_DBNAME"], user=services["POSTGRES_USER"],
                  password=services["POSTGRES_PASSWORD"], autocommit=True)
    with psycopg.connect(**kwargs) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    alone = bootstrap(settings(pg_env, kafka_bootstrap, prefix, schema=schema))
    try:
        single = feed_consumer(alone, "tax", group=group())
        consume_until([single], lambda: positions(alone, single.handler.consumer, topic, parts) == expected)
        assert ledger_state(alone.ledger, topic) == together
    finally:
        alone.close()
        for s in pair:
            s.close()
        with psycopg.connect(**kwargs) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    assert len(together["rejections"]) == 2
    assert sum(len(v) for k, v in together.items() if k != "rejections") == 30 * 2 + 45  # Registered+Enrolled, paid


def test_a_consumer_process_killed_mid_stream_and_restarted_applies_every_record_once(
        pg_env, kafka_bootstrap, prefix, producer, system):
    """``ledger consume tax`` as a real process, SIGKILLed while it works, then run again."""
    import os
    import signal
    import subprocess
    import sys

    topic = prefix + TAX
    vouchers = [f"K{i:04d}" for i in range(400)]
    records = [(v.encode(), payment_bytes(resident_id(201 + 2 * (i % 150), 1970), v), None)
               for i, v in enumerate(vouchers)]
    bad = [(f"bad{i}".encode(), b"broken" + bytes([i]), None) for i in range(6)]
    produce(producer, topic, records[:200] + bad + records[200:])
    name = group()
    env = {**os.environ, "LEDGER_PERSISTENCE": "postgres", "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "LEDGER_ID_KEY": KEY.decode(), "LEDGER_TOPIC_PREFIX": prefix,
           **postgres_from_env(pg_env)}
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "entrypoints.cli", "consume", "tax", "--group", name, "--max-records", "4"]

    def progress() -> int:
        return sum((p or 0) for p in positions(system, name, topic, declared_partitions(TAX)))

    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 40
        while progress() < 60:
            assert proc.poll() is None, "the consumer process ended early"
            assert time.monotonic() < deadline, "the consumer process made no progress"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert progress() < len(records) + len(bad) - 3, "killed too late to prove anything"

    rerun = subprocess.run(command + ["--once"], env=env, timeout=60, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]

    paid = [v for n in system.ledger.recorder.select_notifications(start=None, limit=100_000)
            if (e := system.ledger.mapper.to_domain_event(n)) and type(e).__name__ == "ContributionPaid"
            and e.provenance.get("topic") == topic for v in [e.voucher_no]]
    assert sorted(paid) == vouchers  # every payment once
    state = ledger_state(system.ledger, topic)
    assert [code for _p, _o, code in state["rejections"]] == ["AVRO_BAD_MAGIC"] * 6
    dlq_keys = {r.key for r in read_topic(kafka_bootstrap, topic + ".dlq", expect=6)}
    assert len(dlq_keys) == 6  # at least once; a resent dead letter has the same key


def test_run_commits_on_the_writer_thread_and_a_commit_failing_there_is_redone(system, producer, prefix, monkeypatch):
    """``run`` hands each batch's transaction to the ledger's writer thread and polls the next
    batch meanwhile; an insert failing on that thread rewinds to its batch: every payment once."""
    topic = prefix + TAX
    numbers = [resident_id(201 + 2 * i) for i in range(20)]
    produce(producer, topic, [(f"W{i}".encode(), payment_bytes(n, f"W{i}"), 0) for i, n in enumerate(numbers)])
    name = group()
    runner = feed_consumer(system, "tax", group=name, max_records=4, poll_timeout=0.2)
    recorder = system.ledger.recorder
    real = recorder.insert_events
    threads = []

    def flaky(stored_events, **kwargs):
        threads.append(threading.current_thread().name)
        if len(threads) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return real(stored_events, **kwargs)

    monkeypatch.setattr(recorder, "insert_events", flaky)
    stop = threading.Event()
    worker = threading.Thread(target=runner.run, args=(stop,), kwargs={"max_failures": 5})
    worker.start()
    try:
        deadline = time.monotonic() + 40
        while positions(system, name, topic, 1) != [19]:
            assert time.monotonic() < deadline, "the consumer did not get through the records in time"
            assert worker.is_alive()
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(30)
        runner.close()
    assert all(t.startswith("ledger-writer") for t in threads) and len(threads) >= 6
    for i, number in enumerate(numbers):
        assert [p.voucher_no for p in system.ledger.find_person("RESIDENT_ID", number).payments.values()] == [f"W{i}"]
