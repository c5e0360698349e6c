"""The ledger's person store port (ledger/ports.py) and the event store adapter behind it (infra/event_store/).

* the tax batch path (``record_tax_records``) and the one-record path (``record_tax_record``)
  take the same command steps and give the same outcomes and the same persons;
* a ledger built without the wiring (``PlainPersonStore``: the library's public API) writes
  what the wired one (``PersonBatches``) writes; only the wired one keeps just the latest snapshot;
* the core imports no adapter: the application service knows the port only.
"""
from __future__ import annotations

import ast
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from infra.event_store import PersonBatches
from ledger.domain.history import PersonHistory, history_to_plain
from ledger.domain.person import Identity
from ledger.application import Ledger, Outcome
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.errors import DomainError
from ledger.domain.identity import make_resident_id
from ledger.domain.person import voucher_key
from ledger.policy import PolicyBook
from ledger.ports import PersonStore, PlainPersonStore
from ledger.inbound_records import Provenance, TaxPaymentRecord

HANBIN = "610902"
FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=7)
API = Provenance(source="api", user="clerk01", request_id="req-1")
ROOT = Path(__file__).resolve().parents[2]


def payment(seq: int, voucher: str, amount_fen: int = 40000, **over) -> TaxPaymentRecord:
    fields = dict(
        voucher_no=voucher, tax_office="16109020000", id_type="RESIDENT_ID",
        id_number=make_resident_id(HANBIN, date(1980, 5, 17), seq), name="王芳", region_code=HANBIN,
        levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31), amount_fen=amount_fen,
        paid_at=datetime(2024, 10, 8, 9, 30, tzinfo=timezone.utc), credited_on=date(2024, 10, 9), channel="APP",
    )
    fields.update(over)
    return TaxPaymentRecord(**fields)


#: A feed's batch: new persons, a second payment of one, a resend, a conflicting resend, a refund of a
#: person the ledger never saw, a record that cannot be identified.
RECORDS = [
    payment(1, "V1"), payment(2, "V2"), payment(1, "V3", period_start=date(2026, 1, 1), period_end=date(2026, 12, 31)),
    payment(2, "V2"), payment(1, "V1", amount_fen=1), payment(3, "R1", kind="REFUND", original_voucher_no="V9"),
    payment(4, "V4", id_number="not-an-id"),
]


def ledger_on_sqlite(tmp_path: Path, name: str) -> Ledger:
    settings = Settings(persistence="sqlite", sqlite_path=str(tmp_path / f"{name}.sqlite"), id_key=b"port-key")
    system = bootstrap(settings)
    return system.ledger


def as_seen(outcome: Outcome) -> tuple:
    return outcome.person_id, outcome.applied, outcome.message, outcome.error.code if outcome.error else None


def one_by_one(ledger: Ledger) -> list[Outcome]:
    out = []
    for record in RECORDS:
        try:
            out.append(ledger.record_tax_record(record, provenance=FEED))
        except DomainError as e:
            out.append(Outcome(None, False, e.message, error=e))
    return out


#: What differs between two ledgers recording the same records: event ids and instants (and the chain over them).
UNIQUE = ("_created_on", "_modified_on", "chain_head", "event_id")


def without_unique(value):
    if isinstance(value, PersonHistory):  # the person's typed state, as plain data (every event id is unique)
        value = history_to_plain(value)
    elif isinstance(value, Identity):
        value = vars(value) if hasattr(value, "__dict__") else {f: getattr(value, f) for f in value.__slots__}
    if isinstance(value, dict):
        return {k: without_unique(v) for k, v in value.items()
                if k not in UNIQUE and not k.endswith(("event_id", "event_ids"))}
    if isinstance(value, list):
        return [without_unique(v) for v in value]
    return value


def persons_of(ledger: Ledger, outcomes: list[Outcome]) -> dict:
    """Each person's state and event classes, less what is unique to one write (ids, instants)."""
    ids = {o.person_id for o in outcomes if o.person_id is not None}
    return {pid: (without_unique(dict(ledger.get_person(pid).__dict__)),
                  [type(e).__qualname__ for e in ledger.events.get(pid)]) for pid in ids}


def test_the_batch_and_the_one_record_path_give_the_same_outcomes_and_persons(tmp_path):
    batch, single = ledger_on_sqlite(tmp_path, "batch"), ledger_on_sqlite(tmp_path, "single")
    try:
        in_batch = batch.record_tax_records([(r, FEED) for r in RECORDS])
        alone = one_by_one(single)
        assert [as_seen(o) for o in in_batch] == [as_seen(o) for o in alone]
        codes = [o.error.code if o.error else None for o in in_batch]
        assert codes[4] == "VOUCHER_CONFLICT" and codes[5] == "PERSON_NOT_FOUND" and codes[6] is not None
        assert [o.applied for o in in_batch] == [True, True, True, False, False, False, False]
        assert "already recorded" in in_batch[3].message  # the resend
        # Same persons, field by field, from the same events in the same order.
        assert persons_of(batch, in_batch) == persons_of(single, alone)
        # The conflict is kept on the voucher's index in both.
        for ledger in (batch, single):
            index = ledger.source_record("tax-voucher", voucher_key("16109020000", "V1"))
            assert index is not None and index.version == 2
    finally:
        batch.close()
        single.close()


def test_the_batch_path_takes_the_command_steps_of_the_one_record_path(tmp_path, monkeypatch):
    """One resend check, one registration step, one voucher index step: the batch calls the same functions."""
    calls: dict[str, int] = {}
    for step in ("_check_source", "_existing_or_new", "_payment_registration", "_source_index", "_unchanged"):
        real = getattr(Ledger, step)

        def spy(*args, _real=real, _step=step, **kwargs):
            calls[_step] = calls.get(_step, 0) + 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(Ledger, step, staticmethod(spy) if isinstance(Ledger.__dict__[step], staticmethod)
                            else spy)
    ledger = ledger_on_sqlite(tmp_path, "steps")
    try:
        outcomes = ledger.record_tax_records([(r, FEED) for r in RECORDS[:6]])
        assert [o.applied for o in outcomes] == [True, True, True, False, False, False]
        # every identified record is checked for a resend on the index the batch loaded
        assert calls["_check_source"] == 6
        # the persons loaded or registered (the second payment of person 1 reuses the batch's copy; the
        # resends stop at the check): 1, 2, the refund's unknown person
        assert calls["_existing_or_new"] == 3 and calls["_payment_registration"] == 3
        assert calls["_source_index"] == 3  # one voucher index per applied record
        calls.clear()
        ledger.record_tax_record(payment(5, "V5"), provenance=FEED)
        ledger.record_tax_record(payment(5, "V5"), provenance=FEED)  # a resend
        assert calls == {"_check_source": 2, "_existing_or_new": 1, "_payment_registration": 2, "_source_index": 1}
    finally:
        ledger.close()


@pytest.mark.parametrize("store", [PlainPersonStore, PersonBatches])
def test_either_person_store_records_a_feed_batch_with_a_position(tmp_path, store):
    from eventsourcing.persistence import Tracking

    settings = Settings(persistence="sqlite", sqlite_path=str(tmp_path / "l.sqlite"), id_key=b"port-key")
    ledger = Ledger(settings.event_store_env(), policies=PolicyBook.load(settings.policy_dir), id_key=b"port-key",
                    person_store=store)
    try:
        assert isinstance(ledger.person_store, store)
        pending = ledger.begin_tax_records([(r, FEED) for r in RECORDS[:3]], tracking=Tracking("c:tax:0", 9),
                                           finish=lambda outcomes: (), background=True)
        outcomes = pending.result()
        assert [o.applied for o in outcomes] == [True, True, True]
        assert ledger.position("c:tax:0") == 9
        loaded = ledger.load_many([o.person_id for o in outcomes])
        assert {pid: p.version for pid, p in loaded.items()} == {
            pid: ledger.get_person(pid).version for pid in loaded} and len(loaded) == 2
    finally:
        ledger.close()


def test_only_the_adapter_drops_the_older_snapshots(tmp_path):
    """The plain store keeps every snapshot (the library's way); the adapter keeps each person's latest."""
    settings = Settings(persistence="sqlite", sqlite_path=str(tmp_path / "l.sqlite"), id_key=b"port-key")
    policies = PolicyBook.load(settings.policy_dir)
    kept = {}
    for store in (PlainPersonStore, PersonBatches):
        env = {**settings.event_store_env(), "SQLITE_DBNAME": str(tmp_path / f"{store.__name__}.sqlite")}
        ledger = Ledger(env, policies=policies, id_key=b"port-key", person_store=store)
        try:
            pid = ledger.record_tax_record(payment(1, "V1"), provenance=FEED).person_id
            for year in (2025, 2026):
                ledger.assess_resident_year(pid, year, provenance=API)
            kept[store.__name__] = [s.originator_version for s in ledger.snapshots.get(pid)]
            assert ledger.repository.get(pid).version == 5
        finally:
            ledger.close()
    assert kept == {"PlainPersonStore": [4, 5], "PersonBatches": [5]}


def test_the_adapter_is_a_person_store():
    for store in (PlainPersonStore, PersonBatches):
        for name in ("load_many", "start_loading", "save_batch", "take_snapshots", "drop_older_snapshots", "close"):
            assert callable(getattr(store, name, None)), (store, name)
            assert name in PersonStore.__dict__




def test_the_core_imports_no_adapter():
    """ledger/ (the domain, policy and application; the entrypoints and the wiring are in entrypoints/) imports
    nothing from infra/, consumers/, projections/, reconciliation/ or entrypoints/: the application reaches the
    event store through the port. (The import-linter contracts in pyproject.toml say the same and more.)"""
    offenders = []
    for path in sorted((ROOT / "ledger").rglob("*.py")):
        relative = path.relative_to(ROOT / "ledger")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"ledger/{relative}: {n}" for n in names
                          if n.split(".")[0] in ("infra", "consumers", "projections", "reconciliation", "entrypoints")]
    assert offenders == []
