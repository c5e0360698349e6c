"""The eventsourcing library internals the ledger copies or overrides, pinned by a fingerprint of their source.

The ledger does by its own hand what some library methods do (for speed: see each
module's docstring), so a release that changes one of them may leave the copy doing the
old thing. The integration tests (``tests/integration/test_library_recorder_cases.py``,
``test_library_reads_ledger_writes.py``) check behaviour on the real stores; this
catches the change itself, without servers, and names the copy to re-read.

When this fails after an upgrade: read the library's new code of the method named, bring
the ledger's copy in step (or drop it if the library now does the same), run the two
integration files above, then put the new fingerprint here.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect

import pytest

#: "module:qualified name" -> (sha256 of its source, first 16 hex digits; the ledger code that copies it).
PINNED: dict[str, tuple[str, str]] = {
    # ledger/application.py: Ledger.save (with a feed position); infra/event_store/batches.py: PersonBatches._save,
    # PersonBatches._save_in_background (the batch path's writes).
    "eventsourcing.application:Application.save":
        ("4e9747d14b8fd046", "Ledger.save, infra.event_store.batches.PersonBatches._save"),
    "eventsourcing.application:Application._record":
        ("104c6186b29d5059", "infra.event_store.batches.PersonBatches._save_in_background"),
    "eventsourcing.application:ProcessingEvent.collect_events":
        ("7e3a7e6b1abd2bef", "infra.event_store.batches.PersonBatches._save"),
    "eventsourcing.persistence:EventStore.put":
        ("7cbbe45730a0d3b9", "infra.event_store.batches.PersonBatches._save_in_background"),
    "eventsourcing.persistence:Mapper.to_stored_event":
        ("ff9e72e538d73a3a", "infra.event_store.batches.PersonBatches._save_in_background"),
    # ledger/application.py: Ledger._take_snapshots (which versions); infra/event_store/batches.py:
    # PersonBatches.take_snapshots (taken from the saved persons), infra/event_store/snapshots.py drops the older ones.
    "eventsourcing.application:Application._take_snapshots":
        ("ae98c5b97ed9a8e3", "Ledger._take_snapshots, infra.event_store.batches.PersonBatches.take_snapshots"),
    "eventsourcing.application:Application.take_snapshot":
        ("5f9f473a76927401", "infra.event_store.batches.PersonBatches.take_snapshots"),
    # infra/event_store/batch_load.py: the fold of Repository.get, over rows it selects itself.
    "eventsourcing.application:Repository.get": ("0ffc6e82b6afa0a0", "infra.event_store.batch_load"),
    # infra/event_store/stored_events.py: Mapper.to_domain_event with orjson.
    "eventsourcing.persistence:Mapper.to_domain_event": ("6ec02f2a3b6e233a", "infra.event_store.stored_events.row_decoder"),
    "eventsourcing.persistence:JSONTranscoder.decode": ("d500105a1637cd89", "infra.event_store.stored_events.row_decoder"),
    "eventsourcing.persistence:JSONTranscoder._decode_obj": ("7c7c0e6064fd5d73", "infra.event_store.stored_events.row_decoder"),
    "eventsourcing.persistence:UUIDAsHex.decode": ("d52a18f8e19ed335", "infra.event_store.stored_events._uuid_from_hex"),
    "eventsourcing.persistence:find_id_convertor": ("1da51c84cba70b8e", "infra.event_store.stored_events.row_decoder"),
    # events/cipher.py: AESCipher with its encrypt and decrypt replaced by the key ring's (events.pii.KeyRing).
    "eventsourcing.cipher:AESCipher.__init__": ("92fd01e6b0817817", "events.cipher.LedgerCipher"),
    "eventsourcing.cipher:AESCipher.encrypt": ("bef49b3cf7b7f048", "events.cipher.LedgerCipher, events.pii.KeyRing"),
    "eventsourcing.cipher:AESCipher.decrypt": ("61060d1b3ff83119", "events.cipher.LedgerCipher, events.pii.KeyRing"),
    # infra/event_store/recorders.py: the binary-array insert, within the library's pipelined transaction.
    "eventsourcing.postgres:PostgresApplicationRecorder.insert_events":
        ("f1a98da0239e3ea7", "infra.event_store.recorders.BinaryPostgresProcessRecorder"),
    "eventsourcing.postgres:PostgresApplicationRecorder._insert_stored_events":
        ("139580714a659085", "infra.event_store.recorders.BinaryPostgresProcessRecorder._insert_stored_events"),
    "eventsourcing.postgres:PostgresApplicationRecorder._lock_table":
        ("42bc9c135b4a93c1", "infra.event_store.recorders.BinaryPostgresProcessRecorder._insert_stored_events"),
    # ledger/domain/person.py: Person.Snapshot.take / mutate (the state as plain data, class_version checked);
    # ledger/application.py: Ledger.construct_snapshot_store (CurrentSnapshots leaves out older shapes, so
    # Repository._reconstruct_aggregate finds no snapshot and replays every event).
    "eventsourcing.domain:CanSnapshotAggregate.take":
        ("0694680378cd4a62", "ledger.domain.person.Person.Snapshot.take"),
    "eventsourcing.domain:CanSnapshotAggregate.mutate":
        ("7b2cc72d9e32fd3f", "ledger.domain.person.Person.Snapshot.mutate"),
    "eventsourcing.application:Application.construct_snapshot_store":
        ("c37ed9d58b22ca34", "ledger.application.Ledger.construct_snapshot_store"),
    "eventsourcing.application:Repository._reconstruct_aggregate":
        ("56d7c30cb77083be", "ledger.application.CurrentSnapshots (the latest snapshot read with limit=1)"),
    "eventsourcing.postgres:PostgresApplicationRecorder._notify_channel":
        ("9e5bab72ecfbcf2e", "infra.event_store.recorders.BinaryPostgresProcessRecorder._insert_stored_events"),
    "eventsourcing.postgres:PostgresApplicationRecorder._fetch_ids_after_insert_events":
        ("9c8efbc1baf72b52", "infra.event_store.recorders.BinaryPostgresProcessRecorder"),
    "eventsourcing.postgres:PostgresProcessRecorder._insert_events":
        ("0c105d6d23c12d5e", "infra.event_store.recorders.BinaryPostgresProcessRecorder"),
    "eventsourcing.postgres:PostgresFactory.process_recorder":
        ("f1b643efdb8c6561", "infra.event_store.recorders.process_recorder, infra.event_store.recorders.Factory"),
    "eventsourcing.postgres:PostgresFactory.aggregate_recorder":
        ("79b5be3db77bd32c", "infra.event_store.recorders.snapshot_recorder, infra.event_store.recorders.Factory"),
    # The tables' layout (and the events table's NOTIFY channel), addressed in SQL of the ledger's own by
    # infra/event_store/recorders.py, batch_load.py, snapshots.py and rekey.py, entrypoints/audit/stored_rows.py, projections/sources.py
    # and consumers/publisher.py (LISTEN).
    "eventsourcing.postgres:PostgresAggregateRecorder.__init__":
        ("78adbde8e22843ca", "infra.event_store.batch_load, infra.event_store.snapshots, entrypoints.rekey (tables, snapshot table)"),
    "eventsourcing.postgres:PostgresApplicationRecorder.__init__":
        ("db36fb3de49a5292", "infra.event_store.recorders, infra.event_store.batch_load, entrypoints.rekey, entrypoints.audit.stored_rows, "
                             "projections.sources, consumers.publisher (events table, channel)"),
    "eventsourcing.sqlite:SQLiteAggregateRecorder.__init__":
        ("88895a2823b5a2d2", "infra.event_store.snapshots, entrypoints.rekey (SQLite tables)"),
    "eventsourcing.sqlite:SQLiteApplicationRecorder.__init__":
        ("9eee5bfa89841931", "entrypoints.audit.stored_rows, entrypoints.rekey (SQLite events table, rowid as notification id)"),
}


def fingerprint(name: str) -> str:
    module, qualified = name.split(":")
    found: object = importlib.import_module(module)
    for part in qualified.split("."):
        found = getattr(found, part)
    return hashlib.sha256(inspect.getsource(found).encode()).hexdigest()[:16]  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_library_internal_the_ledger_copies_is_unchanged(name):
    expected, copied_by = PINNED[name]
    try:
        found = fingerprint(name)
    except (ImportError, AttributeError) as missing:
        pytest.fail(f"eventsourcing no longer has {name} ({missing}): {copied_by} copies it", pytrace=False)
    assert found == expected, (
        f"eventsourcing's {name} changed (fingerprint {found}, pinned {expected}): re-read it and bring "
        f"{copied_by} in step, run tests/integration/test_library_*.py, then pin the new fingerprint")


def test_a_changed_source_changes_the_fingerprint(monkeypatch):
    name = "eventsourcing.persistence:EventStore.put"
    monkeypatch.setattr(inspect, "getsource", lambda obj: "def put(self): return []\n")
    assert fingerprint(name) != PINNED[name][0]
