"""Dead letters listed and re-submitted after a fix (``consumers/dead_letters.py``, ``ledger dlq``).

In-process transport and in-memory ledger: a refund that arrives before its payment is
refused (PERSON_NOT_FOUND: nobody paid yet); once the payment is in, the clerk re-submits the very
same bytes and the consumer applies them. Kafka itself: tests/integration/test_kafka_consumers.py.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone

import pytest

from consumers.dead_letters import dead_letters, parse_ids, resubmit
from events.codec import encode
from events.inbound import TAX_PAYMENT, tax_record_to_avro
from entrypoints.wiring import bootstrap, feed_consumer
from infra.settings import Settings
from ledger.domain.errors import DomainError
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import TaxPaymentRecord

TAX = "tax.payments.v1"
NUMBER = make_resident_id("610902", date(1980, 5, 17), 21)
PAYMENT = TaxPaymentRecord(
    voucher_no="V100", tax_office="16109020000", id_type="RESIDENT_ID", id_number=NUMBER, name="王芳",
    region_code="610902", levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
    amount_fen=40000, paid_at=datetime(2024, 10, 8, 1, 30, tzinfo=timezone.utc), credited_on=date(2024, 10, 9),
    channel="APP")
REFUND = replace(PAYMENT, voucher_no="R100", kind="REFUND", amount_fen=40000, original_voucher_no="V100",
                 original_tax_office="16109020000", paid_at=datetime(2024, 11, 2, 1, 0, tzinfo=timezone.utc),
                 credited_on=date(2024, 11, 2), reason="重复缴费")


def value(record: TaxPaymentRecord) -> bytes:
    return encode(TAX_PAYMENT, tax_record_to_avro(record))


@pytest.fixture()
def system():
    s = bootstrap(Settings(persistence="memory", id_key=b"test-key"))
    yield s
    s.close()


def drain(runner) -> None:
    while runner.run_once(timeout=0):
        pass


def net_paid(system) -> int:
    return system.ledger.find_person("RESIDENT_ID", NUMBER).paid_fen_for("2025")


def test_a_refund_refused_before_its_payment_is_applied_when_resubmitted(system):
    broker = system.inprocess_broker()
    runner = feed_consumer(system, "tax")
    key = b"person-21"
    broker.produce(TAX, key=key, value=value(REFUND))
    broker.produce(TAX, key=key, value=b"\x00garbage")
    drain(runner)

    (refund, garbage) = dead_letters(system.ledger)
    assert refund.code == "PERSON_NOT_FOUND" and garbage.code.startswith("AVRO_")  # nobody paid yet
    assert (refund.topic, refund.offset) == (TAX, 0) and not refund.resubmissions
    assert NUMBER not in refund.message  # ID numbers masked in what a clerk lists
    assert dead_letters(system.ledger, code="PERSON_NOT_FOUND") == [refund]
    assert dead_letters(system.ledger, topic="registry.status.v1") == []

    broker.produce(TAX, key=key, value=value(PAYMENT))  # the fix: the payment arrives
    drain(runner)
    assert net_paid(system) == 40000

    sent = resubmit(system.ledger, broker, [refund], user="clerk01", reason="payment V100 now recorded")
    assert [s.id for s in sent] == [refund.id]
    copy = broker.topic(TAX).messages()[-1]
    assert copy.value == value(REFUND) and copy.key == key
    assert dict(copy.headers)["resubmitted-from"] == f"{TAX}:{refund.partition}:{refund.offset}".encode()
    drain(runner)
    assert net_paid(system) == 0  # the refund applied this time

    # It is noted, not listed as open any more, and not sent twice.
    assert [d.id for d in dead_letters(system.ledger)] == [garbage.id]
    (noted,) = dead_letters(system.ledger, resubmitted=True)
    assert noted.resubmissions[0]["user"] == "clerk01" and noted.resubmissions[0]["reason"].startswith("payment")
    before = len(broker.topic(TAX).messages())
    assert resubmit(system.ledger, broker, [noted], user="clerk01", reason="again?") == []
    assert len(broker.topic(TAX).messages()) == before


def test_a_record_still_wrong_is_refused_again_at_its_new_position(system):
    broker = system.inprocess_broker()
    runner = feed_consumer(system, "tax")
    broker.produce(TAX, key=b"k", value=value(REFUND))
    drain(runner)
    (letter,) = dead_letters(system.ledger)
    resubmit(system.ledger, broker, [letter], user="clerk01", reason="try again")
    drain(runner)
    (again,) = dead_letters(system.ledger)
    assert again.code == "PERSON_NOT_FOUND" and again.offset == letter.offset + 1 and again.id != letter.id


class RefusingSink:
    """A broker that never acknowledges."""

    def send(self, *args, **kwargs) -> None:
        pass

    def flush(self) -> None:
        raise RuntimeError("broker unreachable")


def test_nothing_is_noted_when_the_broker_did_not_acknowledge(system):
    broker = system.inprocess_broker()
    broker.produce(TAX, key=b"k", value=value(REFUND))
    drain(feed_consumer(system, "tax"))
    (letter,) = dead_letters(system.ledger)
    with pytest.raises(RuntimeError):
        resubmit(system.ledger, RefusingSink(), [letter], user="clerk01", reason="fixed")
    assert dead_letters(system.ledger) == [letter]  # still open


def test_bad_selections_have_codes(system):
    with pytest.raises(DomainError) as err:
        parse_ids(["not-a-uuid"])
    assert err.value.code == "DEAD_LETTER_ID_INVALID"
    with pytest.raises(DomainError) as err:
        resubmit(system.ledger, system.inprocess_broker(), [], user="clerk01", reason=" ")
    assert err.value.code == "REASON_REQUIRED"
