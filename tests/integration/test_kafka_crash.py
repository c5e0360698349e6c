"""Issue 4, crash safety with real processes: ``ledger consume tax`` and ``ledger publish`` SIGKILLed and restarted.

About 2,500 tax records (payments, identical resends, refunds of earlier vouchers) are
produced in chunks across the partitions of ``tax.payments.v1`` (keyed by ID number,
so a refund follows its payment in its partition) while the consumer and the publisher
run as subprocesses. Each is SIGKILLed 3 times at seeded-random moments (after it has
made some progress since its last start) and started again at once. In the end:

* the ledger's totals per person (count of payments, sum of payments minus refunds)
  equal the ones computed from the produced records with resends counted once;
* ``{prefix}ledger.events.v1``, read with ``read_committed``, holds every person event of
  the ledger's store exactly once (the publisher's transactions) and nothing else, and
  per person in version order 1..n.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

import pytest

from consumers.kafka_io import make_producer
from consumers.publisher import is_person_event
from consumers.feed_consumer import position_name
from events.codec import encode
from events.inbound import TAX_PAYMENT, tax_record_to_avro
from infra.topics import declared_partitions
from entrypoints.wiring import bootstrap
from infra.settings import Settings, postgres_from_env
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import TaxPaymentRecord
from tests.published import duplicates, publication_problems, read_topic

pytestmark = pytest.mark.integration

KEY = b"kafka-crash-test-key"
OFFICE = "16109020000"
SEED = 20250404
PERSONS = 700
RECORDS = 2500
KILLS = 3


@pytest.fixture()
def system(pg_env, kafka_bootstrap, prefix):
    s = bootstrap(Settings(persistence="postgres",
                           postgres=postgres_from_env(pg_env),
                           kafka_bootstrap_servers=kafka_bootstrap, id_key=KEY, topic_prefix=prefix))
    yield s
    s.close()


def record(id_number: str, voucher: str, amount_fen: int, paid_at: datetime, **over) -> TaxPaymentRecord:
    fields = dict(
        voucher_no=voucher, tax_office=OFFICE, id_type="RESIDENT_ID", id_number=id_number, name="陈静",
        region_code="610902", levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        amount_fen=amount_fen, paid_at=paid_at, channel="APP",
    )
    fields.update(over)
    return TaxPaymentRecord(**fields)


def make_records(rng: random.Random) -> list[TaxPaymentRecord]:
    """Payments, resends of earlier records, and refunds (full or partial) of earlier payments."""
    numbers = [make_resident_id("610902", date(1960, 1, 1) + timedelta(days=i // 300), 1 + 2 * (i % 300))
               for i in range(PERSONS)]
    out: list[TaxPaymentRecord] = []
    paid: list[tuple[TaxPaymentRecord, int]] = []  # payments with what is left to refund
    at = datetime(2024, 9, 1, tzinfo=timezone.utc)
    while len(out) < RECORDS:
        at += timedelta(minutes=7)
        roll = rng.random()
        if roll < 0.08 and out:
            out.append(rng.choice(out))  # an identical resend
        elif roll < 0.18 and paid:
            i = rng.randrange(len(paid))
            original, left = paid[i]
            if left <= 0:
                continue
            amount = left if rng.random() < 0.5 else rng.randint(1, left)
            paid[i] = (original, left - amount)
            out.append(record(original.id_number, f"CR-R{len(out):05d}", amount, at, kind="REFUND",
                              original_voucher_no=original.voucher_no, reason="退费"))
        else:
            p = record(rng.choice(numbers), f"CR-V{len(out):05d}", rng.choice([38000, 40000, 20000, 12345]), at)
            out.append(p)
            paid.append((p, p.amount_fen))
    return out


def expected_totals(records: list[TaxPaymentRecord]) -> dict[str, tuple[int, int]]:
    """Per ID number: (payments, fen paid minus refunded), each voucher counted once."""
    seen: set[str] = set()
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        if r.voucher_no in seen:
            continue
        seen.add(r.voucher_no)
        if r.kind == "REFUND":
            totals[r.id_number][1] -= r.amount_fen
        else:
            totals[r.id_number][0] += 1
            totals[r.id_number][1] += r.amount_fen
    return {k: (v[0], v[1]) for k, v in totals.items()}


def ledger_totals(ledger) -> tuple[dict[str, tuple[int, int]], list]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    events = []
    for n in ledger.recorder.select_notifications(start=None, limit=10_000_000):
        if not is_person_event(n):
            continue
        event = ledger.mapper.to_domain_event(n)
        events.append(event)
        kind = type(event).__name__
        if kind == "ContributionPaid":
            totals[str(event.originator_id)][0] += 1
            totals[str(event.originator_id)][1] += event.amount_fen
        elif kind == "ContributionRefunded":
            totals[str(event.originator_id)][1] -= event.amount_fen
    return {k: (v[0], v[1]) for k, v in totals.items()}, events


class Proc:
    """One CLI process that is killed and restarted; ``progress()`` says how far the ledger got with it."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], progress, rng: random.Random) -> None:
        self.name, self.command, self.env, self.progress, self.rng = name, command, env, progress, rng
        self.kills = 0
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.started_at = self.progress()
        self.wait_for = self.rng.randint(20, 400)  # kill after this much progress since (re)start ...
        self.extra = self.rng.uniform(0.0, 0.8)  # ... and this many seconds more
        self.armed_at: float | None = None
        self.started_clock = time.monotonic()
        self.proc = subprocess.Popen(self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def tick(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace")[-2000:] if self.proc.stderr else ""
            raise AssertionError(f"{self.name} ended by itself ({self.proc.returncode}): {err}")
        if self.kills >= KILLS:
            return
        if self.armed_at is None and (self.progress() - self.started_at >= self.wait_for
                                      or time.monotonic() - self.started_clock > 12.0):
            self.armed_at = time.monotonic()
        if self.armed_at is not None and time.monotonic() - self.armed_at >= self.extra:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            if self.proc.stderr:
                self.proc.stderr.close()
            self.kills += 1
            self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()


def test_consumer_and_publisher_killed_and_restarted_lose_nothing_and_apply_everything_once(
        system, prefix, kafka_bootstrap, pg_env):
    rng = random.Random(SEED)
    records = make_records(rng)
    tax_topic, events_topic = prefix + "tax.payments.v1", prefix + "ledger.events.v1"
    group = f"crash-tax-{uuid.uuid4().hex[:6]}"
    ledger = system.ledger

    env = {**os.environ, "LEDGER_PERSISTENCE": "postgres", "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "LEDGER_ID_KEY": KEY.decode(), "LEDGER_TOPIC_PREFIX": prefix,
           **postgres_from_env(pg_env)}
    env.pop("DATABASE_URL", None)

    def consumed() -> int:
        return sum(1 + p for p in (ledger.position(position_name(group, tax_topic, q)) for q in range(declared_partitions("tax.payments.v1")))
                   if p is not None)

    def published() -> int:
        return ledger.recorder.max_tracking_id(f"publisher:{events_topic}") or 0

    # The records flow in chunks while the processes run (and die).
    producer = make_producer(kafka_bootstrap)
    produced = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for start in range(0, len(records), 250):
                for r in records[start:start + 250]:
                    producer.send(tax_topic, key=r.id_number.encode(), value=encode(TAX_PAYMENT, tax_record_to_avro(r)))
                producer.flush(timeout=60)
                time.sleep(0.3)  # pacing only
        except BaseException as e:  # surfaced below
            errors.append(e)
        finally:
            produced.set()

    cli = [sys.executable, "-m", "entrypoints.cli"]
    procs = [
        Proc("consumer", cli + ["consume", "tax", "--group", group, "--max-records", "100"], env, consumed, rng),
        Proc("publisher", cli + ["publish"], env, published, rng),
    ]
    feeder = threading.Thread(target=produce, daemon=True)
    feeder.start()
    try:
        deadline = time.monotonic() + 150
        while True:
            for p in procs:
                p.tick()
            done = (produced.is_set() and all(p.kills >= KILLS for p in procs) and consumed() >= len(records)
                    and published() >= (ledger.recorder.max_notification_id() or 0))
            if done:
                break
            assert not errors, errors
            assert time.monotonic() < deadline, (
                f"not done in time: kills {[p.kills for p in procs]}, consumed {consumed()}/{len(records)}, "
                f"published {published()}/{ledger.recorder.max_notification_id()}")
            time.sleep(0.02)
    finally:
        for p in procs:
            p.stop()
        producer.close()
    assert [p.kills for p in procs] == [KILLS, KILLS]

    # The ledger: exactly the input's totals, resends once.
    expected = {str(ledger.person_id("RESIDENT_ID", n)): t for n, t in expected_totals(records).items()}
    totals, events = ledger_totals(ledger)
    assert totals == expected
    assert sum(c for c, _ in totals.values()) == sum(c for c, _ in expected.values())
    assert sum(f for _, f in totals.values()) == sum(f for _, f in expected.values())
    rejections = [n for n in ledger.recorder.select_notifications(start=None, limit=10_000_000)
                  if n.topic.startswith("ledger.domain.feed_rejection")]
    assert rejections == []

    # ledger.events.v1 (read_committed): every stored person event exactly once, nothing else, per person in order.
    stored = {str(e.event_id): (str(e.originator_id), e.originator_version) for e in events}
    published_events = read_topic(kafka_bootstrap, events_topic, set(stored))
    problems = publication_problems(stored, published_events)
    assert problems == dict.fromkeys(problems, 0), problems
    assert duplicates(published_events) == 0
    print(f"\n{len(records)} records, {len(expected)} persons, {len(stored)} person events; "
          f"{duplicates(published_events)} duplicates after kills (read_committed)")
