"""What the ledger writes by its own hand, read back by the eventsourcing library's own code.

The ledger copies library internals on its write path (``ledger/application.py`` and its
event store adapter, ``infra/event_store/batches.py``): ``Application.save`` and ``_record``
(``Ledger.save`` with a feed position, ``PersonBatches._save``), ``EventStore.put``
(``PersonBatches._save_in_background`` builds the recordings itself and inserts on a writer
thread), ``_take_snapshots`` (``PersonBatches.take_snapshots``: snapshots taken from the
saved aggregates with ``Snapshot.take`` and put in one statement, the older ones dropped by
``infra/event_store/snapshots.py``); it reads with copies too (``infra/event_store/batch_load.py``
folds rows itself, ``infra/event_store/stored_events.py`` decodes them with orjson); and
``events/cipher.py`` replaces ``AESCipher``'s encrypt and decrypt with a key ring.

The recorder cases (``test_library_recorder_cases.py``) cannot see these. So here a plain
library ``Application`` -- no ledger code but the date transcoding, the library's own
``AESCipher`` with the deployment's key -- reads the store the ledger wrote: its
repository (from the ledger's snapshots, and by replay), its snapshot store, its
notification log. A library release whose own save, put, snapshots, mapper or cipher no
longer agree with the ledger's copies fails here.
"""
from __future__ import annotations

import sys
import tempfile
import uuid
from datetime import date
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking, Transcoder
from psycopg import sql

from infra.event_store import HOUSE_POSTGRES_FACTORY
from infra.event_store.batch_load import load_aggregates
from infra.event_store.stored_events import stored_event_decoder
from ledger.application import DateAsISO, Ledger
from entrypoints.wiring import System, bootstrap
from infra.settings import Settings
from ledger.domain.identity import make_resident_id
from ledger.domain.person import Person
from ledger.inbound_records import Provenance, TaxPaymentRecord

pytestmark = pytest.mark.integration

KEY = b"library-reads-ledger-writes"
HANBIN = "610902"
FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=1)
API = Provenance(source="api", user="clerk01", request_id="req-1")


class LibraryReader(Application):
    """The library's application on the ledger's tables ("Ledger": ``ledger_events``, ``ledger_snapshots``)."""

    name = "Ledger"

    def register_transcodings(self, transcoder: Transcoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())


def reader(ledger: Ledger, *, snapshots: bool) -> LibraryReader:
    """A plain library application on the ledger's store, with the library's own cipher and the ledger's key."""
    env = {k: v for k, v in ledger.env.items() if k.startswith(("POSTGRES_", "SQLITE_"))}
    # (the library's own factory, not the ledger's: infra.event_store.recorders:Factory on PostgreSQL)
    library_module = {HOUSE_POSTGRES_FACTORY: "eventsourcing.postgres"}.get(ledger.env["PERSISTENCE_MODULE"],
                                                                    ledger.env["PERSISTENCE_MODULE"])
    env.update(PERSISTENCE_MODULE=library_module, CREATE_TABLE="n",
               CIPHER_TOPIC="eventsourcing.cipher:AESCipher", CIPHER_KEY=ledger.env["CIPHER_KEY"],
               IS_SNAPSHOTTING_ENABLED="y" if snapshots else "n")
    assert ledger.env["CIPHER_TOPIC"] == "events.cipher:LedgerCipher"  # (what is being checked)
    return LibraryReader(env)


def number(seq: int) -> str:
    return make_resident_id(HANBIN, date(1979, 6, 7), seq)


def payment(seq: int, voucher: str) -> TaxPaymentRecord:
    from datetime import datetime, timezone

    return TaxPaymentRecord(
        voucher_no=voucher, tax_office="16109020000", id_type="RESIDENT_ID", id_number=number(seq), name="王芳",
        region_code=HANBIN, levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        amount_fen=40000, paid_at=datetime(2024, 10, 8, 9, 30, tzinfo=timezone.utc), credited_on=date(2024, 10, 9),
        channel="APP")


def enroll(ledger: Ledger, seq: int) -> uuid.UUID:
    return ledger.enroll(id_type="RESIDENT_ID", id_number=number(seq), name="王芳", scheme="RESIDENT",
                         region_code=HANBIN, effective_date=date(2023, 9, 1), provenance=API).person_id


def replayed(ledger: Ledger, person_id: uuid.UUID, version: int | None = None) -> Person:
    aggregate = None
    for event in ledger.events.get(person_id, lte=version):
        aggregate = event.mutate(aggregate)
    assert aggregate is not None
    return aggregate


def assert_library_snapshot(library: LibraryReader, ledger: Ledger, person_id: uuid.UUID, version: int) -> None:
    """The person's one stored snapshot is at ``version`` and is what the library's ``take_snapshot`` would take."""
    stored = list(library.snapshots.get(person_id))
    assert [s.originator_version for s in stored] == [version]
    theirs = getattr(Person, "Snapshot", type(library).snapshot_class).take(replayed(ledger, person_id, version))
    assert type(stored[0]) is type(theirs)
    assert (stored[0].topic, stored[0].state) == (theirs.topic, theirs.state)


@pytest.fixture()
def postgres_system(services: dict[str, str]) -> Iterator[System]:
    schema = f"t_libreads_{uuid.uuid4().hex[:8]}"
    postgres = {k: v for k, v in services.items() if k.startswith("POSTGRES_")} | {"POSTGRES_SCHEMA": schema}
    kwargs = dict(host=postgres["POSTGRES_HOST"], port=int(postgres["POSTGRES_PORT"]),
                  dbname=postgres["POSTGRES_DBNAME"], user=postgres["POSTGRES_USER"],
                  password=postgres["POSTGRES_PASSWORD"], autocommit=True)
    with psycopg.connect(**kwargs) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    system = bootstrap(Settings(persistence="postgres", postgres=postgres, id_key=KEY))
    try:
        yield system
    finally:
        system.close()
        with psycopg.connect(**kwargs) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture()
def sqlite_system() -> Iterator[System]:
    with tempfile.TemporaryDirectory() as folder:
        system = bootstrap(Settings(persistence="sqlite", sqlite_path=str(Path(folder) / "ledger.sqlite"), id_key=KEY))
        try:
            yield system
        finally:
            system.close()


def test_the_background_batch_write_is_read_by_the_library(postgres_system):
    ledger = postgres_system.ledger
    many = enroll(ledger, 1)
    for i in range(97):  # 99 events: the batch's payment is the 100th, snapshotted (every 100 events)
        ledger.credit_account(many, amount_fen=100, reason="CORRECTION", reference=f"c{i}",
                              effective_date=date(2024, 10, 1), provenance=API)
    assert ledger.get_person(many).version == 99 and list(ledger.snapshots.get(many)) == []
    first = ledger.recorder.max_notification_id()
    recordings: list[Any] = []
    notify = ledger._notify
    ledger._notify = lambda r: (recordings.extend(r), notify(r))  # type: ignore[method-assign]
    # The feed consumer's path: the last write (with the feed position) on the writer thread.
    pending = ledger.begin_tax_records([(payment(seq, f"LR-{seq}"), FEED) for seq in (1, 2, 3, 4)],
                                       tracking=Tracking("c:tax:0", 41), background=True)
    outcomes = pending.result()
    assert ledger.person_store.writer is not None, \
        "the batch did not go through the writer thread (PersonBatches._save_in_background)"
    assert all(o.applied for o in outcomes) and ledger.position("c:tax:0") == 41
    persons = [o.person_id for o in outcomes]
    assert persons[0] == many and ledger.get_person(many).version == 100

    library = reader(ledger, snapshots=True)
    replaying = reader(ledger, snapshots=False)
    try:
        # The snapshot the batch path took itself is the library's, and its repository starts from it.
        assert_library_snapshot(library, ledger, many, 100)
        for pid in persons:
            expected = replayed(ledger, pid).__dict__
            assert library.repository.get(pid).__dict__ == expected
            assert replaying.repository.get(pid).__dict__ == expected
            assert ledger.repository.get(pid).__dict__ == expected
        assert {pid: a.__dict__ for pid, a in load_aggregates(ledger, persons).items()} == \
            {pid: replayed(ledger, pid).__dict__ for pid in persons}

        # The recordings the batch path built by hand (as EventStore.put does) are the library's notifications.
        assert recordings, "the batch wrote nothing"
        notifications = read_log(library, first + 1)
        assert [n.id for n in notifications] == list(range(first + 1, first + 1 + len(notifications)))
        assert [(r.notification.id, r.notification.originator_id, r.notification.originator_version,
                 r.notification.topic, r.notification.state) for r in recordings] == \
            [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]
        for recording, notification in zip(recordings, notifications):
            assert library.mapper.to_domain_event(notification).__dict__ == recording.domain_event.__dict__

        # infra/event_store/stored_events.py's decoder gives the library mapper's events, for every row of the store.
        everything = library.recorder.select_notifications(start=1, limit=10_000)
        fast = stored_event_decoder(ledger.mapper)
        assert fast is not ledger.mapper.to_domain_event  # (the orjson path is the one checked)
        for notification in everything:
            assert fast(notification).__dict__ == library.mapper.to_domain_event(notification).__dict__
    finally:
        library.close()
        replaying.close()


def read_log(library: LibraryReader, start: int) -> list[Any]:
    """The library's notification log from ``start`` on, page by page (it serves a section at most)."""
    out: list[Any] = []
    while page := library.notification_log.select(start=start, limit=library.log_section_size):
        out.extend(page)
        start = page[-1].id + 1
    return out


def _assessed_three_years(ledger: Ledger) -> uuid.UUID:
    pid = enroll(ledger, 7)
    for year in (2024, 2025, 2026):
        ledger.assess_resident_year(pid, year, provenance=FEED)
    return pid


@pytest.mark.parametrize("store", ["postgres", "sqlite"])
def test_assessment_snapshots_load_with_the_library_snapshot_strategy(store, request):
    ledger = request.getfixturevalue(f"{store}_system").ledger
    pid = _assessed_three_years(ledger)
    version = ledger.get_person(pid).version
    library = reader(ledger, snapshots=True)
    try:
        # One snapshot left (infra/event_store/snapshots.py dropped the older ones), the library's own.
        assert_library_snapshot(library, ledger, pid, version)
        assert library.repository.get(pid).__dict__ == replayed(ledger, pid).__dict__
        # An older version, with no snapshot that old any more: the library replays the events.
        assert library.repository.get(pid, version=version - 1).__dict__ == replayed(ledger, pid, version - 1).__dict__
    finally:
        library.close()
