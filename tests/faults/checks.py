"""What the fault run must end with, each against a reference computed from the inputs alone.

* **ledger**: the county's timeline replayed without faults, in process, on an in-memory
  ledger (``County.apply_to``, the generator's own replay) is the reference. Every person
  must have the same events in the same order (event ids, instants, chain hashes and
  provenance aside: they differ by nature), and the same figures: payments counted and
  paid minus refunded, subsidy grants, grid; each transfer's status, and the balance and
  contribution months held over all regions (in transit included), per person and summed:
  the transfers of the county's clerks (out and in halves, some left open) never create or
  lose a fen or a month. Rejected feed records plus refused clerk
  actions must be exactly the bad records the generator put in (entrypoints.demo's check).
* **ledger.events.v1**: read with ``read_committed``, every person event of the ledger
  exactly once (duplicates by event id counted and printed), nothing else, keyed by
  person, per person in version order (tests/published.py).
* **audit**: ``ledger verify``'s check of the whole store finds nothing: every person's hash
  chain intact, every snapshot equal to the replay of the events up to its version, every
  completed transfer's halves in agreement.
* **views**: each live view store (the log follower's, the Kafka follower's) must hold
  exactly the rows of a pure fold of the ledger's events, and the same tables, row by row,
  as a clean rebuild into an empty schema; its gap lists must name the people the
  generator left uncovered, for the same reasons (entrypoints.demo's check).

Each check gives ``mismatches`` (must be 0) and its details.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from tests.published import duplicates, publication_problems, read_topic

#: Event attributes that differ between two recordings of the same facts.
VOLATILE = frozenset({"event_id", "prev_hash", "timestamp", "provenance"})
CLEAN_VIEWS_SCHEMA = "faults_clean_views"


def person_events(ledger: Any) -> tuple[dict[str, list[Any]], int]:
    """The ledger's person events per person, in version order; and how many notifications it holds."""
    from consumers.publisher import is_person_event

    out: dict[str, list[Any]] = {}
    total, start = 0, 1
    while True:
        page = ledger.recorder.select_notifications(start=start, limit=5000)
        if not page:
            return out, total
        total += len(page)
        for n in page:
            if is_person_event(n):
                event = ledger.mapper.to_domain_event(n)
                out.setdefault(str(event.originator_id), []).append(event)
        start = page[-1].id + 1


def facts(event: Any) -> tuple[str, dict[str, Any]]:
    """What an event says, without what differs between two recordings of it."""
    d = {k: v for k, v in event.__dict__.items() if k not in VOLATILE}
    d["source"] = (event.provenance or {}).get("source")
    if d["source"] == "cli":  # a clerk's entrance, as "api" is: the transfer halves run as `ledger clerk` processes
        d["source"] = "api"
    return type(event).__name__, d


def person_figures(person: Any) -> dict[str, Any]:
    """The figures a clerk reads first: payments and net paid, subsidy grants, grid, events; and what transfers
    moved: each transfer's status and the balance and months held over all regions (in transit included)."""
    from ledger.domain.history import item_to_plain
    from ledger.domain.transfers import holdings, status_of

    payments = [p for p in person.payments.values() if not p.reversed]
    return {
        "transfers": sorted((t, status_of(x)) for t, x in person.transfers.items()),
        "holdings": holdings(person),
        "payments": len(payments),
        "net_paid_fen": sum(p.amount_fen - p.refunded_fen for p in payments),
        "subsidies": sorted(repr(sorted((k, v) for k, v in item_to_plain(g).items()
                                   if k not in ("event_id", "revoke_event_id")))
                            for g in person.subsidies.values()),
        "household_grid": person.household_grid,
        "residence": person.residence_status,
        "events": person.version,
    }


def run_checks(run: Any) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    from entrypoints.wiring import bootstrap
    from infra.settings import Settings
    from entrypoints.demo import truth_checks

    from tests.faults.suite import EVENTS_TOPIC, ID_KEY, KAFKA_VIEWS_SCHEMA, LEDGER_SCHEMA

    system, county, counts = run.system, run.county, run.report.feeds
    checks: dict[str, dict[str, Any]] = {}
    figures: dict[str, Any] = {}

    # ---- the ledger against the fault-free replay of the same inputs
    reference = bootstrap(Settings(persistence="memory", id_key=ID_KEY.encode()))
    try:
        county.apply_to(reference.ledger)
        expected, _ = person_events(reference.ledger)
        actual, notifications = person_events(system.ledger)
        differ = [p for p in expected.keys() & actual.keys()
                  if [facts(e) for e in expected[p]] != [facts(e) for e in actual[p]]]
        missing, unknown = expected.keys() - actual.keys(), actual.keys() - expected.keys()
        checks["ledger events per person = fault-free replay of the inputs"] = {
            "mismatches": len(differ) + len(missing) + len(unknown),
            "persons": len(expected), "persons_differing": len(differ), "persons_missing": len(missing),
            "persons_unknown": len(unknown),
            "events_expected": sum(map(len, expected.values())), "events_found": sum(map(len, actual.values())),
        }
        wrong: Counter[str] = Counter()
        for person_id in expected:
            want = person_figures(reference.ledger.repository.get(person_id))
            try:
                got = person_figures(system.ledger.repository.get(person_id))
            except Exception:  # noqa: BLE001 - a missing person is a mismatch of every figure
                got = {}
            for k, v in want.items():
                if got.get(k) != v:
                    wrong[k] += 1
        total = {"expected": [0, 0], "found": [0, 0]}
        statuses: Counter[str] = Counter()
        for person_id in expected:
            for side, ledger in (("expected", reference.ledger), ("found", system.ledger)):
                try:
                    fen, months = person_figures(ledger.repository.get(person_id))["holdings"]
                except Exception:  # noqa: BLE001 - a missing person holds nothing
                    fen, months = 0, 0
                total[side][0] += fen
                total[side][1] += months
            with_transfers = person_figures(reference.ledger.repository.get(person_id))["transfers"]
            statuses.update(status for _, status in with_transfers)
        checks["transfers: balances and months over all regions conserved (= reference, per person and in sum)"] = {
            "mismatches": wrong["holdings"] + wrong["transfers"] + (total["expected"] != total["found"]),
            "persons_wrong_holdings": wrong["holdings"], "persons_wrong_transfers": wrong["transfers"],
            "balance_fen_expected": total["expected"][0], "balance_fen_found": total["found"][0],
            "months_expected": total["expected"][1], "months_found": total["found"][1],
            "transfers_by_status": dict(sorted(statuses.items()))}
        checks["payments, net paid, subsidies, grid per person = reference"] = {
            "mismatches": sum(wrong.values()), "persons": len(expected), **{f"wrong_{k}": v for k, v in wrong.items()},
            "payments": sum(person_figures(reference.ledger.repository.get(p))["payments"] for p in expected),
        }
        figures["ledger"] = {"notifications": notifications, "person_events": sum(map(len, actual.values())),
                             "persons": len(actual)}
    finally:
        reference.close()

    # ---- ledger.events.v1
    stored = {str(e.event_id): (p, e.originator_version) for p, events in actual.items() for e in events}
    published = read_topic(run.services["KAFKA_BOOTSTRAP_SERVERS"], EVENTS_TOPIC, set(stored), timeout=180,
                           isolation_level="read_committed")
    problems = publication_problems(stored, published)
    checks[f"{EVENTS_TOPIC}: every ledger event, in order per person"] = {
        "mismatches": sum(problems.values()), **problems}
    twice = duplicates(published)
    checks[f"{EVENTS_TOPIC} (read_committed): no event twice"] = {"mismatches": twice, "records": len(published)}
    uncommitted = read_topic(run.services["KAFKA_BOOTSTRAP_SERVERS"], EVENTS_TOPIC, set(stored), timeout=180,
                             isolation_level="read_uncommitted")
    figures["topic"] = {"records": len(published), "distinct_events": len({d["event_id"] for d in published}),
                        "records_of_aborted_transactions": len(uncommitted) - len(published)}
    figures[f"{EVENTS_TOPIC} duplicates (read_committed)"] = twice

    # ---- the audit: every chain intact; every snapshot (taken after each assessment, and every
    # 100 events, from the live person in the consumers' batches) equal to the replay of its events
    from entrypoints.audit.stored_rows import event_rows
    from entrypoints.audit.verify import verify_all

    audit = verify_all(system.ledger, workers=1)
    checks["audit: chains intact, every snapshot = the replay of its events"] = {
        "mismatches": len(audit.findings), "persons": audit.persons, "events": audit.events,
        "snapshotted": len(event_rows(system.ledger).snapshot_ids()),
        "codes": dict(Counter(f.code for f in audit.findings))}

    # ---- the views
    from projections.arrears import ArrearsProjection
    from projections.entitlement import EntitlementProjection
    from projections.projection_runner import ProjectionRunner, stored_rows
    from projections.in_memory import rebuild as pure_rebuild
    from projections.sources import NotificationLogSource
    from projections.store import ARREARS, ENTITLEMENT, POSITIONS, PostgresViewStore
    from projections.factory import view_queries

    events = [e for person in actual.values() for e in person]
    pure = pure_rebuild(events, [EntitlementProjection(system.policies), ArrearsProjection(system.policies)])
    clean = PostgresViewStore({**run.pg, "POSTGRES_SCHEMA": CLEAN_VIEWS_SCHEMA})
    try:
        ProjectionRunner(clean, NotificationLogSource(system.ledger), system.policies).run_once()
        clean_tables = {t: rows for t, rows in clean.dump().items() if t != POSITIONS.name}
    finally:
        clean.close()
    rejected_ok = None
    for label, schema in (("log", LEDGER_SCHEMA), ("kafka", KAFKA_VIEWS_SCHEMA)):
        store = PostgresViewStore({**run.pg, "POSTGRES_SCHEMA": schema})
        try:
            persons = sorted(pure["entitlement"])
            wrong_rows = 0
            stored = stored_rows(store, system.policies, persons)
            for projection in (ENTITLEMENT, ARREARS):
                wrong_rows += sum(1 for p in persons if stored[projection].get(p) != pure[projection].get(p))
            counts_by_table = store.counts()
            extra = counts_by_table["view_rows"] - len(pure["entitlement"])  # one history row per person
            checks[f"views ({label}) = pure fold of the ledger's events"] = {
                "mismatches": wrong_rows + abs(extra), "rows_differing": wrong_rows, "rows_extra": extra}
            # dump() gives each person's history folded (base + appended changes, as one view_rows row): a store
            # that followed the events holds bases of other versions and tails a rebuild does not have.
            tables = {t: rows for t, rows in store.dump().items() if t != POSITIONS.name}
            differing = {t: sum(((Counter(rows) - Counter(clean_tables.get(t, [])))
                                 + (Counter(clean_tables.get(t, [])) - Counter(rows))).values())
                         for t, rows in tables.items()}
            checks[f"views ({label}) = clean rebuild, table by table"] = {
                "mismatches": sum(differing.values()), **{f"{t}_rows_differing": n for t, n in differing.items()},
                "history_tail_rows_folded": counts_by_table.get("view_history_tail", 0)}
            truth = truth_checks(system, county, view_queries(system, store), counts)
            gaps = truth["gap_people"]
            checks[f"views ({label}): gap lists = the generator's truth"] = {
                "mismatches": gaps["missing"] + gaps["unexpected"] + gaps["wrong_reason"], **gaps}
            rejected_ok = truth["bad_records_kept"], truth["all_consumed"]
            # No person's views should be quarantined by faults (view_quarantine is also compared table by table
            # above, through dump(): empty in both).
            checks[f"views ({label}): nobody quarantined"] = {"mismatches": counts_by_table.get("view_quarantine", 0)}
            figures[f"view rows ({label})"] = counts_by_table
        finally:
            store.close()
    assert rejected_ok is not None
    kept, consumed = rejected_ok
    checks["bad records kept = the generator's (rejected + refused)"] = {
        "mismatches": abs(kept["expected"] - kept["rejected_by_consumers"] - kept["refused_clerk_actions"]),
        **{k: v for k, v in kept.items() if k != "ok"}}
    checks["every record produced was consumed"] = {
        "mismatches": sum(abs(consumed["produced"][k] - consumed["consumed"].get(k, 0)) for k in consumed["produced"]),
        "produced": consumed["produced"], "consumed": consumed["consumed"]}
    return checks, figures
