"""The demo's own check, as a test: the views agree with the generator's truth, person by person.

``entrypoints.demo.run_pipeline`` generates a county, pushes it through the real pipeline
(Avro feeds, consumers, ledger, publisher, projection runner, SQLite views, the
statement reconciliation) and compares what the views say with what the generator
knows (``entrypoints.simulation.county.expected_outcome``): the same people not covered, for
the same reasons (``gap_people``), every bad record refused and kept
(``bad_records_kept``), every record taken in (``all_consumed``), and whatever other
check the demo makes. Every check must be OK.

A few small counties (600 people: every rare scenario occurs at least three times)
keep it fast. Each run gets its own state directory (the demo otherwise works in
``var/demo``, which a demo running at the same time would wipe), SQLite and the
in-process transport whatever the environment says.

The seeds are counties where the generator's truth has no known fault (see the
report of this change: a resident renewal whose payment was reversed and never paid
again counts there as "something paid", and a reversal can overtake its payment on the
partitioned tax topic); add seeds once those are fixed.
"""
from __future__ import annotations

import pytest
import structlog

import ledger.log
from entrypoints.demo import run_pipeline

SEEDS = (5, 6, 7)


@pytest.fixture()
def demo_env(tmp_path, monkeypatch):
    """A state directory of the test's own; SQLite and in-process topics; logging restored afterwards."""
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    for name in ("LEDGER_PERSISTENCE", "KAFKA_BOOTSTRAP_SERVERS", "LEDGER_SQLITE_PATH", "LEDGER_VIEWS_PATH",
                 "LEDGER_TOPIC_PREFIX", "LEDGER_ID_KEY"):
        monkeypatch.delenv(name, raising=False)
    saved = structlog.get_config()
    configured = ledger.log._configured
    yield tmp_path
    structlog.configure(**saved)
    ledger.log._configured = configured


@pytest.mark.parametrize("seed", SEEDS)
def test_views_agree_with_the_generators_truth(demo_env, seed):
    result = run_pipeline(people=600, seed=seed, quiet=True)
    assert (demo_env / "demo" / "views.sqlite").exists()  # it ran in the test's directory, not var/demo
    assert {"gap_people", "bad_records_kept", "all_consumed"} <= result.checks.keys()
    failed = {name: check for name, check in result.checks.items() if not check["ok"]}
    assert failed == {}, failed
    kept = result.checks["bad_records_kept"]
    # the feeds went through ``ledger feed``'s file check (bad IDs reported there) and the consumers (the rest)
    assert kept["refused_by_feed_files"] == kept["codes"].get("ID_CHECKSUM", 0) > 0
    assert kept["rejected_by_consumers"] > 0
    gaps = result.checks["gap_people"]
    assert gaps["expected"] == gaps["found"] > 0 and gaps["missing"] == gaps["unexpected"] == gaps["wrong_reason"] == 0
    # every reason of the truth occurs, so each rule was compared at least once
    assert set(result.report["gaps_by_reason"]) == {
        "TRANSFER_INCOMPLETE", "DUPLICATE_ENROLLMENT", "SUBSIDISED_NOT_COVERED", "NOT_ENROLLED", "LAPSED",
        "ENROLLED_UNPAID", "IN_WAITING_PERIOD"}
    # The county's transfers (to and from other Ankang counties): the demo lists the open ones with their
    # time limit; the generator leaves each unfinished one alone for 31 days or more, past any 5-working-day limit.
    transfers = result.report["transfers"]
    assert transfers["incoming_open"] > 0 and transfers["outgoing_open"] > 0 and transfers["done"] > 0
    assert transfers["overdue"] == transfers["incoming_open"] + transfers["outgoing_open"]
    assert all(row["overdue_days"] > 0 and "*" in row["masked_id"] for row in transfers["open_top"])
