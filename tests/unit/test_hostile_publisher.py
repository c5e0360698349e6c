"""A poison event on the publisher (in-process transport): it holds its person only, never the topic.

The Avro encoder is made to refuse one person's events (as it refused an amount beyond a
long, issue 17 item 2): everyone else's events are published, that person's later events
wait behind the refused one in order, ``ledger status`` names the person (masked) with
the reason, and a run with a fixed encoder publishes the held events, in order, once.
"""
from __future__ import annotations

import pytest

from consumers.publisher import HELD_BEHIND, PublisherState
from events.ledger_events import decode_event, encode_event
from entrypoints.wiring import bootstrap, ledger_publisher
from infra.settings import Settings
from ledger.domain.errors import DomainError
from tests.unit.test_consumers_publisher import pay

EVENTS = "ledger.events.v1"


def refusing(person: str, *, from_version: int = 1):
    """An encoder that refuses ``person``'s events from ``from_version`` on, as fastavro refused 2^63."""
    def encode(event):
        if str(event.originator_id) == person and event.originator_version >= from_version:
            raise DomainError("AVRO_RECORD_INVALID", "ContributionPaid.amount_fen: expected a whole number (long)")
        return encode_event(event)
    return encode


@pytest.fixture()
def system():
    s = bootstrap(Settings(persistence="memory", id_key=b"test-key"))
    yield s
    s.close()


def by_person(system) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for m in system.inprocess_broker().topic(EVENTS).messages():
        d = decode_event(m.value)
        out.setdefault(d["person_id"], []).append(d["version"])
    return out


def test_one_unencodable_event_holds_its_person_only_and_a_fixed_encoder_releases_it_in_order(system, hostile):
    good = pay(system, 1, "V1")
    bad = pay(system, 3, "V2")
    pay(system, 5, "V3")
    publisher = ledger_publisher(system)
    publisher.encode = refusing(bad, from_version=2)  # Registered goes out; Enrolled is refused
    publisher.publish_pending()
    pay(system, 3, "V4")  # the held person pays again: waits behind, in order
    pay(system, 1, "V5")  # everyone else goes on
    publisher.publish_pending()

    published = by_person(system)
    assert published[bad] == [1]
    assert published[good] == [1, 2, 3, 4]
    assert len(published) == 3
    held = publisher.held
    assert [h.person for h in held] == [bad] * 3
    assert held[0].code == "AVRO_RECORD_INVALID" and "long" in held[0].reason
    assert [h.code for h in held[1:]] == [HELD_BEHIND, HELD_BEHIND]
    assert [h.notification_id for h in held] == sorted(h.notification_id for h in held)
    assert publisher.position == system.ledger.recorder.max_notification_id()  # the topic did not stall
    hostile.attempt("publisher: one event the Avro encoder refuses", crashed=False,
                    written=bad in published and published[bad] != [1])

    # The held list is committed with the position: a restarted publisher knows it.
    restarted = ledger_publisher(system)
    assert restarted.held == held
    restarted.encode = refusing(bad, from_version=2)
    assert restarted.publish_pending() == 0  # retried first, still refused: still held, nothing else to do
    assert restarted.held == held

    fixed = ledger_publisher(system)  # a new encoder deployed
    assert fixed.publish_pending() == 3
    assert by_person(system)[bad] == [1, 2, 3, 4]
    assert fixed.held == ()
    all_ids = [decode_event(m.value)["event_id"] for m in system.inprocess_broker().topic(EVENTS).messages()]
    assert len(all_ids) == len(set(all_ids))  # nothing twice


def test_a_decode_failure_or_any_exception_holds_the_person_and_status_names_them_masked(system, hostile):
    from entrypoints.status import held_persons

    bad = pay(system, 7, "W1")
    other = pay(system, 9, "W2")
    publisher = ledger_publisher(system)

    def encode(event):
        if str(event.originator_id) == bad:
            raise ValueError("value 110101199003070011 out of range")  # an ID number in the message
        return encode_event(event)

    publisher.encode = encode
    publisher.publish_pending()
    assert by_person(system)[other] == [1, 2, 3]
    rows = held_persons(system)
    assert len(rows) == 1
    row = rows[0]
    assert row["person"] != bad and bad.startswith(row["person"].rstrip("…"))
    assert row["code"] == "EVENT_NOT_PUBLISHABLE" and row["events"] == 3
    assert "110101199003070011" not in row["reason"] and "ValueError" in row["reason"]
    hostile.attempt("publisher: an exception naming an ID number", crashed=False,
                    leaked="110101199003070011" in repr(rows))


def test_the_position_record_round_trips():
    from consumers.publisher import HeldEvent

    state = PublisherState(42, (HeldEvent(7, "p", "AVRO_RECORD_INVALID", "原因"),))
    assert PublisherState.from_bytes(state.to_bytes()) == state


def test_a_transport_error_fails_the_batch_and_holds_nobody(system):
    """Only an event's own failure holds its person; a broker that is away fails the whole batch (retried)."""
    from consumers.inprocess import InProcessTransaction

    pay(system, 11, "X1")
    publisher = ledger_publisher(system)

    class Away(InProcessTransaction):
        def send(self, topic, **kw):
            raise ConnectionError("broker away")

    broker = system.inprocess_broker()
    original = broker.transaction
    broker.transaction = lambda: Away(broker)
    with pytest.raises(ConnectionError):
        publisher.publish_pending()
    broker.transaction = original
    assert publisher.held == ()
    assert publisher.publish_pending() == 3  # the same batch, whole, once the broker is back
    assert publisher.held == ()
